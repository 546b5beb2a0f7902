"""Meta-training on real cartpole physics: algorithms, checkpoints, resume, SB3 export, CLI."""

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from stable_baselines3 import PPO
from tiny import tiny

from metarobot.algorithms.maml import MAML
from metarobot.cli import cli
from metarobot.config import MetaConfig
from metarobot.meta import MetaLearner
from metarobot.training import Run

TINY = tiny(hidden_sizes=(16, 16))


@pytest.mark.parametrize("algo", ["maml", "fomaml", "reptile", "multitask"])
def test_every_algorithm_runs_an_iteration_and_changes_the_policy(algo):
    with MetaLearner(algo=algo, **TINY) as learner:
        before = learner.meta_state()
        row = learner.step()
        after = learner.meta_state()
    assert row["env_steps"] == 2 * 2 * 2 * 200
    assert np.isfinite(row["pre_return"])
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_reptile_moves_meta_parameters_toward_adapted_ones_by_the_stated_step():
    with MetaLearner(algo="reptile", reptile_step=0.25, **TINY) as learner:
        meta = learner.meta_state()
        names = [k for k, _ in learner.policy.named_parameters()]
        g = torch.Generator().manual_seed(0)
        adapted = [{k: v + torch.randn(v.shape, generator=g) for k, v in meta.items()} for _ in range(3)]
        learner.outer_update([], adapted, meta)
        new = learner.meta_state()
    for k in names:
        target = torch.stack([a[k] for a in adapted]).mean(0)
        torch.testing.assert_close(new[k], meta[k] + 0.25 * (target - meta[k]))


def test_checkpoint_round_trip_keeps_parameters_and_optimizer_state(tmp_path):
    with MAML(**TINY) as learner:
        learner.step()
        learner.save(tmp_path / "ck.pt")
        state, opt = learner.meta_state(), learner.optimizer.state_dict()
        rng_next = learner.rng.random()
    loaded = MetaLearner.load(tmp_path / "ck.pt")
    try:
        for k, v in state.items():
            assert torch.equal(v, loaded.meta_state()[k])
        opt2 = loaded.optimizer.state_dict()
        assert opt["param_groups"] == opt2["param_groups"]
        for pid, s in opt["state"].items():
            for key, value in s.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt2["state"][pid][key]))
        assert loaded.iteration == 1 and loaded.rng.random() == rng_next
    finally:
        loaded.close()


def _metrics(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.pop("wall_s")
    return rows


@pytest.mark.parametrize("algo", ["maml", "reptile"])
def test_interrupt_and_resume_equals_an_uninterrupted_run(algo, tmp_path):
    # reptile: a resumed process builds its inner PPO afresh, which once reseeded its first update
    cfg = MetaConfig(iterations=3, algo=algo, **TINY)
    Run(tmp_path / "straight", cfg).train(progress=False)
    Run(tmp_path / "resumed", cfg.replace(iterations=1)).train(progress=False)
    Run(tmp_path / "resumed", cfg, resume=True).train(progress=False)
    straight, resumed = _metrics(tmp_path / "straight/metrics.csv"), _metrics(tmp_path / "resumed/metrics.csv")
    assert len(straight) == 3 and straight == resumed
    a = torch.load(tmp_path / "straight/meta_policy.pt", weights_only=True)["policy_state"]
    b = torch.load(tmp_path / "resumed/meta_policy.pt", weights_only=True)["policy_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_checkpoints_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "metarobot.cli",
        "meta-train",
        "--family",
        "cartpole",
        "--iterations",
        "50",
        "--meta-batch",
        "2",
        "--episodes-per-update",
        "2",
        "--workers",
        "0",
        "--eval-tasks",
        "0",
        "--no-progress",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.exists(), proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    done = torch.load(ckpt, weights_only=True)["iteration"]
    assert 1 <= done < 50
    rows_before = _metrics(out / "metrics.csv")
    assert len(rows_before) == done
    result = CliRunner().invoke(
        cli,
        ["meta-train", "--resume", "--out", str(out), "--iterations", str(done + 1), "--workers", "0", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    rows_after = _metrics(out / "metrics.csv")
    assert rows_after[:done] == rows_before and len(rows_after) == done + 1


def test_adapted_policy_saved_as_sb3_zip_loads_and_predicts_the_same(tmp_path):
    with MAML(**TINY) as learner:
        task = learner.family.task("test", 0)
        result = learner.adapt(task, steps=1, episodes=2)
        path = learner.save_sb3(tmp_path / "adapted.zip", result.final_state)
        obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
        learner.policy.load_state_dict(result.final_state)
        expected, _ = learner.policy.predict(obs, deterministic=True)
    model = PPO.load(path, device="cpu")
    actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(actions, expected, rtol=1e-6)
    assert len(result.success) == 2 and result.env_steps == 2 * 2 * 200


@pytest.mark.slow
def test_meta_train_cli_improves_post_adaptation_return_on_cartpole(tmp_path):
    """A real learning check: MAML's adapted policies do better than its initialisation."""
    out = tmp_path / "cp"
    result = CliRunner().invoke(
        cli,
        [
            "meta-train",
            "--family",
            "cartpole",
            "--iterations",
            "8",
            "--meta-batch",
            "8",
            "--episodes-per-update",
            "4",
            "--eval-tasks",
            "8",
            "--workers",
            "2",
            "--no-progress",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    gain = [float(r["post_return"]) - float(r["pre_return"]) for r in rows[-4:]]
    assert np.mean(gain) > 3.0, gain
    summary = json.loads((out / "summary.json").read_text())["heldout_test"]
    assert summary["post_return"] > summary["pre_return"] + 3.0, summary
    for name in ("config.yaml", "meta_policy.pt", "meta_policy.zip", "checkpoints/last.pt"):
        assert (out / name).exists()
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--family", "bogus"], "unknown family 'bogus'"),
        (["--algo", "ppo2"], "'ppo2' is not one of"),
        (["--iterations", "-3"], "iterations=-3 is out of range [1, 1000000]"),
        (["--meta-batch", "0"], "meta-batch=0 is out of range [1, 10000]"),
        (["--workers", "-1"], "workers=-1 is out of range [0, "),
        (["--resume"], "--resume needs --out"),
    ],
)
def test_meta_train_bad_input_is_one_line_exit_2(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "metarobot.cli", "meta-train", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "runs").exists()  # nothing written


def test_malformed_yaml_resume_without_run_and_occupied_out(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("iterations: [1, 2\n")
    runner = CliRunner()
    r = runner.invoke(cli, ["meta-train", "--config", str(bad), "--out", str(tmp_path / "x")])
    assert r.exit_code != 0
    proc = subprocess.run(
        [sys.executable, "-m", "metarobot.cli", "meta-train", "--config", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "is not valid YAML" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("itterations: 3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "metarobot.cli", "meta-train", "--config", str(unknown)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "unknown setting(s): itterations" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "metarobot.cli", "meta-train", "--resume", "--out", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "nothing to resume" in proc.stderr
    # an --out holding another run is refused, and its files are left exactly as they were
    run = tmp_path / "run"
    Run(run, MetaConfig(iterations=1, **TINY)).train(progress=False)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = subprocess.run(
        [sys.executable, "-m", "metarobot.cli", "meta-train", "--family", "cartpole", "--out", str(run)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}


def test_yaml_config_is_applied_and_the_command_line_wins(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "family: cartpole\niterations: 1\nmeta-batch: 2\nepisodes_per_update: 2\nworkers: 0\n"
        "eval_tasks: 0\ninner_lr: 0.05\n"
    )
    out = tmp_path / "run"
    r = CliRunner().invoke(
        cli, ["meta-train", "--config", str(cfg), "--inner-lr", "0.2", "--out", str(out), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    import yaml

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["meta_batch"] == 2 and resolved["inner_lr"] == 0.2 and resolved["family"] == "cartpole"


def test_python_api_reads_like_the_classic_example():
    learner = MAML(family="cartpole", meta_batch=2, episodes_per_update=2, workers=0, hidden_sizes=(8,))
    try:
        history = learner.train(iterations=1)
        report = learner.test(split="test", n_tasks=2, steps=1, episodes=2)
    finally:
        learner.close()
    assert len(history) == 1 and len(report["success"]) == 2 and len(report["return"]) == 2
