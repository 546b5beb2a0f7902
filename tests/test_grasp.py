"""The ``grasp`` family: grippers, objects, resting, scripted grasps, own-object URDFs."""

import dataclasses

import numpy as np
import pybullet as p
import pytest
from metarobot.envs.grasp import LIFT_HEIGHT, SHAPES, GraspTask, object_task_from_urdf

import metarobot
from metarobot.errors import MetarobotError


@pytest.fixture
def fam():
    return metarobot.get_family("grasp")


def _easy(fam, **changes) -> GraspTask:
    task = fam.sample_tasks(1, "train", np.random.default_rng(0))[0]
    base = dict(
        object_shape="box",
        object_size=0.02,
        object_height=0.05,
        object_mass=0.1,
        object_friction=0.9,
        grip_force=30.0,
        pad_friction=1.0,
        max_opening=0.1,
        finger_length=0.06,
    )
    base.update(changes)
    return dataclasses.replace(task, **base)


def scripted_grasp(env, task: GraspTask) -> dict:
    """Open, centre over the object, descend, close, lift: what a policy must find out.
    (It reads the finger length from the task, which the policy cannot.)"""
    obs, _ = env.reset(seed=0)
    info: dict = {}
    for k in range(env.max_episode_steps):
        rel = obs[6:9] * 0.05  # object relative to the palm, in the gripper's frame (m)
        if k < 30:  # centre and descend with the fingers open
            a = [rel[0] / 0.02, rel[1] / 0.02, (rel[2] + task.finger_length * 0.6) / 0.02, 0.0, -1.0]
        elif k < 40:  # close
            a = [0.0, 0.0, 0.0, 0.0, 1.0]
        else:  # lift to 30 cm, still squeezing
            a = [0.0, 0.0, 1.0 if obs[2] / 5 < 0.3 else 0.0, 0.0, 1.0]
        obs, _, term, trunc, info = env.step(np.clip(a, -1, 1))
        if term or trunc:
            break
    return info


@pytest.mark.parametrize("split", ["train", "test", "ood"])
def test_objects_rest_on_the_table_after_reset(fam, split):
    tasks = fam.sample_tasks(12, split, np.random.default_rng(4))
    env = fam.make_env(tasks[0])
    try:
        for task in tasks:
            env.set_task(task)
            env.reset(seed=1)
            c = env.sim.client
            for _ in range(10):  # half a second without touching it
                env.step(np.array([0.0, 0.0, 0.0, 0.0, -1.0]))
            lo, _ = p.getAABB(env.object, -1, physicsClientId=c)
            assert -0.004 < lo[2] < 0.004, (task, lo)  # on the table: not sunk in, not floating
            vel, _ = p.getBaseVelocity(env.object, physicsClientId=c)
            assert np.linalg.norm(vel) < 0.05
            contacts = p.getContactPoints(env.gripper, env.object, physicsClientId=c)
            assert not contacts  # the gripper starts clear of the object
    finally:
        env.close()


@pytest.mark.parametrize("shape", SHAPES)
def test_scripted_grasp_lifts_every_shape_of_an_easy_task(fam, shape):
    task = _easy(fam, object_shape=shape)
    env = fam.make_env(task)
    try:
        info = scripted_grasp(env, task)
        assert info["is_success"] and info["lift"] >= LIFT_HEIGHT
        assert info["contact_left"] and info["contact_right"]
    finally:
        env.close()


def test_scripted_grasp_fails_on_an_object_too_wide_for_the_fingers(fam):
    task = _easy(fam, object_size=0.06, max_opening=0.09)  # 12 cm wide, fingers open to 9 cm
    env = fam.make_env(task)
    try:
        info = scripted_grasp(env, task)
        assert not info["is_success"] and info["lift"] < 0.01
    finally:
        env.close()


def test_weak_grip_on_a_heavy_slippery_object_fails(fam):
    task = _easy(fam, object_mass=1.5, object_friction=0.2, grip_force=5.0)
    env = fam.make_env(task)
    try:
        assert not scripted_grasp(env, task)["is_success"]
    finally:
        env.close()


def test_hidden_parameters_are_not_observed(fam):
    base = _easy(fam)
    other = dataclasses.replace(base, object_mass=0.3, object_friction=0.6, grip_force=20.0, finger_length=0.07)
    e1, e2 = fam.make_env(base), fam.make_env(other)
    try:
        o1, _ = e1.reset(seed=3)
        o2, _ = e2.reset(seed=3)
        np.testing.assert_allclose(o1, o2, atol=1e-6)
    finally:
        e1.close()
        e2.close()


def test_physics_blow_up_ends_the_episode_with_a_flag(fam):
    env = fam.make_env(_easy(fam))
    try:
        env.reset(seed=0)
        p.resetBaseVelocity(env.object, [1e3, 0, 0], [0, 0, 0], physicsClientId=env.sim.client)
        obs, _, term, _, info = env.step(np.zeros(5))
        assert term and info["physics_error"] and np.isfinite(obs).all()
    finally:
        env.close()


_OBJ = """<?xml version="1.0"?>
<robot name="mug"><link name="mug"><inertial><mass value="0.15"/>
<inertia ixx="1e-4" ixy="0" ixz="0" iyy="1e-4" iyz="0" izz="1e-4"/></inertial>
<visual><geometry><cylinder radius="0.022" length="0.06"/></geometry></visual>
<collision><geometry><cylinder radius="0.022" length="0.06"/></geometry></collision></link></robot>
"""


def test_own_object_urdf_is_grasped_and_bad_files_are_rejected(fam, tmp_path):
    path = tmp_path / "mug.urdf"
    path.write_text(_OBJ)
    task = object_task_from_urdf(path, gripper_from=_easy(fam))
    assert task.object_urdf == str(path.resolve())
    env = fam.make_env(task)
    try:
        assert scripted_grasp(env, task)["is_success"]
    finally:
        env.close()
    with pytest.raises(MetarobotError, match="no such file"):
        object_task_from_urdf(tmp_path / "missing.urdf")
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot><link name='a'>")
    with pytest.raises(MetarobotError, match="does not parse"):
        object_task_from_urdf(bad)
    static = tmp_path / "static.urdf"
    static.write_text(_OBJ.replace('<mass value="0.15"/>', '<mass value="0"/>'))
    with pytest.raises(MetarobotError, match="no mass"):
        object_task_from_urdf(static)
    jointed = tmp_path / "jointed.urdf"
    jointed.write_text(
        _OBJ.replace(
            "</robot>",
            '<link name="lid"><inertial><mass value="0.01"/><inertia ixx="1e-5" ixy="0" ixz="0" iyy="1e-5" iyz="0" '
            'izz="1e-5"/></inertial></link><joint name="hinge" type="revolute"><parent link="mug"/>'
            '<child link="lid"/><axis xyz="0 1 0"/><limit lower="0" upper="1" effort="1" velocity="1"/>'
            "</joint></robot>",
        )
    )
    with pytest.raises(MetarobotError, match="single body"):
        object_task_from_urdf(jointed)


@pytest.mark.parametrize("family", ["grasp", "grasp-v1", "grasp-v2"])
def test_an_object_through_the_floor_ends_the_episode_with_a_flag(family):
    """An object pressed through the floor falls slower than MAX_OBJECT_SPEED for seconds (seen
    on grasp-v2: 46 m down, -3,000 return in one episode); it is a physics failure, not an
    episode to go on paying distance for."""
    fam = metarobot.get_family(family)
    env = fam.make_env(fam.heldout_tasks("test", 1)[0])
    try:
        env.reset(seed=0)
        _, _, term, _, info = env.step(np.zeros(5))
        assert not term and not info.get("physics_error")
        pos, orn = p.getBasePositionAndOrientation(env.object, physicsClientId=env.sim.client)
        p.resetBasePositionAndOrientation(env.object, [pos[0], pos[1], -0.1], orn, physicsClientId=env.sim.client)
        obs, reward, term, _, info = env.step(np.zeros(5))
        assert term and info["physics_error"] and reward == -1.0 and np.isfinite(obs).all()
    finally:
        env.close()
