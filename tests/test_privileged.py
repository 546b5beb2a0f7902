"""Hidden parameters, the privileged (oracle) observation, and the ``-v1`` families' physics."""

import dataclasses
import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from metarobot.envs.grasp_v1 import (
    SQUEEZE_RATE,
    holding_force,
    scripted_grasp_action,
    squeeze_command,
    squeeze_force,
)
from metarobot.envs.reach_v1 import tip_position

import metarobot
from metarobot.errors import MetarobotError


def _hidden_variant(task):
    """``task`` with only hidden parameters changed (none that shows in the observation)."""
    name = task.family
    if name.startswith("reach"):
        changes = {
            "actuator_signs": tuple(-s for s in task.actuator_signs),
            "actuator_gains": tuple(round(g * 0.8, 4) for g in task.actuator_gains),
            "link_masses": tuple(round(m * 1.2, 4) for m in task.link_masses),
            "joint_damping": tuple(round(d * 0.5, 4) for d in task.joint_damping),
        }
        if name in ("reach-v1", "reach-v2"):
            changes["payload_mass"] = round(0.4 - task.payload_mass / 2, 4)
        return dataclasses.replace(task, **changes)
    if name == "cartpole":
        return dataclasses.replace(
            task, actuator_sign=-task.actuator_sign, force_scale=round(task.force_scale * 1.2, 4), pole_mass=0.3
        )
    if name.startswith("navigate"):
        changes = {
            "left_sign": -task.left_sign,
            "left_gain": 0.75,
            "right_gain": 0.95,
            "max_wheel_speed": 16.0,
            "chassis_mass": 2.5,
            "floor_friction": 0.7,
        }
        if name == "navigate-v1":
            changes["right_wheel_scale"] = 0.9
        return dataclasses.replace(task, **changes)
    assert name.startswith("grasp")
    changes = {"object_mass": 0.2, "object_friction": 0.6, "pad_friction": 0.9, "grip_force": 38.0}
    if name == "grasp-v1":
        changes["object_crush_force"] = 30.0
    return dataclasses.replace(task, **changes)


def test_oracle_observation_is_the_normal_one_plus_exactly_the_hidden_parameters(family):
    tasks = family.heldout_tasks("test", 3)
    plain, oracle = family.make_env(tasks[0]), family.make_privileged_env(tasks[0])
    try:
        k, base = family.hidden_dim, plain.observation_space.shape[0]
        assert k > 0 and oracle.observation_space.shape == (base + k,)
        for task in tasks:
            plain.set_task(task)
            oracle.set_task(task)
            assert oracle.task == task and oracle.task_type is plain.task_type
            hidden = family.hidden_params(task)
            assert hidden.dtype == np.float32 and hidden.shape == (k,)
            o1, _ = plain.reset(seed=5)
            o2, _ = oracle.reset(seed=5)
            np.testing.assert_array_equal(o2[:base], o1)
            np.testing.assert_array_equal(o2[base:], hidden)
            action = np.full(plain.action_space.shape, 0.3, dtype=np.float32)
            o1, *_ = plain.step(action)
            o2, *_ = oracle.step(action)
            np.testing.assert_array_equal(o2[:base], o1)
            np.testing.assert_array_equal(o2[base:], hidden)
    finally:
        plain.close()
        oracle.close()


def test_hidden_parameters_of_training_tasks_lie_in_about_minus_one_to_one(family):
    values = np.stack([family.hidden_params(t) for t in family.sample_tasks(200, "train", np.random.default_rng(0))])
    assert np.all(np.abs(values) <= 1.0 + 1e-5)
    assert values.std(axis=0).max() > 0.3  # they vary across tasks, not a constant


def test_hidden_parameters_tell_apart_what_the_observation_cannot(family):
    task = family.heldout_tasks("train", 1)[0]
    other = _hidden_variant(task)
    assert other != task
    assert not np.array_equal(family.hidden_params(task), family.hidden_params(other))
    e1, e2 = family.make_env(task), family.make_env(other)
    try:
        o1, _ = e1.reset(seed=4)
        o2, _ = e2.reset(seed=4)
        np.testing.assert_allclose(o1, o2, atol=1e-6)
    finally:
        e1.close()
        e2.close()


def test_privileged_env_passes_check_env_and_renders(family):
    env = family.make_privileged_env(family.heldout_tasks("test", 1)[0], render_mode="rgb_array")
    try:
        check_env(env, skip_render_check=True)
        env.reset(seed=0)
        frame = env.render()
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0
    finally:
        env.close()


def test_a_family_without_hidden_parameters_has_no_oracle():
    from metarobot.envs.cartpole import CartPoleFamily

    class Bare(CartPoleFamily):
        name = "bare-cartpole"
        hidden_dim = 0

    fam = Bare()
    with pytest.raises(MetarobotError, match="no hidden parameters"):
        fam.make_privileged_env(fam.heldout_tasks("test", 1)[0])


# -- the -v1 families ---------------------------------------------------------------------------


def test_v0_families_are_unchanged_by_v1():
    """v1 tasks are new task types; the v0 families sample exactly the tasks they did."""
    for v0, v1 in (("reach", "reach-v1"), ("navigate", "navigate-v1"), ("grasp", "grasp-v1")):
        f0, f1 = metarobot.get_family(v0), metarobot.get_family(v1)
        assert f0.task_type is not f1.task_type and f1.name == v1
        assert all(type(t) is f0.task_type for t in f0.heldout_tasks("test", 5))
    # reach v0 still reverses at most one joint
    for t in metarobot.get_family("reach").sample_tasks(200, "train", np.random.default_rng(0)):
        assert sum(s < 0 for s in t.actuator_signs) <= 1


def test_v1_directions_are_drawn_per_joint_and_per_motor():
    reach = metarobot.get_family("reach-v1").sample_tasks(300, "train", np.random.default_rng(0))
    reversed_counts = {sum(s < 0 for s in t.actuator_signs) for t in reach}
    assert max(reversed_counts) >= 3  # several joints reversed at once happens
    nav = metarobot.get_family("navigate-v1").sample_tasks(200, "train", np.random.default_rng(0))
    pairs = {(t.left_sign, t.right_sign) for t in nav}
    assert pairs == {(1, 1), (1, -1), (-1, 1), (-1, -1)}


def test_reach_v1_every_joint_moves_in_its_own_wired_direction():
    fam = metarobot.get_family("reach-v1")
    task = next(t for t in fam.sample_tasks(50, "train", np.random.default_rng(2)) if len(set(t.actuator_signs)) == 2)
    env = fam.make_env(task)
    try:
        for j in range(task.n_joints):  # one joint at a time (PyBullet's velocity motors couple a chain)
            env.reset(seed=0)
            q0 = env._joint_state()[0][j]
            a = np.zeros(7)
            a[j] = 0.5
            for _ in range(4):
                env.step(a)
            dq = env._joint_state()[0][j] - q0
            expected = task.actuator_signs[j] * task.actuator_gains[j] * 0.5 * 4 / 30  # rad: speed * time
            # the wired direction, at a speed the chain's coupled velocity motors reach in 4 steps
            assert np.sign(dq) == np.sign(expected) and 0.3 < dq / expected < 1.5, (j, dq, expected)
    finally:
        env.close()


def test_reach_v1_observes_the_encoders_belief_and_succeeds_on_the_true_tip():
    fam = metarobot.get_family("reach-v1")
    task = fam.sample_tasks(1, "train", np.random.default_rng(3))[0]
    offsets = (0.03,) * task.n_joints
    task = dataclasses.replace(task, joint_offsets=offsets)
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=1)
        q = env._joint_state()[0]
        n = task.n_joints
        np.testing.assert_allclose(obs[:n], np.sin(q + offsets), atol=1e-6)
        np.testing.assert_allclose(obs[7 : 7 + n], np.cos(q + offsets), atol=1e-6)
        believed, true_tip = tip_position(task, q + offsets), env._tip()
        np.testing.assert_allclose(tip_position(task, q), true_tip, atol=1e-6)  # our kinematics = PyBullet's
        np.testing.assert_allclose(obs[28:31], believed, atol=1e-6)
        assert np.linalg.norm(believed - true_tip) > 0.005  # the belief is off by centimetres
        _, _, _, _, info = env.step(np.zeros(7))
        assert info["distance"] == pytest.approx(np.linalg.norm(env._goal - env._tip()), abs=1e-3)
    finally:
        env.close()


def test_reach_v1_payload_is_a_mass_on_the_tip_that_does_not_show_at_reset():
    fam = metarobot.get_family("reach-v1")
    base = fam.sample_tasks(1, "train", np.random.default_rng(4))[0]
    tips = []
    for payload in (0.0, 3.0):
        env = fam.make_env(dataclasses.replace(base, payload_mass=payload))
        try:
            env.reset(seed=0)
            import pybullet as p

            info = p.getDynamicsInfo(env.robot, env._ee, physicsClientId=env.sim.client)
            assert info[0] == pytest.approx(max(payload, 1e-6))
            tips.append(env._tip())
        finally:
            env.close()
    np.testing.assert_allclose(tips[0], tips[1], atol=1e-9)  # same pose at reset: nothing shows


def test_navigate_v1_one_reversed_motor_turns_a_forward_command_into_a_spin():
    fam = metarobot.get_family("navigate-v1")
    task = fam.sample_tasks(1, "train", np.random.default_rng(0))[0]
    task = dataclasses.replace(task, obstacle_kinds=(), obstacle_xy=(), obstacle_sizes=(), obstacle_yaws=())
    results = {}
    for signs in ((1, 1), (1, -1)):
        t = dataclasses.replace(task, left_sign=signs[0], right_sign=signs[1], right_wheel_scale=1.0)
        env = fam.make_env(t)
        try:
            obs, _ = env.reset(seed=0)
            for _ in range(10):
                obs, *_ = env.step(np.array([1.0, 1.0]))
            results[signs] = (float(obs[5]), float(obs[7]) * 5)  # forward speed (m/s), yaw rate (rad/s)
        finally:
            env.close()
    assert results[(1, 1)][0] > 0.3 and abs(results[(1, 1)][1]) < 0.5
    assert abs(results[(1, -1)][0]) < 0.1 and results[(1, -1)][1] < -2.0  # spins clockwise on the spot


def test_navigate_v1_unequal_wheels_curve_a_straight_command():
    fam = metarobot.get_family("navigate-v1")
    task = fam.sample_tasks(1, "train", np.random.default_rng(0))[0]
    task = dataclasses.replace(task, left_sign=1, right_sign=1, left_gain=1.0, right_gain=1.0, right_wheel_scale=1.3)
    env = fam.make_env(task)
    try:
        env.reset(seed=0)
        rates = []
        for _ in range(10):
            obs, *_ = env.step(np.array([0.5, 0.5]))
            rates.append(float(obs[7]) * 5)
        assert np.mean(rates[3:]) > 0.3  # the bigger right wheel turns it left
    finally:
        env.close()


def _squeeze_and_lift(env, task, squeeze: float) -> dict:
    """The scripted grasp of ``test_grasp`` with a chosen squeeze command in (0, 1]."""
    obs, _ = env.reset(seed=0)
    info: dict = {}
    for k in range(env.max_episode_steps):
        obs, _, term, trunc, info = env.step(scripted_grasp_action(obs, k, task.finger_length, squeeze))
        if term or trunc:
            break
    return info


def test_grasp_v1_needs_a_squeeze_inside_the_window():
    fam = metarobot.get_family("grasp-v1")
    tasks = [t for t in fam.sample_tasks(40, "train", np.random.default_rng(6)) if t.object_shape == "box"][:2]
    env = fam.make_env(tasks[0])
    try:
        for task in tasks:
            env.set_task(task)
            hold, crush, strength = holding_force(task), task.object_crush_force, task.grip_force
            assert 1.8 * hold <= crush + 1e-3 <= strength + 1e-3
            inside = _squeeze_and_lift(env, task, squeeze_command(math.sqrt(1.3 * hold * crush), strength))
            assert inside["is_success"] and not inside["crushed"]
            assert hold < inside["squeeze"] < crush
            light = _squeeze_and_lift(env, task, squeeze_command(0.5 * hold, strength))
            assert not light["is_success"] and not light["crushed"]  # it slips out
            hard = _squeeze_and_lift(env, task, 1.0)
            assert hard["crushed"] and not hard["is_success"]
    finally:
        env.close()


def test_grasp_v1_squeeze_is_a_log_scale_reached_with_a_lag_and_contact_pays_for_its_firmness():
    assert squeeze_force(1.0, 30.0) == pytest.approx(30.0)
    assert squeeze_force(0.6, 30.0) == pytest.approx(3.0)  # 2.5 decades over a[4] in (0, 1]
    for force in (0.2, 1.0, 7.5, 30.0):
        assert squeeze_force(squeeze_command(force, 30.0), 30.0) == pytest.approx(force)
    fam = metarobot.get_family("grasp-v1")
    task = next(t for t in fam.sample_tasks(40, "train", np.random.default_rng(6)) if t.object_shape == "box")
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(30):  # open, centre the fingers around the object and descend
            rel = obs[6:9] * 0.05
            down = (rel[2] + task.finger_length * 0.6) / 0.02
            obs, *_ = env.step(np.clip([rel[0] / 0.02, rel[1] / 0.02, down, 0, -1], -1, 1))
        target = 0.5 * holding_force(task)
        command = squeeze_command(target, task.grip_force)
        *_, info = env.step(np.array([0, 0, 0, 0, command]))
        assert info["squeeze"] == pytest.approx(SQUEEZE_RATE * target)  # the lag: 30% of the way
        rewards = []
        for _ in range(15):  # both fingers close on it, too lightly to hold
            _, r, *_, info = env.step(np.array([0, 0, 0, 0, command]))
            rewards.append((r, info))
        touching = [(r, i) for r, i in rewards if i["contact_left"] and i["contact_right"]]
        assert touching, "the fingers never closed on the object"
        # grasp's reward adds 0.5 per touching step; grasp-v1 pays it times the squeeze's firmness
        for r, i in touching:
            assert i["squeeze"] < holding_force(task)
            assert r < 0.5 * i["squeeze"] / holding_force(task) + 0.05
        *_, info = env.step(np.array([0, 0, 0, 0, -1.0]))
        assert info["squeeze"] == 0.0  # opening releases it
    finally:
        env.close()


def test_v1_ood_tasks_are_outside_the_training_ranges():
    reach = metarobot.get_family("reach-v1")
    rs = {p.name: p for p in reach.params}
    for t in reach.sample_tasks(100, "ood", np.random.default_rng(3)):
        assert (
            t.n_joints not in rs["n_joints"].train
            or not all(rs["link_lengths"].train.contains(v) for v in t.link_lengths)
            or not all(rs["link_masses"].train.contains(v) for v in t.link_masses)
            or not all(rs["actuator_gains"].train.contains(v) for v in t.actuator_gains)
            or not all(rs["joint_offsets"].train.contains(v) for v in t.joint_offsets)
            or not rs["payload_mass"].train.contains(t.payload_mass)
        ), t
    nav = metarobot.get_family("navigate-v1")
    ns = {p.name: p for p in nav.params}
    for t in nav.sample_tasks(60, "ood", np.random.default_rng(3)):
        assert (
            not ns["chassis_length"].train.contains(t.chassis_length)
            or not ns["left_gain"].train.contains(t.left_gain)
            or not ns["right_gain"].train.contains(t.right_gain)
            or len(t.obstacle_kinds) > max(ns["obstacles"].train)
            or not ns["right_wheel_scale"].train.contains(t.right_wheel_scale)
            or not ns["floor_friction"].train.contains(t.floor_friction)
        ), t
    grasp = metarobot.get_family("grasp-v1")
    gs = {p.name: p for p in grasp.params}
    for t in grasp.sample_tasks(100, "ood", np.random.default_rng(3)):
        margin = t.object_crush_force / holding_force(t)
        assert (
            not gs["object_mass"].train.contains(t.object_mass)
            or margin < gs["crush_margin"].train.low - 0.01
            or not gs["object_size"].train.contains(t.object_size)
            or not gs["object_friction"].train.contains(t.object_friction)
            or not gs["finger_length"].train.contains(t.finger_length)
        ), t
