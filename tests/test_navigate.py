"""The ``navigate`` family: robots, maps, range sensor, wiring, own-URDF bases."""

import dataclasses
import math

import numpy as np
import pybullet as p
import pytest
from metarobot.envs.navigate import (
    N_RAYS,
    SENSOR_RANGE,
    NavigateTask,
    find_wheels,
    path_exists,
    wheeled_task_from_urdf,
)
from metarobot.envs.urdf_builder import diff_drive_urdf

import metarobot
from metarobot.errors import MetarobotError


@pytest.fixture
def fam():
    return metarobot.get_family("navigate")


def _empty(fam, **changes) -> NavigateTask:
    """A train-range robot with every motor normal, full gains and no obstacles."""
    task = fam.sample_tasks(1, "train", np.random.default_rng(11))[0]
    base = dict(
        left_gain=1.0,
        right_gain=1.0,
        left_sign=1,
        right_sign=1,
        start_yaw=0.0,
        goal_x=1.0,
        goal_y=0.0,
        obstacle_kinds=(),
        obstacle_xy=(),
        obstacle_sizes=(),
        obstacle_yaws=(),
    )
    base.update(changes)
    return dataclasses.replace(task, **base)


def _pose(env):
    x, y, yaw, *_ = env._state()
    return x, y, yaw


@pytest.mark.parametrize("split", ["train", "test", "ood"])
def test_maps_leave_start_and_goal_free_with_a_path(fam, split):
    for task in fam.sample_tasks(40, split, np.random.default_rng(5)):
        assert path_exists(task)
        for _, ox, oy, size, _ in task.obstacles():
            clearance = task.radius + size  # no obstacle covers the start or the goal
            assert math.hypot(ox, oy) > clearance and math.hypot(ox - task.goal_x, oy - task.goal_y) > clearance


def test_ood_is_outside_training_ranges(fam):
    train = {name: fam.param(name).train for name in ("chassis_length", "wheel_radius", "left_gain", "right_gain")}
    for t in fam.sample_tasks(100, "ood", np.random.default_rng(3)):
        outside = any(not r.contains(getattr(t, name)) for name, r in train.items()) or len(t.obstacle_kinds) > max(
            fam.param("obstacles").train
        )
        assert outside, t


def test_path_check_sees_a_blocked_goal(fam):
    walled = _empty(  # a ring of cylinders around the goal
        fam,
        obstacle_kinds=(1,) * 8,
        obstacle_xy=tuple(
            v for k in range(8) for v in (1.0 + 0.3 * math.cos(k * math.pi / 4), 0.3 * math.sin(k * math.pi / 4))
        ),
        obstacle_sizes=(0.12,) * 8,
        obstacle_yaws=(0.0,) * 8,
    )
    assert not path_exists(walled)
    assert path_exists(_empty(fam))


def test_driving_both_wheels_forward_moves_forward_by_radius_times_angle(fam):
    task = _empty(fam)
    env = fam.make_env(task)
    try:
        env.reset(seed=0)
        steps = 20  # 1 s at 20 Hz
        for _ in range(steps):
            env.step(np.array([0.5, 0.5]))
        x, y, yaw = _pose(env)
        expected = task.wheel_radius * 0.5 * task.max_wheel_speed * steps / 20.0
        assert x == pytest.approx(expected, rel=0.15)
        assert abs(y) < 0.05 and abs(yaw) < 0.15
    finally:
        env.close()


@pytest.mark.parametrize("reversed_side", ["left_sign", "right_sign"])
def test_a_reversed_motor_turns_the_robot(fam, reversed_side):
    env = fam.make_env(_empty(fam, **{reversed_side: -1}))
    try:
        env.reset(seed=0)
        for _ in range(10):
            env.step(np.array([0.5, 0.5]))
        x, y, yaw = _pose(env)
        assert math.hypot(x, y) < 0.08  # spins in place...
        assert abs(yaw) > 0.8  # ...and a reversed left motor turns it left, a right one right
        assert (yaw > 0) == (reversed_side == "left_sign")
    finally:
        env.close()


def test_range_readings_match_a_hand_built_map(fam):
    task = _empty(
        fam,
        obstacle_kinds=(0, 1),
        obstacle_xy=(1.0, 0.0, 0.0, -0.8),
        obstacle_sizes=(0.1, 0.15),
        obstacle_yaws=(0.0, 0.0),
        goal_x=0.0,
        goal_y=1.2,
    )
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=0)
        x, y, yaw = _pose(env)
        ranges = obs[8:] * SENSOR_RANGE
        ahead = 1.0 - 0.1 - (x * math.cos(yaw))  # box face at x = 0.9
        right = 0.8 - 0.15 + y  # cylinder surface at y = -0.65, ray 12 of 16 points right
        assert ranges[0] == pytest.approx(ahead, abs=0.03)
        assert ranges[3 * N_RAYS // 4] == pytest.approx(right, abs=0.03)
        assert ranges[N_RAYS // 2] == pytest.approx(SENSOR_RANGE)  # nothing behind
        assert ranges[N_RAYS // 4] == pytest.approx(SENSOR_RANGE)  # nor on the left
    finally:
        env.close()


def test_goal_in_robot_frame_and_success(fam):
    env = fam.make_env(_empty(fam, start_yaw=math.pi / 2, goal_x=0.0, goal_y=0.3))
    try:
        obs, _ = env.reset(seed=0)
        assert obs[0] * 2 == pytest.approx(0.3, abs=0.03)  # goal straight ahead of a robot facing +y
        assert abs(obs[1] * 2) < 0.06  # reset jitters the pose by up to 2 cm and 0.1 rad
        total, info, done = 0.0, {}, False
        while not done:
            obs, r, term, trunc, info = env.step(np.array([0.6, 0.6]))
            total += r
            done = term or trunc
        assert term and info["is_success"] and total > 0.5
    finally:
        env.close()


def test_collision_and_flip_are_reported(fam):
    env = fam.make_env(
        _empty(fam, obstacle_kinds=(0,), obstacle_xy=(0.45, 0.0), obstacle_sizes=(0.1,), obstacle_yaws=(0.0,))
    )
    try:
        env.reset(seed=0)
        hits = [env.step(np.array([1.0, 1.0]))[4]["collision"] for _ in range(40)]
        assert any(hits)
        env.reset(seed=0)
        c = env.sim.client
        pos, _ = p.getBasePositionAndOrientation(env.robot, physicsClientId=c)
        p.resetBasePositionAndOrientation(
            env.robot, [0, 0, 0.2], p.getQuaternionFromEuler([math.pi, 0, 0]), physicsClientId=c
        )
        *_, term, trunc, info = env.step(np.zeros(2))
        assert term and info["flipped"] and not info["is_success"]
    finally:
        env.close()


def test_hidden_parameters_are_not_observed(fam):
    base = _empty(fam)
    other = dataclasses.replace(base, left_sign=-1, wheel_radius=0.045, track_width=0.22, left_gain=0.8)
    e1, e2 = fam.make_env(base), fam.make_env(other)
    try:
        o1, _ = e1.reset(seed=1)
        o2, _ = e2.reset(seed=1)
        np.testing.assert_allclose(o1, o2, atol=1e-6)
    finally:
        e1.close()
        e2.close()


# -- a user's own wheeled base -----------------------------------------------------------------

_SKID = """<?xml version="1.0"?>
<robot name="skid">
  <link name="body"><inertial><mass value="3"/><inertia ixx="0.02" ixy="0" ixz="0" iyy="0.03" iyz="0" izz="0.04"/>
  </inertial><collision><origin xyz="0 0 0.02"/><geometry><box size="0.3 0.2 0.05"/></geometry></collision>
  <visual><origin xyz="0 0 0.02"/><geometry><box size="0.3 0.2 0.05"/></geometry></visual></link>
  {wheels}
</robot>
"""


def _skid_urdf() -> str:
    wheels = []
    for name, x, y in (("fl", 0.1, 0.13), ("rl", -0.1, 0.13), ("fr", 0.1, -0.13), ("rr", -0.1, -0.13)):
        wheels.append(
            f'<link name="{name}"><inertial><mass value="0.2"/><inertia ixx="1e-4" ixy="0" ixz="0" iyy="1e-4" '
            'iyz="0" izz="1e-4"/></inertial><collision><origin rpy="1.5708 0 0"/><geometry>'
            '<cylinder radius="0.05" length="0.03"/></geometry></collision></link>'
            f'<joint name="{name}_joint" type="continuous"><parent link="body"/><child link="{name}"/>'
            f'<origin xyz="{x} {y} 0"/><axis xyz="0 1 0"/></joint>'
        )
    return _SKID.format(wheels="\n".join(wheels))


def test_own_generated_robot_from_a_file_drives(fam, tmp_path):
    path = tmp_path / "bot.urdf"
    path.write_text(diff_drive_urdf(0.25, 0.24, 2.0, 0.04))
    assert find_wheels(path) == (("left_wheel_joint",), ("right_wheel_joint",))
    task = wheeled_task_from_urdf(path, map_from=_empty(fam))
    env = fam.make_env(task)
    try:
        env.reset(seed=0)
        for _ in range(20):
            env.step(np.array([0.5, 0.5]))
        x, y, _ = _pose(env)
        assert x == pytest.approx(0.04 * 0.5 * task.max_wheel_speed, rel=0.2) and abs(y) < 0.05
    finally:
        env.close()


def test_skid_steer_base_with_two_wheels_per_side(fam, tmp_path):
    path = tmp_path / "skid.urdf"
    path.write_text(_skid_urdf())
    left, right = find_wheels(path)
    assert set(left) == {"fl_joint", "rl_joint"} and set(right) == {"fr_joint", "rr_joint"}
    env = fam.make_env(wheeled_task_from_urdf(path, map_from=_empty(fam)))
    try:
        env.reset(seed=0)
        for _ in range(20):
            env.step(np.array([0.5, 0.5]))
        x, y, _ = _pose(env)
        assert x > 0.15 and abs(y) < 0.1  # all four wheels drive it forward
        env.reset(seed=0)
        for _ in range(20):
            env.step(np.array([-0.5, 0.5]))
        assert _pose(env)[2] > 0.3  # and it turns left on the spot (skidding, so slower than a diff drive)
    finally:
        env.close()


def test_named_wheels_override_and_bad_files_are_rejected(fam, tmp_path):
    path = tmp_path / "bot.urdf"
    path.write_text(diff_drive_urdf(0.25, 0.24, 2.0, 0.04))
    task = wheeled_task_from_urdf(path, left_wheels=("left_wheel_joint",), right_wheels=("right_wheel_joint",))
    assert task.left_wheels == ("left_wheel_joint",)
    with pytest.raises(MetarobotError, match="no joint"):
        wheeled_task_from_urdf(path, left_wheels=("nope",), right_wheels=("right_wheel_joint",))
    with pytest.raises(MetarobotError, match="both left and right"):
        wheeled_task_from_urdf(path, left_wheels=("left_wheel_joint",), right_wheels=("left_wheel_joint",))
    with pytest.raises(MetarobotError, match="no such file"):
        wheeled_task_from_urdf(tmp_path / "missing.urdf")
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot><link name='a'>")
    with pytest.raises(MetarobotError, match="does not parse"):
        wheeled_task_from_urdf(bad)
    arm = tmp_path / "arm.urdf"
    arm.write_text(
        '<robot name="a"><link name="base"/><link name="l1"/><joint name="j" type="revolute">'
        '<parent link="base"/><child link="l1"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" '
        'velocity="1"/></joint></robot>'
    )
    with pytest.raises(MetarobotError, match="found no left wheel"):
        wheeled_task_from_urdf(arm)
