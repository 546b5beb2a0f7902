"""Adapting with a fallback policy: the fallback runs first, the method next, then whichever
did better (success, then return); the method adapts from its own episodes only; checkpoints
carry the fallback."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from stable_baselines3 import PPO
from tiny import tiny

from metarobot.algorithms.proto import COUNT, Proto, transitions
from metarobot.cli import cli
from metarobot.errors import MetarobotError
from metarobot.meta import FALLBACK_KEY, MetaLearner, job_seed, read_checkpoint

TINY = tiny(outer_epochs=1, outer_minibatches=1, context_dim=3)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A proto method and a multitask fallback of cartpole, each one iteration into training,
    saved as checkpoints."""
    where = tmp_path_factory.mktemp("fallback")
    method = Proto(**TINY)
    method.step()
    fallback = MetaLearner(**tiny(algo="multitask", seed=3))
    fallback.step()
    paths = method.save(where / "proto.pt"), fallback.save(where / "multitask.pt")
    method.set_fallback(fallback)
    yield method, fallback, paths
    method.close()


def test_the_fallback_runs_first_the_method_next_then_whichever_did_better(pair):
    method, _, _ = pair
    tasks = method.family.heldout_tasks("test", 6)
    results = method.adapt_many(tasks, steps=3, episodes=2, seed=1)
    for res in results:
        assert res.ran[:2] == ["fallback", "proto"]
        fb = (res.success[0], res.returns[0])
        latest = (res.success[1], res.returns[1])
        for k in (2, 3):  # proto never rejects an update: its latest episodes are what count
            assert res.ran[k] == ("fallback" if fb > latest else "proto")  # success first, then return
            if res.ran[k] == "proto":
                latest = (res.success[k], res.returns[k])
        assert (FALLBACK_KEY in res.final_state) == (fb > latest)
    kept = [FALLBACK_KEY in r.final_state for r in results]
    assert any(kept) and not all(kept), "these tasks and seeds should keep each policy somewhere"


def test_a_context_method_adapts_from_its_own_episodes_only(pair):
    method, _, _ = pair
    tasks = method.family.heldout_tasks("test", 6)
    results = method.adapt_many(tasks, steps=2, episodes=2, seed=1)
    checked = 0
    for i, res in enumerate(results):
        if FALLBACK_KEY in res.final_state:
            continue
        # k = 0 ran the fallback, k = 1 the method from its start, k = 2 on what k = 1 showed;
        # nothing updates after the last step, so the kept state holds k = 1's transitions only
        job = method.make_job(tasks[i], method.meta_state(), 2, job_seed(1, 7_777, 1, i))
        (rollout,) = method.sampler().run([job])
        assert float(res.final_state[COUNT]) == len(transitions(rollout, method.obs_dim)) > 0
        checked += 1
    assert checked


def test_without_the_fallback_or_without_updates_nothing_changes(pair):
    method, _, _ = pair
    tasks = method.family.heldout_tasks("test", 3)
    alone = method.load_as()
    alone.set_fallback(None)
    try:
        for kwargs in ({"fallback": False}, {"update": False}):
            got = method.adapt_many(tasks, steps=2, episodes=2, seed=4, **kwargs)
            want = alone.adapt_many(tasks, steps=2, episodes=2, seed=4, **kwargs)
            assert [r.returns for r in got] == [r.returns for r in want]
            assert all(r.ran == ["proto"] * 3 for r in got)
    finally:
        alone.close()


def test_a_fallback_must_be_a_context_free_policy_of_the_same_family(pair):
    method, _, _ = pair
    with pytest.raises(MetarobotError, match="reads a context"):
        method.set_fallback(Proto(**TINY))
    with pytest.raises(MetarobotError, match="not one of 'cartpole'"):
        method.set_fallback(MetaLearner(**tiny(algo="multitask", family="reach", hidden_sizes=(8,))))


def test_checkpoints_carry_the_fallback_and_a_kept_fallback_exports_its_own_policy(pair, tmp_path):
    method, fallback, _ = pair
    path = method.save(tmp_path / "with.pt")
    loaded = MetaLearner.load(path)
    try:
        assert loaded.fallback is not None and loaded.fallback.config.algo == "multitask"
        for k, v in fallback.meta_state().items():
            assert torch.equal(loaded.fallback.meta_state()[k], v)
        task = loaded.family.heldout_tasks("test", 1)[0]
        state = {**loaded.fallback.meta_state(), FALLBACK_KEY: torch.ones(1)}
        model = PPO.load(loaded.save_sb3(tmp_path / "kept.zip", state), device="cpu")
        env = loaded.family.make_env(task)
        obs, _ = env.reset(seed=0)
        env.close()
        exported, _ = model.predict(obs, deterministic=True)
        with torch.no_grad():
            want, _, _ = loaded.fallback.policy(torch.as_tensor(obs[None]), deterministic=True)
        np.testing.assert_allclose(exported, np.clip(want.numpy()[0], -1, 1), rtol=1e-5)
    finally:
        loaded.close()
    data = read_checkpoint(path)
    del data["fallback"]["policy_state"]
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(MetarobotError, match="its fallback lacks 'policy_state'"):
        read_checkpoint(tmp_path / "bad.pt")


def test_adapt_and_evaluate_take_a_fallback_from_the_command_line(pair, tmp_path):
    _, _, (proto_path, mt_path) = pair
    runner = CliRunner()
    common = ["--checkpoint", str(proto_path), "--steps", "2", "--episodes", "2", "--workers", "0"]
    res = runner.invoke(cli, ["adapt", *common, "--fallback", str(mt_path), "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert "fallback (multitask)" in res.output and "kept:" in res.output
    report = (tmp_path / "a" / "adaptation.json").read_text()
    assert '"ran": [' in report and '"fallback": "multitask"' in report
    res = runner.invoke(
        cli,
        [
            "evaluate", "--checkpoint", str(proto_path), "--fallback", str(mt_path), "--tasks", "2", "--seeds",
            "1", "--steps", "2", "--episodes", "2", "--baselines", "scratch", "--workers", "0", "--no-progress",
            "--out", str(tmp_path / "e"),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "proto+fallback success" in res.output and "scratch success" in res.output


def test_a_run_trained_with_a_fallback_carries_it_and_says_so(pair, tmp_path):
    _, _, (_, mt_path) = pair
    out = tmp_path / "run"
    args = ["meta-train", "--algo", "proto", "--context-dim", "3", "--iterations", "1", "--eval-tasks", "2"]
    args += ["--fallback", str(mt_path), "--out", str(out), "--no-progress"]
    for name, value in tiny(without=["eval_tasks"]).items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        args += [f"--{name.replace('_', '-')}", text]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "before adaptation (the fallback, multitask)" in res.output
    loaded = MetaLearner.load(out / "meta_policy.pt")
    try:
        assert loaded.fallback is not None and loaded.fallback.config.algo == "multitask"
        assert loaded.config.fallback == str(mt_path)
    finally:
        loaded.close()


def test_a_baseline_trained_by_evaluate_gets_the_method_and_fallback_budgets_together(pair, tmp_path):
    method, fallback, (proto_path, mt_path) = pair
    budget = method.env_steps + fallback.env_steps
    args = ["evaluate", "--checkpoint", str(proto_path), "--fallback", str(mt_path), "--baselines", "multitask"]
    args += ["--tasks", "1", "--seeds", "1", "--steps", "1", "--episodes", "1", "--workers", "0", "--no-progress"]
    res = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert f"training a multitask baseline with the same env-step budget ({budget:,} steps)" in res.output


def test_a_fallback_named_by_its_algorithm_is_the_family_s_shipped_policy(pair, tmp_path):
    from metarobot.policies.pretrained import checkpoint_ref, pretrained_path

    _, _, (proto_path, _) = pair
    assert checkpoint_ref("cartpole", "multitask") == str(pretrained_path("cartpole", "multitask"))
    assert checkpoint_ref("cartpole", str(proto_path)) == str(proto_path), "a path stays a path"
    args = ["adapt", "--checkpoint", str(proto_path), "--steps", "1", "--episodes", "2", "--workers", "0"]
    res = CliRunner().invoke(cli, [*args, "--fallback", "multitask", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert "fallback (multitask)" in res.output
    with pytest.raises(MetarobotError, match="neither a file nor an algorithm"):
        checkpoint_ref("cartpole", "identify")
