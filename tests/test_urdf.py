"""A user's own arm from a URDF file becomes a reach task; bad files get clear errors."""

import numpy as np
import pytest
from metarobot.envs.reach import arm_task_from_urdf
from metarobot.envs.urdf_builder import serial_arm_urdf

import metarobot
from metarobot.errors import MetarobotError


def _arm_text(n=4):
    return serial_arm_urdf([0.2] * n, ["z"] + ["y"] * (n - 1), [0.5] * n, [0.1] * n, [2.5] * n, [60] * n)


def test_generated_arm_from_file_runs(tmp_path):
    path = tmp_path / "my_arm.urdf"
    path.write_text(_arm_text(4))
    task = metarobot.get_family("reach").task_from_urdf(path)
    assert task.n_joints == 4 and task.ee_link == "ee" and task.urdf_path == str(path.resolve())
    assert task.link_lengths == pytest.approx((0.2, 0.2, 0.2, 0.2))
    env = metarobot.make_env(task)
    obs, info = env.reset(seed=0)
    assert obs[21:28].tolist() == [1, 1, 1, 1, 0, 0, 0]
    for _ in range(10):
        obs, r, *_ = env.step(np.ones(7))
    assert np.isfinite(r)
    env.close()
    # a file-based task still round-trips through JSON
    fam = metarobot.get_family("reach")
    assert fam.task_from_dict(task.to_dict()) == task


def test_named_end_effector_and_fixed_joints_in_between(tmp_path):
    text = _arm_text(3)
    path = tmp_path / "arm.urdf"
    path.write_text(text)
    task = arm_task_from_urdf(path, ee_link="link2")
    assert task.ee_link == "link2" and task.n_joints == 3
    with pytest.raises(MetarobotError, match="'gripper' is not a link of the file; links on candidate chains: link0, "):
        arm_task_from_urdf(path, ee_link="gripper")
    # a link part-way down: the arm is the chain to it (2 joints); the joint beyond is held still
    short = arm_task_from_urdf(path, ee_link="link1")
    assert short.n_joints == 2 and short.joint_names == ("joint0", "joint1")
    with pytest.raises(MetarobotError, match="'base' cannot be used: no revolute joint"):
        arm_task_from_urdf(path, ee_link="base")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.replace("</robot>", ""), "does not parse"),
        (
            lambda t: t.replace('<robot name="metarobot_arm">', "<notarobot>").replace("</robot>", "</notarobot>"),
            "no <robot> root",
        ),
        (
            lambda t: t.replace(
                '<joint name="joint3" type="revolute"><parent link="link2"/>',
                '<joint name="joint3" type="revolute"><parent link="link9"/>',
            ),
            "names a link 'link9' that is not defined",
        ),
    ],
)
def test_bad_urdf_is_rejected_with_the_reason(tmp_path, mutate, message):
    path = tmp_path / "bad.urdf"
    path.write_text(mutate(_arm_text(4)))
    with pytest.raises(MetarobotError, match=message):
        arm_task_from_urdf(path)


def test_an_arm_of_eight_joints_is_held_at_its_first_and_a_missing_file_refused(tmp_path):
    path = tmp_path / "long.urdf"
    path.write_text(_arm_text(8))
    task = arm_task_from_urdf(path)  # ARMAR's arms have 8 joints, none branching off between them
    assert task.n_joints == 7 and task.joint_names == tuple(f"joint{i}" for i in range(1, 8))
    with pytest.raises(MetarobotError, match="cannot read URDF"):
        arm_task_from_urdf(tmp_path / "missing.urdf")
