# ruff: noqa: E501  (the case table keeps one case per line)
"""Bad input at every boundary (CLI options, YAML, task JSON, URDF, checkpoints, run
directories): each case must end with exit code 2 and one line ``Error: ...`` that names the
problem, print no traceback, leave every file that already existed unchanged, and write
nothing new. Validation runs before any training, so the whole file takes well under a minute
of CPU: the CLI runs in this process (``metarobot.cli.main``), not in a subprocess per case.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from metarobot.envs.urdf_builder import serial_arm_urdf
from metarobot.policies.pretrained import pretrained_path
from tiny import tiny

import metarobot
from metarobot.cli import main
from metarobot.config import MetaConfig
from metarobot.runio import RunLock
from metarobot.training import Run
from metarobot.validation import max_workers

TINY = tiny(episodes_per_update=1, without=["outer_epochs"])


def _arm(n: int = 4) -> str:
    return serial_arm_urdf([0.2] * n, ["z"] + ["y"] * (n - 1), [0.5] * n, [0.1] * n, [2.5] * n, [60] * n)


def _long_chain(revolute: int, fixed: int) -> str:
    parts = ['<robot name="long"><link name="l0"/>']
    for i in range(revolute + fixed):
        kind = "revolute" if i < revolute else "fixed"
        limit = '<limit lower="-1" upper="1" effort="1" velocity="1"/>' if kind == "revolute" else ""
        parts.append(
            f'<link name="l{i + 1}"/><joint name="j{i}" type="{kind}"><parent link="l{i}"/>'
            f'<child link="l{i + 1}"/><axis xyz="0 0 1"/>{limit}</joint>'
        )
    return "".join(parts) + "</robot>"


@dataclass
class World:
    root: Path
    fmt: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("bad_inputs")
    files: dict[str, str] = {}

    def write(name: str, data: str | bytes) -> None:
        path = d / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        files[name.replace(".", "_").replace("-", "_")] = str(path)

    arm = _arm(4)
    write("arm.urdf", arm)
    # -- YAML settings --
    for name, text in {
        "y_unknown.yaml": "itterations: 3\n",
        "y_hidden_scalar.yaml": "hidden_sizes: 64\n",
        "y_hidden_huge.yaml": "hidden_sizes: [100000, 100000]\n",
        "y_hidden_empty.yaml": "hidden_sizes: []\n",
        "y_hidden_bool.yaml": "hidden_sizes: [64, true]\n",
        "y_hidden_deep.yaml": "hidden_sizes: [64, 64, 64, 64, 64, 64, 64, 64, 64]\n",
        "y_device_int.yaml": "device: 5\n",
        "y_iter_bool.yaml": "iterations: true\n",
        "y_iter_float.yaml": "iterations: 2.5\n",
        "y_iter_str.yaml": "iterations: '10'\n",
        "y_eval_half.yaml": "eval_tasks: 0.5\n",
        "y_gamma_0.yaml": "gamma: 0\n",
        "y_gamma_big.yaml": "gamma: 1.5\n",
        "y_lambda_neg.yaml": "gae_lambda: -0.1\n",
        "y_vf_neg.yaml": "vf_coef: -5\n",
        "y_ent_neg.yaml": "ent_coef: -1\n",
        "y_clip_0.yaml": "clip_range: 0\n",
        "y_logstd_big.yaml": "log_std_init: 1000\n",
        "y_logstd_nan.yaml": "log_std_init: .nan\n",
        "y_inner_inf.yaml": "inner_lr: .inf\n",
        "y_reptile_0.yaml": "reptile_step: 0\n",
        "y_ppo_lr_0.yaml": "ppo_lr: 0\n",
        "y_ppo_epochs_0.yaml": "ppo_epochs: 0\n",
        "y_minibatch_0.yaml": "outer_minibatches: 0\n",
        "y_family_int.yaml": "family: 5\n",
        "y_algo_int.yaml": "algo: 5\n",
        "y_seed_neg.yaml": "seed: -5\n",
        "y_workers_float.yaml": "workers: 1.5\n",
        "y_list.yaml": "- iterations\n- 3\n",
        "y_syntax.yaml": "iterations: [1, 2\n",
        "y_tag.yaml": "iterations: !!python/object/apply:os.system ['true']\n",
        "y_nested.yaml": "a: " + "[" * 3000 + "]" * 3000 + "\n",
        "y_nested40.yaml": "a: " + "[" * 40 + "]" * 40 + "\n",
        "y_gamma_resume.yaml": "gamma: 0.5\n",
    }.items():
        write(name, text)
    write("y_latin1.yaml", "family: caf\xe9\n".encode("latin-1"))
    write("y_huge.yaml", "# " + "x" * (2**20 + 10) + "\n")
    # -- task JSON --
    cart = metarobot.get_family("cartpole").task("test", 0).to_dict()
    nav = metarobot.get_family("navigate").task("test", 0).to_dict()
    reach_urdf_task = metarobot.get_family("reach").task_from_urdf(d / "arm.urdf").to_dict()
    reach = metarobot.get_family("reach").task("test", 0).to_dict()

    def task(name: str, base: dict, **changes: object) -> None:
        write(name, json.dumps({**base, **changes}))

    task("t_unknown.json", cart, wheels=3)
    write("t_missing_field.json", json.dumps({k: v for k, v in cart.items() if k != "pole_mass"}))
    task("t_wrong_family.json", cart, family="reach")
    task("t_sign_bool.json", cart, actuator_sign=True)
    task("t_length_str.json", cart, pole_length="long")
    task("t_length_big.json", cart, pole_length=50.0)
    task("t_length_list.json", cart, pole_length=[1.0, 2.0])
    task("t_sign_2.json", cart, actuator_sign=2)
    write("t_nan.json", json.dumps(cart).replace(f'"pole_mass": {cart["pole_mass"]}', '"pole_mass": NaN'))
    write("t_inf.json", json.dumps(cart).replace(f'"pole_mass": {cart["pole_mass"]}', '"pole_mass": Infinity'))
    write("t_1e400.json", json.dumps(cart).replace(f'"pole_mass": {cart["pole_mass"]}', '"pole_mass": 1e400'))
    write("t_array.json", "[1, 2, 3]")
    write("t_syntax.json", "{'pole_length': 1}")
    write("t_nested.json", "[" * 5000 + "]" * 5000)
    write("t_nested40.json", '{"a": ' + "[" * 40 + "]" * 40 + "}")
    write("t_latin1.json", '{"family": "caf\xe9"}'.encode("latin-1"))
    write("t_huge.json", '{"pad": "' + "x" * (2**20 + 10) + '"}')
    xy = list(nav["obstacle_xy"])
    if nav["obstacle_kinds"]:
        write("n_obstacle_inf.json", json.dumps({**nav, "obstacle_xy": ["INF"] + xy[1:]}).replace('"INF"', "1e400"))
        sizes = [0.3] + nav["obstacle_sizes"][1:]
        task("n_obstacle_start.json", nav, obstacle_xy=[0.0, 0.0] + xy[2:], obstacle_sizes=sizes)
        task("n_obstacle_short.json", nav, obstacle_xy=xy[:-1])
        task("n_obstacle_far.json", nav, obstacle_xy=[99.0] + xy[1:])
    task("n_goal_nan_str.json", nav, goal_x="nan")
    task("n_urdf_missing.json", nav, urdf_path=str(d / "no_such.urdf"), left_wheels=["a"], right_wheels=["b"])
    task("r_joints_bool.json", reach, n_joints=True)
    task("r_joints_8.json", reach, n_joints=8)
    task("r_axis_bad.json", reach, joint_axes=["w"] + list(reach["joint_axes"][1:]))
    task("r_urdf_missing.json", reach_urdf_task, urdf_path=str(d / "no_such.urdf"))
    task("r_urdf_prismatic.json", reach_urdf_task, urdf_path=str(d / "u_prismatic.urdf"))
    task("r_urdf_mismatch.json", reach_urdf_task, link_masses=[9.0] * reach_urdf_task["n_joints"])
    task("r_urdf_fifo.json", reach_urdf_task, urdf_path=str(d / "fifo"))
    # -- URDF --
    write("u_prismatic.urdf", 'type="prismatic"'.join(arm.rsplit('type="revolute"', 1)))  # the wrist's
    write("u_syntax.urdf", arm.replace("</robot>", ""))
    write("u_root.urdf", arm.replace('<robot name="metarobot_arm">', "<notarobot>").replace("</robot>", "</notarobot>"))
    write("u_heavy.urdf", arm.replace('<mass value="0.5"/>', '<mass value="heavy"/>', 1))
    write("u_mass_nan.urdf", arm.replace('<mass value="0.5"/>', '<mass value="nan"/>', 1))
    write("u_mass_neg.urdf", arm.replace('<mass value="0.5"/>', '<mass value="-1"/>', 1))
    write("u_origin_inf.urdf", arm.replace('<origin xyz="0 0 0.05"/>', '<origin xyz="0 inf 0.05"/>', 1))
    write("u_inertia_abc.urdf", arm.replace('ixx="0.00174479"', 'ixx="abc"', 1))
    write("u_limit_nan.urdf", arm.replace('lower="-2.5"', 'lower="nan"', 1))
    write("u_axis_short.urdf", arm.replace('<axis xyz="0 0 1"/>', '<axis xyz="0 1"/>', 1))
    write("u_10000_joints.urdf", _long_chain(3, 9997))
    write("u_1000_links.urdf", _long_chain(3, 997))
    write("u_huge.urdf", "<robot>" + " " * (10 * 2**20 + 10) + "</robot>")
    write("u_latin1.urdf", '<robot name="caf\xe9"></robot>'.encode("latin-1") + b"\xff\xfe")
    write("u_empty.urdf", "")
    write(
        "u_laughs.urdf",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + ']><robot name="&i;"></robot>',
    )
    write(
        "u_xxe.urdf",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><robot name="&x;"></robot>',
    )
    write("u_no_links.urdf", '<robot name="empty"></robot>')
    write("u_fifo_mesh.urdf", arm.replace('<cylinder radius="0.06" length="0.05"/>', '<mesh filename="fifo"/>', 1))
    write("u_wheelless.urdf", '<robot name="box"><link name="base"/></robot>')
    os.mkfifo(d / "fifo")
    files["fifo"] = str(d / "fifo")
    # -- checkpoints (from the shipped cartpole meta-policy) --
    base = torch.load(pretrained_path("cartpole"), map_location="cpu", weights_only=True)

    def ckpt(name: str, data: object) -> None:
        torch.save(data, d / name)
        files[name.replace(".", "_").replace("-", "_")] = str(d / name)

    nan_state = {k: v.clone() for k, v in base["policy_state"].items()}
    first = next(k for k, v in nan_state.items() if v.is_floating_point())
    nan_state[first][...] = float("nan")
    ckpt("c_nan.pt", {**base, "policy_state": nan_state})
    ckpt("c_iter_str.pt", {**base, "iteration": "x"})
    ckpt("c_iter_neg.pt", {**base, "iteration": -1})
    ckpt("c_iter_bool.pt", {**base, "iteration": True})
    ckpt("c_steps_float.pt", {**base, "env_steps": float("inf")})
    ckpt("c_config_list.pt", {**base, "config": [1, 2]})
    ckpt("c_config_bad.pt", {**base, "config": {**base["config"], "inner_lr": -1.0}})
    ckpt("c_config_hidden.pt", {**base, "config": {**base["config"], "hidden_sizes": 64}})
    ckpt("c_state_list.pt", {**base, "policy_state": [1, 2]})
    ckpt("c_no_state.pt", {k: v for k, v in base.items() if k != "policy_state"})
    ckpt("c_format.pt", {**base, "format": "something-else"})
    ckpt("c_version.pt", {**base, "version": 99})
    ckpt("c_version_str.pt", {**base, "version": "one"})
    ckpt("c_history.pt", {**base, "history": "x"})
    ckpt("c_family.pt", {**base, "family": "reach"})
    ckpt("c_list.pt", [1, 2, 3])
    write("c_garbage.pt", b"\x00not a checkpoint\xff" * 10)
    write("c_empty.pt", b"")
    # a pickle whose loading would run os.system: weights_only refuses it
    write("c_evil.pt", b"cos\nsystem\n(S'echo pwned'\ntR.")
    # a metasgd checkpoint whose learned step sizes (its algo_state) are broken or missing
    from metarobot.algorithms.metasgd import STEP_SIZES_KEY, MetaSGD

    with MetaSGD(**TINY) as msgd:
        msgd.save(d / "m_ok.pt")
    msgd_data = torch.load(d / "m_ok.pt", weights_only=True)
    sizes = msgd_data["algo_state"][STEP_SIZES_KEY]
    nan_sizes = {**sizes, "log_std": torch.full_like(sizes["log_std"], float("nan"))}
    ckpt("m_nan.pt", {**msgd_data, "algo_state": {STEP_SIZES_KEY: nan_sizes}})
    ckpt("m_none.pt", {**msgd_data, "algo_state": {}})
    # a checkpoint whose fallback policy (adapting with --fallback) is broken
    ckpt("f_nested.pt", {**base, "fallback": {k: v for k, v in base.items() if k != "policy_state"}})
    ckpt("f_nested_nan.pt", {**base, "fallback": {**base, "policy_state": nan_state}})
    files["reach_mt"] = str(pretrained_path("reach", "multitask"))
    files["cart_oracle"] = str(pretrained_path("cartpole", "oracle"))
    files["cart_mt"] = str(pretrained_path("cartpole", "multitask"))
    # -- run directories and earlier outputs --
    Run(d / "run", MetaConfig(iterations=1, **TINY)).train(progress=False)
    files["run"] = str(d / "run")
    Run(d / "locked", MetaConfig(iterations=1, **TINY)).train(progress=False)
    files["locked"] = str(d / "locked")
    (d / "empty").mkdir()
    files["empty"] = str(d / "empty")
    (d / "nonempty").mkdir()
    (d / "nonempty" / "notes.txt").write_text("mine")
    files["nonempty"] = str(d / "nonempty")
    write("plainfile", "just a file")
    earlier = (("adapted", "adaptation.json"), ("adapted_zip", "adapted_policy.zip"), ("evaluated", "results.json"))
    for name, inside in earlier:
        (d / name).mkdir()
        (d / name / inside).write_text("earlier result")
        files[name] = str(d / name)
    write("video.gif", b"GIF89a earlier video")
    (d / "dirvideo.mp4").mkdir()
    files["dir"] = str(d)
    files["maxw"] = str(max_workers() + 1)
    lock = RunLock(d / "locked")  # another run "holds" this directory for the whole module
    try:
        yield World(d, files)
    finally:
        lock.release()


# fmt: off
CASES = [
    # -- meta-train: numbers ------------------------------------------------------------------
    ("meta-train --family cartpole --iterations 0", "iterations=0 is out of range [1, 1000000]"),
    ("meta-train --family cartpole --iterations -3", "iterations=-3 is out of range"),
    ("meta-train --family cartpole --iterations 1000001", "iterations=1000001 is out of range"),
    ("meta-train --family cartpole --iterations abc", "'abc' is not a valid integer"),
    ("meta-train --family cartpole --iterations 1e8", "'1e8' is not a valid integer"),
    ("meta-train --family cartpole --meta-batch 0", "meta-batch=0 is out of range [1, 10000]"),
    ("meta-train --family cartpole --meta-batch 100000000000", "meta-batch=100000000000 is out of range"),
    ("meta-train --family cartpole --meta-batch 1e11", "'1e11' is not a valid integer"),
    ("meta-train --family cartpole --episodes-per-update 0", "episodes-per-update=0 is out of range"),
    ("meta-train --family cartpole --episodes-per-update 100000000", "episodes-per-update=100000000 is out of range"),
    ("meta-train --family cartpole --meta-batch 10000 --episodes-per-update 5000 --out {dir}/never", "need about"),
    ("meta-train --family cartpole --inner-steps 0", "inner-steps=0 is out of range [1, 100]"),
    ("meta-train --family cartpole --inner-steps 101", "inner-steps=101 is out of range"),
    ("meta-train --family cartpole --inner-lr 0", "inner-lr=0.0 is out of range (0, 100]"),
    ("meta-train --family cartpole --inner-lr -1", "inner-lr=-1.0 is out of range"),
    ("meta-train --family cartpole --inner-lr inf", "inner-lr=inf is out of range"),
    ("meta-train --family cartpole --inner-lr nan", "inner-lr=nan is out of range"),
    ("meta-train --family cartpole --inner-lr 1000", "inner-lr=1000.0 is out of range"),
    ("meta-train --family cartpole --algo rma --teacher-fraction 1.5", "teacher-fraction=1.5 is out of range [0, 1)"),
    ("meta-train --family cartpole --algo rma --teacher-fraction 1", "teacher-fraction=1.0 is out of range [0, 1)"),
    ("meta-train --family cartpole --algo rma --context-dropout -0.1", "context-dropout=-0.1 is out of range [0, 1)"),
    ("meta-train --family cartpole --algo rma --context-dropout nan", "context-dropout=nan is out of range"),
    (
        "meta-train --family cartpole --algo rma-online --context-action-coef -1",
        "context-action-coef=-1.0 is out of range [0, 1000]",
    ),
    ("meta-train --family cartpole --outer-lr 0", "outer-lr=0.0 is out of range (0, 1]"),
    ("meta-train --family cartpole --outer-lr 2", "outer-lr=2.0 is out of range"),
    ("meta-train --family cartpole --outer-lr nan", "outer-lr=nan is out of range"),
    ("meta-train --family cartpole --outer-lr fast", "'fast' is not a valid float"),
    ("meta-train --family cartpole --outer-epochs 0", "outer-epochs=0 is out of range"),
    ("meta-train --family cartpole --workers -1", "workers=-1 is out of range [0, "),
    ("meta-train --family cartpole --workers 1000", "workers=1000 is more than this machine's"),
    ("meta-train --family cartpole --workers {maxw}", "is more than this machine's"),
    ("meta-train --family cartpole --eval-tasks -1", "eval-tasks=-1 is out of range [0, 10000]"),
    ("meta-train --family cartpole --eval-tasks 10001", "eval-tasks=10001 is out of range"),
    ("meta-train --family cartpole --seed -1", "seed=-1 is out of range [0, 4294967295]"),
    ("meta-train --family cartpole --seed 4294967296", "seed=4294967296 is out of range"),
    ("meta-train --family cartpole --seed 9223372036854775808", "seed=9223372036854775808 is out of range"),
    ("meta-train --family cartpole --seed 99999999999999999999999", "is out of range [0, 4294967295]"),
    ("meta-train --family cartpole --device cuda:99", "device=cuda:99"),
    ("meta-train --family cartpole --device mps", "device=mps"),
    ("meta-train --family cartpole --device gpu", "device must be cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("meta-train --family cartpole --device ''", "device must be cpu, cuda, cuda:N or mps, got ''"),
    ("meta-train --family bogus", "unknown family 'bogus'"),
    ("meta-train --family ''", "unknown family ''"),
    ("meta-train --algo ppo2", "'ppo2' is not one of"),
    ("meta-train --family cartpole --algo cavia --context-dim 0", "context-dim=0 is out of range [1, 1024]"),
    ("meta-train --family cartpole --algo identify", "family 'cartpole' has no identification model"),
    ("meta-train --family cartpole --algo metasgd --inner-lr 0", "inner-lr=0.0 is out of range (0, 100]"),
    ("meta-train --family cartpole --bogus 1", "No such option '--bogus'"),
    # -- meta-train: run directories ----------------------------------------------------------
    ("meta-train --resume", "--resume needs --out"),
    ("meta-train --family cartpole --resume --out {dir}/nowhere", "nothing to resume"),
    ("meta-train --family cartpole --resume --out {empty}", "nothing to resume"),
    ("meta-train --family cartpole --out {plainfile}", "plainfile' is a file"),
    ("meta-train --family cartpole --out {run}", "already holds a run"),
    ("meta-train --family cartpole --out {nonempty}", "is not empty"),
    ("meta-train --family cartpole --resume --out {locked} --iterations 5", "is in use by another metarobot run"),
    ("meta-train --family cartpole --resume --out {run} --iterations 1", "already finished 1 iterations"),
    ("meta-train --resume --out {run} --family reach", "family 'reach' contradicts the run"),
    ("meta-train --resume --out {run} --family cartpole --algo fomaml", "algo 'fomaml' contradicts"),
    ("meta-train --resume --out {run} --family cartpole --inner-lr 0.3", "inner-lr 0.3 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --meta-batch 3", "meta-batch 3 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --seed 5", "seed 5 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --episodes-per-update 3", "episodes-per-update 3 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --outer-lr 0.01", "outer-lr 0.01 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --inner-steps 2", "inner-steps 2 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --outer-epochs 7", "outer-epochs 7 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --eval-tasks 5", "eval-tasks 5 contradicts"),
    ("meta-train --resume --out {run} --family cartpole --config {y_gamma_resume_yaml}", "gamma 0.5 contradicts"),
    # -- meta-train: YAML settings ------------------------------------------------------------
    ("meta-train --family cartpole --config {dir}/none.yaml", "does not exist"),
    ("meta-train --family cartpole --config {dir}", "is a directory"),
    ("meta-train --family cartpole --config {fifo}", "is not a regular file"),
    ("meta-train --family cartpole --config {y_latin1_yaml}", "is not UTF-8 text"),
    ("meta-train --family cartpole --config {y_huge_yaml}", "at most 1,048,576 are read"),
    ("meta-train --family cartpole --config {y_syntax_yaml}", "is not valid YAML"),
    ("meta-train --family cartpole --config {y_tag_yaml}", "is not valid YAML"),
    ("meta-train --family cartpole --config {y_list_yaml}", "must be a YAML mapping"),
    ("meta-train --family cartpole --config {y_nested_yaml}", "nested"),
    ("meta-train --family cartpole --config {y_nested40_yaml}", "nested more than 32 levels"),
    ("meta-train --family cartpole --config {y_unknown_yaml}", "unknown setting(s): itterations"),
    ("meta-train --family cartpole --config {y_hidden_scalar_yaml}", "hidden-sizes must be a list of layer widths"),
    ("meta-train --family cartpole --config {y_hidden_huge_yaml}", "hidden-sizes entry=100000 is out of range [1, 4096]"),
    ("meta-train --family cartpole --config {y_hidden_empty_yaml}", "hidden-sizes must have 1..8 layers"),
    ("meta-train --family cartpole --config {y_hidden_bool_yaml}", "hidden-sizes entry must be an integer"),
    ("meta-train --family cartpole --config {y_hidden_deep_yaml}", "hidden-sizes must have 1..8 layers, got 9"),
    ("meta-train --family cartpole --config {y_device_int_yaml}", "device must be cpu, cuda, cuda:N or mps, got 5"),
    ("meta-train --family cartpole --config {y_iter_bool_yaml}", "iterations must be an integer in [1, 1000000], got True"),
    ("meta-train --family cartpole --config {y_iter_float_yaml}", "iterations must be an integer"),
    ("meta-train --family cartpole --config {y_iter_str_yaml}", "iterations must be an integer"),
    ("meta-train --family cartpole --config {y_eval_half_yaml}", "eval-tasks must be an integer in [0, 10000], got 0.5"),
    ("meta-train --family cartpole --config {y_gamma_0_yaml}", "gamma=0 is out of range (0, 1]"),
    ("meta-train --family cartpole --config {y_gamma_big_yaml}", "gamma=1.5 is out of range"),
    ("meta-train --family cartpole --config {y_lambda_neg_yaml}", "gae-lambda=-0.1 is out of range [0, 1]"),
    ("meta-train --family cartpole --config {y_vf_neg_yaml}", "vf-coef=-5 is out of range [0, 100]"),
    ("meta-train --family cartpole --config {y_ent_neg_yaml}", "ent-coef=-1 is out of range"),
    ("meta-train --family cartpole --config {y_clip_0_yaml}", "clip-range=0 is out of range (0, 1]"),
    ("meta-train --family cartpole --config {y_logstd_big_yaml}", "log-std-init=1000 is out of range [-20, 2]"),
    ("meta-train --family cartpole --config {y_logstd_nan_yaml}", "log-std-init=nan is out of range"),
    ("meta-train --family cartpole --config {y_inner_inf_yaml}", "inner-lr=inf is out of range"),
    ("meta-train --family cartpole --config {y_reptile_0_yaml}", "reptile-step=0 is out of range (0, 1]"),
    ("meta-train --family cartpole --config {y_ppo_lr_0_yaml}", "ppo-lr=0 is out of range"),
    ("meta-train --family cartpole --config {y_ppo_epochs_0_yaml}", "ppo-epochs=0 is out of range"),
    ("meta-train --family cartpole --config {y_minibatch_0_yaml}", "outer-minibatches=0 is out of range"),
    ("meta-train --config {y_family_int_yaml}", "unknown family '5'"),
    ("meta-train --family cartpole --config {y_algo_int_yaml}", "unknown algo '5'"),
    ("meta-train --family cartpole --config {y_seed_neg_yaml}", "seed=-5 is out of range"),
    ("meta-train --family cartpole --config {y_workers_float_yaml}", "workers must be an integer"),
    # -- adapt: options -----------------------------------------------------------------------
    ("adapt --family cartpole --index -1", "--index=-1 is out of range [0, 99]"),
    ("adapt --family cartpole --index 100", "--index=100 is out of range [0, 99]"),
    ("adapt --family cartpole --steps -1", "--steps=-1 is out of range [0, 100]"),
    ("adapt --family cartpole --steps 101", "--steps=101 is out of range"),
    ("adapt --family cartpole --episodes 0", "--episodes=0 is out of range [1, 10000]"),
    ("adapt --family cartpole --episodes -5", "--episodes=-5 is out of range"),
    ("adapt --family cartpole --episodes 10001", "--episodes=10001 is out of range"),
    ("adapt --family cartpole --workers -1", "--workers=-1 is out of range"),
    ("adapt --family cartpole --workers 1000", "--workers=1000 is more than this machine's"),
    ("adapt --family cartpole --seed -1", "--seed=-1 is out of range [0, 4294967295]"),
    ("adapt --family cartpole --seed 18446744073709551616", "--seed=18446744073709551616 is out of range"),
    ("adapt --family cartpole --device cuda:99", "--device=cuda:99"),
    ("adapt --family cartpole --device mps", "--device=mps"),
    ("adapt --family cartpole --device tpu", "--device must be cpu, cuda, cuda:N or mps"),
    ("adapt --family cartpole --split bogus", "'bogus' is not one of"),
    ("adapt --family bogus", "unknown family 'bogus'"),
    ("adapt", "give --family or --checkpoint"),
    ("adapt --family cartpole --out {adapted}", "adaptation.json already exists; choose another --out or add --force"),
    ("adapt --family cartpole --out {adapted_zip}", "adapted_policy.zip already exists"),
    ("adapt --family cartpole --out {plainfile}", "plainfile' is a file"),
    ("adapt --family cartpole --ee-link tip", "--ee-link only apply together with --urdf"),
    ("adapt --family cartpole --left-wheels a", "--left-wheels only apply together with --urdf"),
    ("adapt --family reach --urdf {arm_urdf} --object-urdf {arm_urdf}", "give one of --urdf, --object-urdf and --object-mesh"),
    ("adapt --family reach --urdf {arm_urdf} --left-wheels a", "do(es) not apply to family 'reach-v2'"),
    ("adapt --family cartpole --urdf {arm_urdf}", "does not take a robot from a URDF file"),
    ("adapt --family cartpole --object-urdf {arm_urdf}", "does not take an object from a URDF file"),
    # -- adapt: checkpoints -------------------------------------------------------------------
    ("adapt --checkpoint {dir}/none.pt", "does not exist"),
    ("adapt --checkpoint {dir}", "is a directory"),
    ("adapt --checkpoint {c_garbage_pt}", "is corrupt or not a metarobot checkpoint"),
    ("adapt --checkpoint {c_empty_pt}", "is corrupt or not a metarobot checkpoint"),
    ("adapt --checkpoint {c_evil_pt}", "is corrupt or not a metarobot checkpoint"),
    ("adapt --checkpoint {c_list_pt}", "is not a metarobot checkpoint"),
    ("adapt --checkpoint {c_nan_pt}", "holds NaN or infinite values"),
    ("meta-train --family cartpole --init-from {dir}/nope.pt", "nope.pt does not exist"),
    ("meta-train --family cartpole --init-from {c_garbage_pt}", "is corrupt or not a metarobot checkpoint"),
    # -- adapt / evaluate / render: --fallback ------------------------------------------------
    ("adapt --family cartpole --fallback {c_garbage_pt}", "is corrupt or not a metarobot checkpoint"),
    ("adapt --family cartpole --fallback {dir}/nope.pt", "nope.pt does not exist"),
    ("adapt --family cartpole --fallback nosuchalgo", "'nosuchalgo' is neither a file nor an algorithm with a shipped"),
    ("meta-train --family cartpole --fallback oracle", "the fallback must act on the observation alone"),
    ("adapt --family cartpole --fallback {c_nan_pt}", "holds NaN or infinite values"),
    ("adapt --checkpoint {f_nested_pt}", "its fallback lacks 'policy_state'"),
    ("adapt --checkpoint {f_nested_nan_pt}", "(its fallback): log_std holds NaN or infinite values"),
    ("evaluate --family cartpole --fallback {reach_mt}", "the fallback is a 'reach' policy, not one of 'cartpole'"),
    ("render --family cartpole --fallback {cart_oracle}", "the fallback must act on the observation alone"),
    ("evaluate --family navigate --fallback multitask --same-seeds", "--same-seeds would score a fallback's choice"),
    ("meta-train --family cartpole --fallback {c_garbage_pt}", "is corrupt or not a metarobot checkpoint"),
    # -- rl2: what an LSTM policy that adapts by memory cannot take -------------------------------
    ("meta-train --family cartpole --algo rl2 --fallback {cart_oracle}", "the fallback must act on the observation alone"),
    ("meta-train --family cartpole --algo rl2 --init-from {cart_mt}", "rl2 cannot start from --init-from"),
    ("meta-train --family cartpole --algo rl2 --sampler ray", "it cannot use the ray sampler"),
    ("meta-train --family cartpole --algo rl2 --rl2-envs 0", "rl2-envs"),
    ("meta-train --family cartpole --fallback {cart_oracle}", "the fallback must act on the observation alone"),
    ("meta-train --family reach --fallback {cart_oracle}", "the fallback is a 'cartpole' policy, not one of 'reach'"),
    ("meta-train --family cartpole --fallback ''", "fallback must be a path or address, got ''"),
    ("adapt --checkpoint {c_iter_str_pt}", "iteration must be a non-negative integer, got 'x'"),
    ("adapt --checkpoint {c_iter_neg_pt}", "iteration must be a non-negative integer, got -1"),
    ("adapt --checkpoint {c_iter_bool_pt}", "iteration must be a non-negative integer, got True"),
    ("adapt --checkpoint {c_steps_float_pt}", "env_steps must be a non-negative integer"),
    ("adapt --checkpoint {c_config_list_pt}", "config is not a mapping"),
    ("adapt --checkpoint {c_config_bad_pt}", "holds bad settings: inner-lr=-1.0 is out of range"),
    ("adapt --checkpoint {c_config_hidden_pt}", "holds bad settings: hidden-sizes must be a list"),
    ("adapt --checkpoint {c_state_list_pt}", "policy_state is not a mapping of tensors"),
    ("adapt --checkpoint {c_no_state_pt}", "lacks 'policy_state'"),
    ("adapt --checkpoint {c_format_pt}", "is not a metarobot checkpoint"),
    ("adapt --checkpoint {c_version_pt}", "was written by a newer metarobot"),
    ("adapt --checkpoint {c_version_str_pt}", "was written by a newer metarobot"),
    ("adapt --checkpoint {c_history_pt}", "history must be a list"),
    ("adapt --checkpoint {c_family_pt}", "differs from its settings"),
    ("adapt --family reach --checkpoint {run}/meta_policy.pt", "is for family 'cartpole', not 'reach'"),
    ("adapt --checkpoint {m_nan_pt}", "metasgd checkpoint's learned step sizes: log_std holds NaN or infinite values"),
    ("adapt --checkpoint {m_none_pt}", "metasgd checkpoint lacks its learned step sizes"),
    ("evaluate --checkpoint {m_nan_pt}", "log_std holds NaN or infinite values"),
    # -- adapt: task JSON ---------------------------------------------------------------------
    ("adapt --family cartpole --task {dir}/none.json", "does not exist"),
    ("adapt --family cartpole --task {dir}", "is a directory"),
    ("adapt --family cartpole --task {fifo}", "is not a regular file"),
    ("adapt --family cartpole --task {t_latin1_json}", "is not UTF-8 text"),
    ("adapt --family cartpole --task {t_huge_json}", "at most 1,048,576 are read"),
    ("adapt --family cartpole --task {t_syntax_json}", "is not valid JSON"),
    ("adapt --family cartpole --task {t_array_json}", "must hold a JSON object"),
    ("adapt --family cartpole --task {t_nested_json}", "nested"),
    ("adapt --family cartpole --task {t_nested40_json}", "nested more than 32 levels"),
    ("adapt --family cartpole --task {t_nan_json}", "NaN is not a number"),
    ("adapt --family cartpole --task {t_inf_json}", "Infinity is not a number"),
    ("adapt --family cartpole --task {t_1e400_json}", "pole_mass=inf: values must be finite"),
    ("adapt --family cartpole --task {t_unknown_json}", "unknown cartpole task field(s): wheels"),
    ("adapt --family cartpole --task {t_missing_field_json}", "missing field(s): pole_mass"),
    ("adapt --family cartpole --task {t_wrong_family_json}", "task is for family 'reach'"),
    ("adapt --family cartpole --task {t_sign_bool_json}", "actuator_sign=True: each value must be a int"),
    ("adapt --family cartpole --task {t_sign_2_json}", "actuator_sign=2 must be +1 or -1"),
    ("adapt --family cartpole --task {t_length_str_json}", "pole_length='long': each value must be a float"),
    ("adapt --family cartpole --task {t_length_big_json}", "pole_length=50.0 is out of range"),
    ("adapt --family cartpole --task {t_length_list_json}", "pole_length"),
    ("adapt --family navigate --task {n_obstacle_inf_json}", "obstacle_xy=[inf, "),
    ("adapt --family navigate --task {n_obstacle_start_json}", "an obstacle covers the start"),
    ("adapt --family navigate --task {n_obstacle_short_json}", "obstacle kinds but"),
    ("adapt --family navigate --task {n_obstacle_far_json}", "obstacle_xy[0]=99.0 is out of range [-2.8, 2.8]"),
    ("adapt --family navigate --task {n_goal_nan_str_json}", "goal_x='nan': each value must be a float"),
    ("adapt --family navigate --task {n_urdf_missing_json}", "does not exist"),
    ("adapt --family reach --task {r_joints_bool_json}", "n_joints=True: each value must be a int"),
    ("adapt --family reach --task {r_joints_8_json}", "n_joints=8 is out of range"),
    ("adapt --family reach --task {r_axis_bad_json}", "joint_axes[0]='w' is not one of x, y, z"),
    ("adapt --family reach --task {r_urdf_missing_json}", "does not exist"),
    ("adapt --family reach --task {r_urdf_prismatic_json}", "prismatic"),
    ("adapt --family reach --task {r_urdf_mismatch_json}", "robot fields do not match its URDF"),
    ("adapt --family reach --task {r_urdf_fifo_json}", "is not a regular file"),
    # -- adapt: URDF --------------------------------------------------------------------------
    ("adapt --family reach --urdf {dir}/none.urdf", "does not exist"),
    ("adapt --family reach --urdf {dir}", "is a directory"),
    ("adapt --family reach --urdf {fifo}", "is not a regular file"),
    ("adapt --family reach --urdf {u_huge_urdf}", "at most 10,485,760 are read"),
    ("adapt --family reach --urdf {u_10000_joints_urdf}", "has 10001 links and 10000 joints; at most 128 and 127"),
    ("adapt --family reach --urdf {u_1000_links_urdf}", "has 1001 links and 1000 joints"),
    ("adapt --family reach --urdf {u_syntax_urdf}", "does not parse"),
    ("adapt --family reach --urdf {u_empty_urdf}", "does not parse"),
    ("adapt --family reach --urdf {u_latin1_urdf}", "does not parse"),
    ("adapt --family reach --urdf {u_laughs_urdf}", "does not parse"),
    ("adapt --family reach --urdf {u_xxe_urdf}", "does not parse"),
    ("adapt --family reach --urdf {u_root_urdf}", "no <robot> root"),
    ("adapt --family reach --urdf {u_no_links_urdf}", "has no links"),
    ("adapt --family reach --urdf {u_heavy_urdf}", "<mass value='heavy'> is not a number"),
    ("adapt --family reach --urdf {u_mass_nan_urdf}", "<mass value='nan'> must be finite"),
    ("adapt --family reach --urdf {u_mass_neg_urdf}", "<mass value='-1'> must be >= 0"),
    ("adapt --family reach --urdf {u_origin_inf_urdf}", "<origin xyz='0 inf 0.05'> must be finite"),
    ("adapt --family reach --urdf {u_inertia_abc_urdf}", "<inertia ixx='abc'> is not a number"),
    ("adapt --family reach --urdf {u_limit_nan_urdf}", "<limit lower='nan'> is not a number"),
    ("adapt --family reach --urdf {u_axis_short_urdf}", "has a bad axis '0 1'"),
    ("adapt --family reach --urdf {u_fifo_mesh_urdf}", "mesh fifo is not a regular file"),
    ("adapt --family reach --urdf {u_prismatic_urdf} --ee-link ee", "prismatic"),
    ("adapt --family reach --urdf {arm_urdf} --ee-link nowhere", "nowhere"),
    ("adapt --family navigate --urdf {u_wheelless_urdf}", "wheel"),
    ("adapt --family grasp --object-urdf {u_10000_joints_urdf}", "at most 128 and 127"),
    ("adapt --family grasp --object-urdf {fifo}", "is not a regular file"),
    ("adapt --family grasp --object-urdf {u_heavy_urdf}", "is not a number"),
    # -- evaluate -----------------------------------------------------------------------------
    ("evaluate --family cartpole --tasks 0", "--tasks=0 is out of range [1, 1000]"),
    ("evaluate --family cartpole --tasks 1000000", "--tasks=1000000 is out of range"),
    ("evaluate --family cartpole --seeds 0", "--seeds=0 is out of range [1, 100]"),
    ("evaluate --family cartpole --seeds 101", "--seeds=101 is out of range"),
    ("evaluate --family cartpole --steps -1", "--steps=-1 is out of range"),
    ("evaluate --family cartpole --episodes 0", "--episodes=0 is out of range"),
    ("evaluate --family cartpole --baselines bogus", "unknown baseline 'bogus'"),
    ("evaluate --family cartpole --workers 1000", "--workers=1000 is more than this machine's"),
    ("evaluate --family cartpole --seed -2", "--seed=-2 is out of range"),
    ("evaluate --family cartpole --device cuda:99", "--device=cuda:99"),
    ("evaluate --family cartpole --split train", "'train' is not one of"),
    ("evaluate --family cartpole --out {evaluated}", "results.json already exists"),
    ("evaluate --family cartpole --checkpoint {dir}/none.pt", "does not exist"),
    ("evaluate --family reach --checkpoint {run}/meta_policy.pt", "is for family 'cartpole', not 'reach'"),
    ("evaluate --checkpoint {c_nan_pt}", "holds NaN or infinite values"),
    ("evaluate --family bogus", "unknown family 'bogus'"),
    # -- render -------------------------------------------------------------------------------
    ("render --family cartpole --fps 0", "--fps=0.0 is out of range (0, 240]"),
    ("render --family cartpole --fps -10", "--fps=-10.0 is out of range"),
    ("render --family cartpole --fps nan", "--fps=nan is out of range"),
    ("render --family cartpole --fps inf", "--fps=inf is out of range"),
    ("render --family cartpole --fps 1000", "--fps=1000.0 is out of range"),
    ("render --family cartpole --episodes 0", "--episodes=0 is out of range [1, 100]"),
    ("render --family cartpole --episodes 100000", "--episodes=100000 is out of range"),
    ("render --family cartpole --width 10", "--width=10 is out of range [32, 3840]"),
    ("render --family cartpole --width 100000", "--width=100000 is out of range"),
    ("render --family cartpole --height 0", "--height=0 is out of range [32, 2160]"),
    ("render --family cartpole --format gif --out {dir}/x.mp4", "is a mp4 file but --format is gif"),
    ("render --family cartpole --format mp4 --out {dir}/x.gif", "is a gif file but --format is mp4"),
    ("render --family cartpole --format avi", "'avi' is not one of"),
    ("render --family cartpole --out {video_gif}", "video.gif already exists"),
    ("render --family cartpole --format gif --out {dir}/video", "video.gif already exists"),
    ("render --family cartpole --out {dir}/dirvideo.mp4", "dirvideo.mp4' is a directory"),
    ("render --family cartpole --before-after --adapt-episodes 0", "--adapt-episodes=0 is out of range"),
    ("render --family cartpole --before-after --steps -1", "--steps=-1 is out of range"),
    ("render --family cartpole --index 100", "--index=100 is out of range"),
    ("render --family cartpole --task {t_1e400_json}", "values must be finite"),
    ("render --family reach --urdf {u_10000_joints_urdf}", "at most 128 and 127"),
    ("render --checkpoint {c_iter_str_pt}", "iteration must be a non-negative integer"),
    # -- families and the command itself ------------------------------------------------------
    ("families bogus", "unknown family 'bogus'"),
    ("bogus-command", "No such command 'bogus-command'"),
]
# fmt: on


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns, p.read_bytes() if st.st_size < 2**20 else b"")
        elif not p.is_dir():
            out[str(p)] = (0, 0, b"special")
    return out


def test_enough_cases():
    assert len(CASES) >= 150
    assert len({c for c, _ in CASES}) == len(CASES)  # no duplicates


@pytest.mark.parametrize("command, message", CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(command, message, world, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # default outputs (runs/...) would land here
    argv = [a.format(**world.fmt) for a in shlex.split(command)]
    before = _snapshot(world.root)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert exc.value.code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert _snapshot(world.root) == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("limit", ["6.283185307179586", "inf", "1e300"])
def test_joint_limits_of_two_pi_or_infinite_are_accepted(limit, tmp_path):
    """Were refused with "value 6.2832 is out of range [0.05, 6.283185307179586]"."""
    path = tmp_path / "arm.urdf"
    path.write_text(_arm(3).replace('lower="-2.5" upper="2.5"', f'lower="-{limit}" upper="{limit}"', 1))
    from metarobot.validation import check_urdf_file

    check_urdf_file(path)
    task = metarobot.get_family("reach").task_from_urdf(path)
    if limit == "inf":  # no bounds: a full turn, as for a continuous joint
        assert task.joint_limits[0] == pytest.approx(3.1416)
    else:
        assert 6.28 <= task.joint_limits[0] <= 6.283185307179586
    assert task.joint_limits[1] == 2.5
