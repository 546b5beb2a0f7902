"""``reach-v2``: arms of any kinematics given their nominal model's step, with reach-v1's hidden
differences (directions, gains, zero offsets, payload); arm files welcome."""

import dataclasses

import numpy as np
import pybullet as p
import pybullet_data
import pytest
from metarobot.envs.reach_v2 import RESIDUAL_SCALE, ArmKinematics, bounded_step, damped_step, nominal_command
from test_real_robots import _arm_with_gripper, _joint, _link, _robot

import metarobot

PANDA = f"{pybullet_data.getDataPath()}/franka_panda/panda.urdf"


def _tilted_arm() -> str:
    """Four joints whose frames are rotated (rpy) and offset sideways, with fixed joints between
    them and a tool frame after the last: what real arm files look like."""
    rod = '<cylinder radius="0.02" length="0.15"/>'
    return _robot(
        _link("base", 2.0, '<box size="0.1 0.1 0.05"/>'),
        _link("a", 0.6, rod),
        _link("a_mount", None),
        _link("b", 0.5, rod),
        _link("c", 0.4, rod),
        _link("d", 0.3, rod),
        _link("flange", 0.2, '<box size="0.04 0.04 0.02"/>'),
        _link("tcp", None),
        _joint("j1", "revolute", "base", "a", "0 0 0.1", "0 0 1"),
        _joint("mount", "fixed", "a", "a_mount", "0.05 0 0.1", rpy="0.3 0 0"),
        _joint("j2", "revolute", "a_mount", "b", "0 0.02 0.05", "0 1 0", rpy="0 0.2 -0.4"),
        _joint("j3", "revolute", "b", "c", "0.2 0 0", "1 0 1", rpy="1.5708 0 0"),
        _joint("j4", "continuous", "c", "d", "0 0 0.2", "0 -1 0"),
        _joint("flange_joint", "fixed", "d", "flange", "0 0 0.12", rpy="0 0.5 0"),
        _joint("tcp_joint", "fixed", "flange", "tcp", "0.01 0 0.08"),
    )


def _file_arms(tmp_path):
    fam = metarobot.get_family("reach-v2")
    (tmp_path / "tilted.urdf").write_text(_tilted_arm())
    (tmp_path / "gripper.urdf").write_text(_arm_with_gripper())
    return [fam.task_from_urdf(tmp_path / name) for name in ("tilted.urdf", "gripper.urdf")] + [
        fam.task_from_urdf(PANDA)
    ]


def test_nominal_model_is_pybullets_kinematics_for_procedural_and_file_arms(tmp_path):
    fam = metarobot.get_family("reach-v2")
    rng = np.random.default_rng(0)
    tasks = fam.sample_tasks(4, "train", rng) + fam.sample_tasks(2, "ood", rng)
    rng = np.random.default_rng(1)
    for task in tasks + _file_arms(tmp_path):
        env = fam.make_env(task)
        try:
            c = env.sim.client
            movable = [
                i
                for i in range(p.getNumJoints(env.robot, physicsClientId=c))
                if p.getJointInfo(env.robot, i, physicsClientId=c)[2] != p.JOINT_FIXED
            ]
            kinematics = ArmKinematics.of(task)
            for _ in range(3):
                q = rng.uniform(-1.5, 1.5, task.n_joints)
                env._set_joints(q)
                tip, jac = kinematics.tip_and_jacobian(q)
                np.testing.assert_allclose(tip, env._tip(), atol=1e-6)
                every = [s[0] for s in p.getJointStates(env.robot, movable, physicsClientId=c)]
                zeros = [0.0] * len(every)
                linear, _ = p.calculateJacobian(env.robot, env._ee, [0, 0, 0], every, zeros, zeros, physicsClientId=c)
                columns = [movable.index(j) for j in env._joints]
                np.testing.assert_allclose(jac, np.asarray(linear)[:, columns], atol=1e-6)
        finally:
            env.close()


def test_observation_carries_the_believed_arms_damped_step():
    fam = metarobot.get_family("reach-v2")
    task = fam.sample_tasks(1, "train", np.random.default_rng(3))[0]
    task = dataclasses.replace(task, joint_offsets=(0.01,) * task.n_joints)
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape == (44,)
        n = task.n_joints
        q_read = env._joint_state()[0] + 0.01
        believed, jac = ArmKinematics.of(task).tip_and_jacobian(q_read)
        np.testing.assert_allclose(obs[28:31], believed, atol=1e-5)
        step = damped_step(jac, env._goal - believed)
        np.testing.assert_allclose(obs[37 : 37 + n], bounded_step(step), atol=1e-4)
        assert np.abs(obs[37 : 37 + n]).max() <= 1.0 + 1e-6
        assert not obs[37 + n :].any()  # padding
        error = env._goal - believed
        np.testing.assert_allclose(obs[34:37], error / max(0.1, np.linalg.norm(error)), atol=1e-5)
        assert np.abs(obs).max() <= 2.5  # nothing saturates a tanh layer
        assert np.linalg.norm(believed - env._tip()) > 1e-3  # the belief is not the truth
    finally:
        env.close()


def _follow(env, task, signs, steps=60):
    """Follow the observed step with the given belief about the joints' directions: the
    residual that turns the nominal command into ``signs * command / gain``."""
    n = task.n_joints
    obs, info = env.reset(seed=0)
    start = info["distance"]
    for _ in range(steps):
        want = 10.0 * np.asarray(signs) * obs[37 : 37 + n] / np.asarray(task.actuator_gains)
        want = want / max(1.0, np.abs(want).max())
        residual = (want - nominal_command(obs[37 : 37 + n])) / RESIDUAL_SCALE
        obs, _, _, _, info = env.step(np.pad(residual, (0, 7 - n)))
    return start, info


def test_the_zero_action_is_the_nominal_controller():
    fam = metarobot.get_family("reach-v2")
    task = fam.task_from_urdf(PANDA)  # wired as its file says
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=3)
        q0 = env._joint_state()[0]
        command = nominal_command(obs[37:44])
        assert np.abs(command).max() <= 1.0 + 1e-9 and np.abs(command).max() > 0.1
        obs, _, _, _, info = env.step(np.zeros(7))
        moved = env._joint_state()[0] - q0
        # each joint turned the way the nominal command says (gain 1.5 rad/s, 1/30 s)
        big = np.abs(command) > 0.2
        assert np.all(np.sign(moved[big]) == np.sign(command[big]))
        for _ in range(59):
            obs, _, _, _, info = env.step(np.zeros(7))
        assert info["is_success"], info
    finally:
        env.close()


def test_the_step_reaches_a_file_arms_goal_only_when_the_wiring_is_known():
    fam = metarobot.get_family("reach-v2")
    nominal = fam.task_from_urdf(PANDA)
    assert set(nominal.actuator_signs) == {1} and not any(nominal.joint_offsets) and nominal.payload_mass == 0
    env = fam.make_env(nominal)
    try:
        _, info = _follow(env, nominal, nominal.actuator_signs)
        assert info["is_success"], info
        # the same arm with two joints wired reversed: following the model's step misses
        flipped = dataclasses.replace(nominal, actuator_signs=(1, -1, 1, -1, 1, 1, 1))
        env.set_task(flipped)
        start, info = _follow(env, flipped, nominal.actuator_signs)
        assert not info["is_success"]
        _, info = _follow(env, flipped, flipped.actuator_signs)  # known wiring: reached again
        assert info["is_success"], info
    finally:
        env.close()


def test_a_file_arm_varied_by_seed_is_one_robot_of_its_model():
    fam = metarobot.get_family("reach-v2")
    a, b, again = (fam.task_from_urdf(PANDA, variation_seed=s) for s in (0, 1, 0))
    assert a == again and a != b
    assert a.body_key() == b.body_key() == fam.task_from_urdf(PANDA).body_key()  # same arm
    for task in (a, b):
        assert all(0.99 <= g <= 2.01 for g in task.actuator_gains)
        assert all(abs(o) <= 0.01 for o in task.joint_offsets) and 0 <= task.payload_mass <= 1.0
    hidden = fam.hidden_params(a)
    assert fam.hidden_dim == 22 and hidden.shape == (22,)
    np.testing.assert_array_equal(hidden[7:14], a.actuator_signs)  # the Panda has 7 joints: no padding


def test_payload_rides_on_a_file_arms_flange_without_replacing_it(tmp_path):
    fam = metarobot.get_family("reach-v2")
    (tmp_path / "tilted.urdf").write_text(_tilted_arm())
    base = fam.task_from_urdf(tmp_path / "tilted.urdf", ee_link="flange")
    masses = []
    for payload in (0.0, 0.8):
        env = fam.make_env(dataclasses.replace(base, payload_mass=payload))
        try:
            masses.append(p.getDynamicsInfo(env.robot, env._ee, physicsClientId=env.sim.client)[0])
        finally:
            env.close()
    assert masses == [pytest.approx(0.2), pytest.approx(1.0)]


def test_reach_v1_still_refuses_files_and_v2_takes_them(tmp_path):
    (tmp_path / "gripper.urdf").write_text(_arm_with_gripper())
    with pytest.raises(metarobot.MetarobotError, match="procedural arms only"):
        metarobot.get_family("reach-v1").task_from_urdf(tmp_path / "gripper.urdf")
    task = metarobot.get_family("reach-v2").task_from_urdf(tmp_path / "gripper.urdf")
    assert task.n_joints == 3 and task.ee_link == "tcp"
