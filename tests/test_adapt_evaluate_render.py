"""adapt / evaluate / render through the CLI, on small checkpoints made here."""

import json
import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner
from metarobot.envs.urdf_builder import diff_drive_urdf, serial_arm_urdf
from PIL import Image
from stable_baselines3 import PPO
from tiny import tiny

from metarobot.cli import cli
from metarobot.meta import MetaLearner

SMALL = tiny(outer_epochs=1, hidden_sizes=(16, 16), without=["family"])  # each test names its family


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for family in ("cartpole", "reach", "navigate", "grasp"):
        with MetaLearner(family=family, **SMALL) as learner:
            learner.step()
            out[family] = learner.save(root / f"{family}.pt")
    return out


def cli_run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "metarobot.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def test_adapt_writes_an_sb3_zip_that_acts_and_a_metrics_json(checkpoints, tmp_path):
    out = tmp_path / "adapt"
    r = CliRunner().invoke(
        cli,
        [
            "adapt",
            "--checkpoint",
            str(checkpoints["cartpole"]),
            "--split",
            "test",
            "--index",
            "1",
            "--steps",
            "2",
            "--episodes",
            "2",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads((out / "adaptation.json").read_text())
    assert len(report["success"]) == 3 and len(report["return"]) == 3 and report["env_steps"] == 3 * 2 * 200
    for k, ret in enumerate(report["return"]):
        assert re.search(rf"^\s*{k}\s+\d+%\s+{ret:.2f}$", r.output, re.M)
    model = PPO.load(out / "adapted_policy.zip", device="cpu")
    action, _ = model.predict(np.zeros(4, np.float32), deterministic=True)
    assert action.shape == (1,) and np.isfinite(action).all()


def test_adapt_takes_a_users_urdf_arm(checkpoints, tmp_path):
    urdf = tmp_path / "arm.urdf"
    urdf.write_text(serial_arm_urdf([0.25] * 3, ["z", "y", "y"], [0.4] * 3, [0.1] * 3, [2.5] * 3, [60] * 3))
    r = CliRunner().invoke(
        cli,
        [
            "adapt",
            "--checkpoint",
            str(checkpoints["reach"]),
            "--urdf",
            str(urdf),
            "--steps",
            "1",
            "--episodes",
            "2",
            "--out",
            str(tmp_path / "a"),
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "a" / "adaptation.json").read_text())
    assert report["task"]["urdf_path"] == str(urdf.resolve()) and report["task"]["n_joints"] == 3


def test_adapt_and_render_take_a_users_wheeled_base(checkpoints, tmp_path):
    urdf = tmp_path / "bot.urdf"
    urdf.write_text(diff_drive_urdf(0.26, 0.24, 2.0, 0.045))
    common = ["--checkpoint", str(checkpoints["navigate"]), "--urdf", str(urdf)]
    r = CliRunner().invoke(cli, ["adapt", *common, "--steps", "1", "--episodes", "2", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    task = json.loads((tmp_path / "a" / "adaptation.json").read_text())["task"]
    assert task["urdf_path"] == str(urdf.resolve())
    assert task["left_wheels"] == ["left_wheel_joint"] and task["right_wheels"] == ["right_wheel_joint"]
    out = tmp_path / "nav.mp4"
    r = CliRunner().invoke(
        cli,
        ["render", *common, "--left-wheels", "left_wheel_joint", "--right-wheels", "right_wheel_joint"]
        + ["--before-after", "--steps", "1", "--adapt-episodes", "2", "--width", "160", "--height", "120"]
        + ["--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    frames = iio.imread(out, index=None)
    assert 2 <= frames.shape[0] <= 101 and frames.shape[1:3] == (120 + 28, 2 * 160)
    assert frames[1, 28:, :160, :3].astype(float).std() > 5  # robot, obstacles and goal on a floor


def test_a_base_from_a_file_gets_the_policy_that_serves_real_bases(tmp_path):
    from metarobot.config import default_algo

    assert default_algo("navigate") == "rl2" and default_algo("navigate", from_file=True) == "rma-online"
    assert default_algo("reach", from_file=True) == default_algo("reach"), "no file_algo: the default"
    urdf = tmp_path / "bot.urdf"
    urdf.write_text(diff_drive_urdf(0.26, 0.24, 2.0, 0.045))
    args = ["adapt", "--family", "navigate", "--urdf", str(urdf), "--steps", "0", "--episodes", "1"]
    r = CliRunner().invoke(cli, [*args, "--workers", "0", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "navigate's rma-online policy, which serves real robots better" in r.output
    assert json.loads((tmp_path / "a" / "adaptation.json").read_text())["algo"] == "rma-online"


def test_adapt_and_render_take_a_users_object(checkpoints, tmp_path):
    obj = tmp_path / "can.urdf"
    obj.write_text(
        '<robot name="can"><link name="can"><inertial><mass value="0.2"/><inertia ixx="1e-4" ixy="0" ixz="0" '
        'iyy="1e-4" iyz="0" izz="1e-4"/></inertial><visual><geometry><cylinder radius="0.025" length="0.07"/>'
        '</geometry></visual><collision><geometry><cylinder radius="0.025" length="0.07"/></geometry></collision>'
        "</link></robot>"
    )
    common = ["--checkpoint", str(checkpoints["grasp"]), "--object-urdf", str(obj)]
    r = CliRunner().invoke(cli, ["adapt", *common, "--steps", "1", "--episodes", "2", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    task = json.loads((tmp_path / "a" / "adaptation.json").read_text())["task"]
    assert task["object_urdf"] == str(obj.resolve())
    out = tmp_path / "grasp.mp4"
    r = CliRunner().invoke(
        cli,
        ["render", *common, "--before-after", "--steps", "1", "--adapt-episodes", "2"]
        + ["--width", "160", "--height", "120", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    frames = iio.imread(out, index=None)
    assert 2 <= frames.shape[0] <= 101 and frames.shape[1:3] == (120 + 28, 2 * 160)
    assert frames[1, 28:, :160, :3].astype(float).std() > 5


def test_adapt_from_a_task_json(checkpoints, tmp_path):
    from metarobot import get_family

    task = get_family("cartpole").task("ood", 3)
    path = tmp_path / "task.json"
    path.write_text(task.to_json())
    r = CliRunner().invoke(
        cli,
        [
            "adapt",
            "--checkpoint",
            str(checkpoints["cartpole"]),
            "--task",
            str(path),
            "--steps",
            "0",
            "--episodes",
            "1",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o" / "adaptation.json").read_text())["task"] == task.to_dict()


def test_evaluate_json_matches_its_table_and_writes_a_real_png(checkpoints, tmp_path):
    out = tmp_path / "ev"
    r = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--checkpoint",
            str(checkpoints["cartpole"]),
            "--tasks",
            "2",
            "--seeds",
            "2",
            "--steps",
            "1",
            "--episodes",
            "2",
            "--baselines",
            "scratch",
            "--workers",
            "0",
            "--no-progress",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert set(res["splits"]) == {"test", "ood"}
    for split, methods in res["splits"].items():
        assert set(methods) == {"maml", "scratch"}
        for name, m in methods.items():
            raw = np.asarray(m["success_per_seed_task"])
            assert raw.shape == (2, 2, 2)
            np.testing.assert_allclose(m["success_mean"], raw.reshape(4, 2).mean(0))
            table_row = next(
                line
                for line in r.output.splitlines()
                if line.strip().startswith(f"{name} return") and line in r.output.split(f"split {split}")[1]
            )
            numbers = [float(x) for x in re.findall(r"(-?\d+\.\d)\s±", table_row)]
            np.testing.assert_allclose(numbers, np.round(m["return_mean"], 1), atol=0.051)
    img = Image.open(out / "adaptation.png")
    assert img.format == "PNG" and img.size[0] > 400
    arr = np.asarray(img.convert("L"))
    assert arr.std() > 10  # lines and text, not a blank canvas


def test_evaluate_trains_a_multitask_baseline_when_none_is_given(checkpoints, tmp_path):
    r = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--checkpoint",
            str(checkpoints["cartpole"]),
            "--tasks",
            "1",
            "--seeds",
            "1",
            "--steps",
            "1",
            "--episodes",
            "1",
            "--split",
            "test",
            "--baselines",
            "multitask",
            "--workers",
            "0",
            "--no-progress",
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(res["splits"]["test"]) == {"maml", "multitask"}


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_render_before_after_video_reads_back_with_expected_frames(checkpoints, tmp_path, fmt):
    out = tmp_path / f"v.{fmt}"
    r = CliRunner().invoke(
        cli,
        [
            "render",
            "--checkpoint",
            str(checkpoints["reach"]),
            "--before-after",
            "--steps",
            "1",
            "--adapt-episodes",
            "2",
            "--width",
            "160",
            "--height",
            "120",
            "--format",
            fmt,
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    frames = iio.imread(out, index=None)
    # reach episodes are 60 steps: 61 frames (reset + steps); two panels side by side + caption bar
    assert frames.shape[0] == 61
    assert frames.shape[1:3] == (120 + 28, 2 * 160)
    scene = frames[30, 28:, :160, :3].astype(float)
    assert scene.std() > 5  # not a blank frame
    assert np.abs(frames[0].astype(float) - frames[-1].astype(float)).mean() > 0.1  # the arm moved


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda c, t: ["adapt", "--family", "reach", "--checkpoint", c["cartpole"]], "is for family 'cartpole'"),
        (lambda c, t: ["adapt", "--checkpoint", t / "missing.pt"], "does not exist"),
        (lambda c, t: ["adapt", "--checkpoint", t / "corrupt.pt"], "is corrupt"),
        (lambda c, t: ["adapt", "--checkpoint", c["cartpole"], "--index", "100000"], "out of range"),
        (lambda c, t: ["adapt", "--checkpoint", c["cartpole"], "--out", "/proc/forbidden"], "cannot write"),
        (lambda c, t: ["render", "--checkpoint", c["cartpole"], "--width", "5"], "out of range"),
        (lambda c, t: ["evaluate", "--checkpoint", c["cartpole"], "--baselines", "nope"], "unknown baseline"),
        (lambda c, t: ["adapt", "--family", "bogus"], "unknown family 'bogus'"),
        (lambda c, t: ["adapt", "--checkpoint", c["navigate"], "--urdf", t / "corrupt.pt"], "does not parse"),
        (lambda c, t: ["adapt", "--checkpoint", c["navigate"], "--left-wheels", "a"], "only apply together with"),
        (lambda c, t: ["adapt", "--checkpoint", c["cartpole"], "--urdf", t / "corrupt.pt"], "does not take a robot"),
        (lambda c, t: ["adapt", "--checkpoint", c["grasp"], "--object-urdf", t / "corrupt.pt"], "does not parse"),
        (
            lambda c, t: ["adapt", "--checkpoint", c["reach"], "--object-urdf", t / "corrupt.pt"],
            "does not take an object",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(checkpoints, tmp_path, make_args, message):
    (tmp_path / "corrupt.pt").write_bytes(b"\x80\x04 definitely not a checkpoint")
    proc = cli_run(*make_args(checkpoints, tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("adapting")]
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_evaluate_same_seeds_reads_an_unchanged_policy_the_same_at_every_k(checkpoints, tmp_path):
    """With --same-seeds every k runs k = 0's episode seeds: multitask (never updated) reads the
    same at every k; without it each k draws new episodes."""
    rows = {}
    for flag in ("--same-seeds", None):
        out = tmp_path / ("same" if flag else "new")
        args = ["evaluate", "--checkpoint", str(checkpoints["cartpole"]), "--multitask-checkpoint"]
        args += [str(checkpoints["cartpole"]), "--baselines", "multitask", "--tasks", "3", "--seeds", "1"]
        args += ["--steps", "2", "--episodes", "2", "--workers", "0", "--no-progress", "--out", str(out)]
        r = CliRunner().invoke(cli, args + ([flag] if flag else []))
        assert r.exit_code == 0, r.output
        results = json.loads((out / "results.json").read_text())
        assert results["same_seeds"] is (flag is not None)
        rows[flag] = results["splits"]["test"]["multitask"]["return_per_seed_task"][0]
    assert all(len(set(task)) == 1 for task in rows["--same-seeds"])  # per task, one value for every k
    assert any(len(set(task)) > 1 for task in rows[None])


def test_same_seeds_are_refused_with_a_fallback(checkpoints):
    from metarobot.errors import MetarobotError

    learner = MetaLearner.load(checkpoints["cartpole"])
    fallback = MetaLearner.load(checkpoints["cartpole"])
    try:
        learner.set_fallback(fallback)
        tasks = learner.family.heldout_tasks("test", 1)
        with pytest.raises(MetarobotError, match="scored on the episodes it was made on|score the fallback"):
            learner.adapt_many(tasks, steps=1, episodes=1, same_seeds=True)
        assert len(learner.adapt_many(tasks, steps=1, episodes=1, same_seeds=True, fallback=False)) == 1
    finally:
        learner.close()


def test_evaluate_of_an_untrained_method_runs_the_baselines_it_can_by_default(tmp_path):
    """reach-v2's shipped identify acts untrained (0 env steps) and no multitask policy is
    shipped for it: the plain command drops multitask-based baselines with a note on stderr and
    runs; asking for them by name is refused with one line."""
    common = ["evaluate", "--family", "reach-v2", "--tasks", "1", "--seeds", "1", "--steps", "1", "--episodes", "1"]
    common += ["--workers", "0", "--no-progress", "--split", "test"]
    r = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "evaluate: no multitask, finetune baseline for 'reach-v2'" in r.stderr
    methods = json.loads((tmp_path / "a" / "results.json").read_text())["splits"]["test"]
    assert set(methods) == {"identify", "scratch"}
    r = CliRunner().invoke(cli, [*common, "--baselines", "multitask", "--out", str(tmp_path / "b")])
    assert "pass --multitask-checkpoint" in str(r.exception)  # the console script: one Error: line, exit 2
