"""The task-family API: sampling, splits, JSON, envs, determinism."""

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest
from gymnasium.utils.env_checker import check_env

import metarobot
from metarobot.errors import MetarobotError
from metarobot.family import in_test_bucket


@pytest.mark.parametrize("split", ["train", "test", "ood"])
def test_every_sampled_task_builds(family, split, rng):
    tasks = family.sample_tasks(12, split, rng)
    assert len(set(tasks)) == 12
    env = family.make_env(tasks[0])
    try:
        for task in tasks:
            env.set_task(task)
            obs, _ = env.reset(seed=0)
            assert env.observation_space.contains(obs)
            if family.name.startswith("reach"):
                n = p.getNumJoints(env.robot, physicsClientId=env.sim.client)
                revolute = [
                    i
                    for i in range(n)
                    if p.getJointInfo(env.robot, i, physicsClientId=env.sim.client)[2] == p.JOINT_REVOLUTE
                ]
                assert len(revolute) == task.n_joints
                assert obs[21:28].sum() == task.n_joints  # the mask
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            assert np.isfinite(r) and "is_success" in info
    finally:
        env.close()


def test_splits_are_disjoint_for_large_n(family):
    train = set(family.sample_tasks(3000, "train", np.random.default_rng(1)))
    test = set(family.sample_tasks(1000, "test", np.random.default_rng(1)))
    ood = set(family.sample_tasks(1000, "ood", np.random.default_rng(1)))
    assert not train & test and not train & ood and not test & ood
    assert all(in_test_bucket(t) for t in test) and not any(in_test_bucket(t) for t in train)


def test_ood_is_outside_training_ranges():
    fam = metarobot.get_family("reach")
    joints, length, mass, gain = (
        fam.param(name).train for name in ("n_joints", "link_lengths", "link_masses", "actuator_gains")
    )
    for t in fam.sample_tasks(200, "ood", np.random.default_rng(3)):
        outside = (
            t.n_joints not in joints
            or not all(length.contains(v) for v in t.link_lengths)
            or not all(mass.contains(v) for v in t.link_masses)
            or not all(gain.contains(v) for v in t.actuator_gains)
        )
        assert outside, t
    for t in fam.sample_tasks(200, "train", np.random.default_rng(3)):
        assert t.n_joints in joints and all(length.contains(v) for v in t.link_lengths)


def test_json_round_trip_is_exact(family, rng):
    for split in ("train", "test", "ood"):
        for task in family.sample_tasks(20, split, rng):
            again = family.task_from_dict(json.loads(task.to_json()))
            assert again == task and hash(again) == hash(task)
            assert again.to_json() == task.to_json()


def test_task_validation_names_the_bad_value(family, rng):
    task = family.sample_tasks(1, "train", rng)[0]
    data = task.to_dict()
    field = {"reach": "link_lengths", "cartpole": "pole_length", "navigate": "wheel_radius", "grasp": "object_mass"}[
        family.name.split("-")[0]
    ]
    data[field] = [-1.0] * len(data[field]) if isinstance(data[field], list) else -1.0
    with pytest.raises(MetarobotError, match="out of range"):
        family.task_from_dict(data)
    with pytest.raises(MetarobotError, match="unknown"):
        family.task_from_dict({**task.to_dict(), "bogus": 1})


def test_bad_sampling_arguments(family, rng):
    with pytest.raises(MetarobotError, match="split"):
        family.sample_tasks(1, "validation", rng)
    with pytest.raises(MetarobotError, match="non-negative"):
        family.sample_tasks(-1, "train", rng)
    with pytest.raises(MetarobotError, match="out of range"):
        family.task("test", 10_000)


@pytest.mark.parametrize(
    "env_id",
    [
        "metarobot/Reach-v0",
        "metarobot/CartPole-v0",
        "metarobot/Navigate-v0",
        "metarobot/Grasp-v0",
        "metarobot/Reach-v1",
        "metarobot/Reach-v2",
        "metarobot/Navigate-v1",
        "metarobot/Grasp-v1",
    ],
)
def test_gym_make_and_check_env(env_id):
    env = gym.make(env_id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
    finally:
        env.close()


def _rollout(env, seed, steps=60):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    act_rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(act_rng.uniform(-1, 1, env.action_space.shape))
        out.append(np.append(obs, r))
        if term or trunc:
            obs, _ = env.reset()
    return out


def test_same_seed_same_tasks_and_trajectory(family):
    a = family.sample_tasks(5, "train", np.random.default_rng(7))
    b = family.sample_tasks(5, "train", np.random.default_rng(7))
    assert a == b
    e1, e2 = family.make_env(a[0]), family.make_env(b[0])
    try:
        for x, y in zip(_rollout(e1, 3), _rollout(e2, 3)):
            np.testing.assert_array_equal(x, y)
        # set_task in place then back gives the same trajectory as a fresh env
        e1.set_task(a[1])
        _rollout(e1, 5)
        e1.set_task(a[0])
        for x, y in zip(_rollout(e1, 3), _rollout(e2, 3)):
            np.testing.assert_array_equal(x, y)
    finally:
        e1.close()
        e2.close()


def test_observation_hides_task_parameters():
    """Two reach arms that differ only in hidden parameters look the same at reset."""
    fam = metarobot.get_family("reach")
    base = fam.sample_tasks(1, "train", np.random.default_rng(0))[0]
    flipped = dataclasses.replace(
        base,
        actuator_signs=tuple(-s for s in base.actuator_signs),
        actuator_gains=tuple(g * 1.3 for g in base.actuator_gains),
    )
    e1, e2 = fam.make_env(base), fam.make_env(flipped)
    try:
        o1, _ = e1.reset(seed=4)
        o2, _ = e2.reset(seed=4)
        np.testing.assert_array_equal(o1, o2)
        a = np.full(7, 0.5)
        o1, *_ = e1.step(a)
        o2, *_ = e2.step(a)
        assert not np.allclose(o1, o2)  # ...but they respond differently to the same command
    finally:
        e1.close()
        e2.close()


def test_reach_velocity_command_moves_joint_in_wired_direction():
    fam = metarobot.get_family("reach")
    task = fam.sample_tasks(1, "train", np.random.default_rng(2))[0]
    for sign in (1, -1):
        t = dataclasses.replace(task, actuator_signs=(sign,) + task.actuator_signs[1:])
        env = fam.make_env(t)
        env.reset(seed=0)
        q0 = env._joint_state()[0][0]
        a = np.zeros(7)
        a[0] = 1.0
        for _ in range(5):
            env.step(a)
        dq = env._joint_state()[0][0] - q0
        expected = sign * t.actuator_gains[0] * 5 / 30  # rad: gain * time
        assert dq == pytest.approx(expected, rel=0.15)
        env.close()


def test_cartpole_balances_with_a_hand_written_controller_and_falls_without():
    fam = metarobot.get_family("cartpole")
    task = fam.sample_tasks(1, "train", np.random.default_rng(5))[0]
    env = fam.make_env(task)
    obs, _ = env.reset(seed=0)
    total, done, info = 0.0, False, {}
    while not done:  # PD on angle and position, through the task's (known here) motor sign
        u = task.actuator_sign * (10 * obs[2] + 2 * obs[3] + 0.3 * obs[0] + 0.6 * obs[1])
        obs, r, term, trunc, info = env.step(np.array([u]))
        total += r
        done = term or trunc
    assert total == 200 and info["is_success"]
    obs, _ = env.reset(seed=0)
    steps, done = 0, False
    while not done:
        obs, r, term, trunc, info = env.step(np.zeros(1))
        steps += 1
        done = term or trunc
    assert steps < 200 and not info["is_success"]
    env.close()


def test_registry_accepts_a_third_party_family():
    from metarobot.envs.cartpole import CartPoleFamily

    class Mini(CartPoleFamily):
        name = "mini-cartpole"

    metarobot.register_family(Mini)
    assert "mini-cartpole" in metarobot.family_names()
    assert isinstance(metarobot.get_family("mini-cartpole"), Mini)
    with pytest.raises(MetarobotError, match="unknown family"):
        metarobot.get_family("no-such-family")
