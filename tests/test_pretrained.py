"""The shipped meta-policies work straight after install, and adapting them helps."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from metarobot.policies.pretrained import pretrained_path

from metarobot.cli import cli
from metarobot.config import default_algo
from metarobot.meta import MetaLearner, read_checkpoint

SHIPPED = sorted(pretrained_path("reach").parent.glob("*.pt"))


@pytest.mark.parametrize("family", ["reach", "cartpole", "navigate", "grasp"])
def test_every_v0_family_ships_maml_and_multitask(family):
    for algo in ("maml", "multitask"):
        assert pretrained_path(family, algo).is_file()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoints_load_and_record_their_provenance(path):
    data = read_checkpoint(path)
    family, algo = data["family"], data["config"]["algo"]
    assert pretrained_path(family, algo) == path  # named FAMILY[-ALGO].pt
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["command"].startswith(f"metarobot meta-train --family {family} --algo {algo}")
    assert record["git_commit_when_shipped"] and record["settings"]["algo"] == algo
    assert record["env_steps"] == data["env_steps"]


@pytest.mark.slow
@pytest.mark.parametrize("family, gain", [("cartpole", 5.0), ("navigate", 1.0)])
def test_adapting_the_shipped_policy_improves_return(family, gain):
    learner = MetaLearner.load(pretrained_path(family), workers=0)
    try:
        tasks = learner.family.heldout_tasks("test", 6)
        results = learner.adapt_many(tasks, steps=1, episodes=5, seed=3)
    finally:
        learner.close()
    pre = np.mean([r.returns[0] for r in results])
    post = np.mean([r.returns[1] for r in results])
    assert post > pre + gain, (pre, post)


def test_commands_work_on_the_shipped_reach_policy(tmp_path):
    runner = CliRunner()
    r = runner.invoke(
        cli,
        [
            "adapt",
            "--family",
            "reach",
            "--split",
            "ood",
            "--index",
            "0",
            "--episodes",
            "2",
            "--out",
            str(tmp_path / "a"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "adapted_policy.zip").exists()
    r = runner.invoke(
        cli,
        [
            "evaluate",
            "--family",
            "reach",
            "--tasks",
            "1",
            "--seeds",
            "1",
            "--steps",
            "1",
            "--episodes",
            "2",
            "--workers",
            "0",
            "--no-progress",
            "--out",
            str(tmp_path / "e"),
        ],
    )
    assert r.exit_code == 0, r.output
    methods = json.loads((tmp_path / "e" / "results.json").read_text())["splits"]["ood"]
    default = default_algo("reach")  # the shipped policy of reach's default method
    assert set(methods) == {default, "multitask", "finetune", "scratch"}
    r = runner.invoke(
        cli,
        [
            "render",
            "--family",
            "reach",
            "--before-after",
            "--adapt-episodes",
            "2",
            "--width",
            "96",
            "--height",
            "72",
            "--out",
            str(tmp_path / "v.mp4"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "v.mp4").stat().st_size > 1000


@pytest.mark.slow
def test_the_shipped_cartpole_rma_adapts_without_a_gradient_and_beats_its_start():
    learner = MetaLearner.load(pretrained_path("cartpole", "rma"), workers=0)
    try:
        assert learner.name == "rma"
        tasks = learner.family.heldout_tasks("test", 4)
        before = {k: v.clone() for k, v in learner.meta_state().items()}
        results = learner.adapt_many(tasks, steps=1, episodes=5, seed=3)
        for k, v in learner.meta_state().items():
            assert np.array_equal(v.numpy(), before[k].numpy())  # adapting touched no parameter
    finally:
        learner.close()
    assert np.mean([r.success[1] for r in results]) > np.mean([r.success[0] for r in results])
    record = json.loads(pretrained_path("cartpole", "rma").with_suffix(".json").read_text())
    assert "--init-from" in record["command"] and record["env_steps"] == 320_000


@pytest.mark.parametrize("algo", ["oracle", "rma"])
def test_render_runs_a_context_conditioned_policy_on_its_context(tmp_path, algo):
    """oracle and rma read [obs; context]: the video's rollouts append the same context as
    sampling does (the true parameters for the oracle, rma's estimate after adapting)."""
    args = ["render", "--checkpoint", str(pretrained_path("cartpole", algo)), "--split", "test", "--index", "0"]
    args += [
        "--before-after",
        "--adapt-episodes",
        "5",
        "--width",
        "64",
        "--height",
        "48",
        "--out",
        str(tmp_path / "v.mp4"),
    ]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "v.mp4").stat().st_size > 1000
    after = [line for line in r.output.splitlines() if line.startswith(f"{algo} k=1:")]
    assert after and after[0].endswith("successes [True]"), r.output  # both reach 100% on test cart-poles


def test_every_family_that_ships_policies_ships_its_default_methods():
    """``adapt``/``evaluate``/``render --family F`` load the shipped policy of F's default
    method: it must exist wherever F ships any policy."""
    from conftest import FAMILIES
    from metarobot.policies.pretrained import has_pretrained

    from metarobot.algorithms import algorithm_names

    for family in FAMILIES:
        if any(has_pretrained(family, algo) for algo in algorithm_names()):
            assert has_pretrained(family, default_algo(family)), (family, default_algo(family))
