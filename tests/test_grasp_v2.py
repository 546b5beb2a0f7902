"""``grasp-v2``: objects of real sizes and lumpy shapes, their extents observed."""

import dataclasses
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data
import pytest
from metarobot.envs.grasp import LIFT_HEIGHT
from metarobot.envs.grasp_v2 import (
    EXTENT_UNIT,
    FIT_MARGIN,
    OBS_DIM_V2,
    GraspV2Task,
    blob_mesh,
    compound_parts,
)

import metarobot


@pytest.fixture
def fam():
    return metarobot.get_family("grasp-v2")


def _task(fam, **changes) -> GraspV2Task:
    base = fam.sample_tasks(1, "train", np.random.default_rng(0))[0]
    easy = dict(
        object_size=0.03, object_depth=1.3, object_height=0.08, object_mass=0.15, object_friction=0.9,
        grip_force=30.0, pad_friction=1.0, max_opening=0.12, finger_length=0.07, object_x=0.0, object_y=0.0,
        object_yaw=0.0,
    )  # fmt: skip
    easy.update(changes)
    return dataclasses.replace(base, **easy)


def scripted_grasp(env, task: GraspV2Task) -> dict:
    """Open, centre over the object's centre of mass, descend until the fingertips are a
    fingertip's reach above the table, close, lift (reads the finger length from the task)."""
    obs, _ = env.reset(seed=0)
    info: dict = {}
    for k in range(env.max_episode_steps):
        rel = obs[6:9] * 0.05
        palm_z = obs[2] / 5
        if k < 35:
            target_z = max(task.finger_length + 0.01, palm_z + rel[2] + task.finger_length * 0.6)
            a = [rel[0] / 0.02, rel[1] / 0.02, (target_z - palm_z) / 0.02, 0.0, -1.0]
        elif k < 45:
            a = [0.0, 0.0, 0.0, 0.0, 1.0]
        else:
            a = [0.0, 0.0, 1.0 if palm_z < 0.35 else 0.0, 0.0, 1.0]
        obs, _, term, trunc, info = env.step(np.clip(a, -1, 1))
        if term or trunc:
            break
    return info


@pytest.mark.parametrize("variation", [0.1, 0.5, 0.9])
def test_a_blob_fills_its_declared_box_and_is_drawn_from_its_variation(fam, variation):
    task = _task(fam, object_shape="blob", shape_variation=variation)
    vertices, faces = blob_mesh(task)
    expected = [2 * task.object_size * task.object_depth, 2 * task.object_size, task.object_height]
    assert np.allclose(np.ptp(vertices, axis=0), expected)
    assert np.allclose(vertices.min(axis=0) + vertices.max(axis=0), 0.0)
    assert faces.min() == 0 and faces.max() == len(vertices) - 1
    again, _ = blob_mesh(task)
    other, _ = blob_mesh(dataclasses.replace(task, shape_variation=(variation + 0.3) % 1))
    assert np.array_equal(vertices, again) and not np.allclose(vertices, other)


@pytest.mark.parametrize("variation", np.linspace(0.0, 1.0, 12))
def test_compound_parts_stay_inside_the_declared_box_around_their_centre_of_mass(fam, variation):
    task = _task(fam, object_shape="compound", shape_variation=float(variation))
    parts = compound_parts(task)
    assert 2 <= len(parts) <= 4
    volume = sum(q.volume for q in parts)
    centre = sum(np.asarray(q.pos) * q.volume for q in parts) / volume
    assert np.allclose(centre, 0.0, atol=1e-9)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for q in parts:
        half = np.asarray(
            q.dims if q.kind == "box" else (q.dims[0], q.dims[0], q.dims[-1] if q.kind != "sphere" else q.dims[0])
        )
        lo, hi = np.minimum(lo, np.asarray(q.pos) - half), np.maximum(hi, np.asarray(q.pos) + half)
    declared = [2 * task.object_size * task.object_depth, 2 * task.object_size, task.object_height]
    assert np.all(hi - lo <= np.asarray(declared) + 1e-9)


@pytest.mark.parametrize("split", ["train", "test", "ood"])
def test_objects_fit_their_gripper_rest_on_the_table_and_start_clear_of_it(fam, split):
    tasks = fam.sample_tasks(12, split, np.random.default_rng(5))
    env = fam.make_env(tasks[0])
    try:
        for task in tasks:
            assert 2 * task.object_size <= task.max_opening - FIT_MARGIN + 1e-4
            env.set_task(task)
            env.reset(seed=1)
            c = env.sim.client
            assert not p.getContactPoints(env.gripper, env.object, physicsClientId=c)
            for _ in range(10):
                env.step(np.array([0.0, 0.0, 0.0, 0.0, -1.0]))
            lo, _ = p.getAABB(env.object, -1, physicsClientId=c)
            assert -0.004 < lo[2] < 0.004, (task, lo)
            vel, _ = p.getBaseVelocity(env.object, physicsClientId=c)
            assert np.linalg.norm(vel) < 0.05, task
    finally:
        env.close()


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("box", lambda t: (t.object_size * t.object_depth, t.object_size, t.object_height / 2)),
        ("cylinder", lambda t: (t.object_size, t.object_size, t.object_height / 2)),
        ("capsule", lambda t: (t.object_height / 2 + t.object_size, t.object_size, t.object_size)),
        ("blob", lambda t: (t.object_size * t.object_depth, t.object_size, t.object_height / 2)),
    ],
)
def test_the_observation_ends_with_the_objects_extents(fam, shape, expected):
    task = _task(fam, object_shape=shape, object_yaw=0.7)
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (OBS_DIM_V2,) and env.observation_space.shape == (OBS_DIM_V2,)
        seen = obs[-3:] * EXTENT_UNIT
        # PyBullet's bounding boxes carry a few mm of collision margin
        assert np.allclose(seen, expected(task), atol=0.005), (seen, expected(task))
        for _ in range(5):  # they hold still while the object moves
            obs, *_ = env.step(np.array([0.3, 0.0, -1.0, 0.5, -1.0]))
        assert np.allclose(obs[-3:] * EXTENT_UNIT, seen)
    finally:
        env.close()


@pytest.mark.parametrize(
    ("shape", "variation"), [("box", 0.0), ("blob", 0.3), ("blob", 0.8), ("compound", 0.2), ("compound", 0.6)]
)
def test_scripted_grasp_lifts_real_sized_and_lumpy_objects(fam, shape, variation):
    task = _task(fam, object_shape=shape, shape_variation=variation)
    env = fam.make_env(task)
    try:
        info = scripted_grasp(env, task)
        assert info["is_success"] and info["lift"] >= LIFT_HEIGHT, info
    finally:
        env.close()


def test_a_users_object_file_loads_measured_on_a_grasp_v2_gripper(fam):
    duck = Path(pybullet_data.getDataPath()) / "duck_vhacd.urdf"
    task = fam.task_from_object_urdf(duck)
    assert isinstance(task, GraspV2Task) and task.object_shape == "urdf"
    assert task.max_opening == fam.heldout_tasks("test", 1)[0].max_opening
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=0)
        extents = obs[-3:] * EXTENT_UNIT
        assert obs.shape == (OBS_DIM_V2,)
        assert 0.03 < extents[0] < 0.08 and 0.03 < extents[1] < 0.08 and 0.01 < extents[2] < 0.07
    finally:
        env.close()
    described = fam.describe(task)["observed_extents_m"]
    assert np.allclose(list(described.values()), extents, atol=1e-3)
