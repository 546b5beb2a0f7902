"""Env throughput vs the raw physics it runs, on one core.

    python bench/throughput.py [--steps 5000]

For each family: env steps/s with uniformly random actions (a 7-joint arm for reach), and
the rate of the same robot's bare physics loop (the same motor command and the same number of
``stepSimulation`` calls per control step, no observation, reward or Python env logic), so
``env time / physics time`` shows the overhead the env adds on top of physics.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import pybullet as p
from metarobot.envs import cartpole as cp
from metarobot.envs import grasp as gr
from metarobot.envs import navigate as nv
from metarobot.envs import reach as rc

import metarobot


def seven_joint_task() -> rc.ReachTask:
    fam = metarobot.get_family("reach")
    for task in fam.sample_tasks(200, "ood", np.random.default_rng(0)):
        if task.n_joints == 7:
            return task  # type: ignore[return-value]
    raise RuntimeError("no 7-joint arm sampled")


def time_env(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, env.action_space.shape[0]))
    env.reset(seed=seed)
    start = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start)


def time_raw_reach(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, env._n))
    env.reset(seed=seed)
    c, body, joints = env.sim.client, env.robot, env._joints
    forces = [rc.MAX_EFFORT] * env._n
    start = time.perf_counter()
    for i, a in enumerate(actions):
        p.setJointMotorControlArray(
            body,
            joints,
            p.VELOCITY_CONTROL,
            targetVelocities=(env._gain * a).tolist(),
            forces=forces,
            physicsClientId=c,
        )
        for _ in range(rc.CONTROL_SUBSTEPS):
            p.stepSimulation(physicsClientId=c)
        if (i + 1) % rc.EPISODE_STEPS == 0:
            env._set_joints(np.zeros(env._n))
    return steps / (time.perf_counter() - start)


def busiest_navigate_task() -> nv.NavigateTask:
    """A training-range robot in a map with the most obstacles training has (3)."""
    fam = metarobot.get_family("navigate")
    for task in fam.sample_tasks(200, "train", np.random.default_rng(0)):
        if len(task.obstacle_kinds) == max(fam.param("obstacles").train):  # type: ignore[attr-defined]
            return task  # type: ignore[return-value]
    raise RuntimeError("no map with the most obstacles sampled")


def time_raw_navigate(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, 2))
    env.reset(seed=seed)
    c, body, joints, forces = env.sim.client, env.robot, env._joints, env._forces
    start = time.perf_counter()
    for i, a in enumerate(actions):
        p.setJointMotorControlArray(
            body, joints, p.VELOCITY_CONTROL, targetVelocities=(a * env._wheel_gain).tolist(), forces=forces,
            physicsClientId=c,
        )  # fmt: skip
        for _ in range(nv.CONTROL_SUBSTEPS):
            p.stepSimulation(physicsClientId=c)
        if (i + 1) % nv.EPISODE_STEPS == 0:
            p.resetBasePositionAndOrientation(body, [0, 0, env._base_z], [0, 0, 0, 1], physicsClientId=c)
    return steps / (time.perf_counter() - start)


def time_raw_grasp(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, 5))
    env.reset(seed=seed)
    c, body, joints = env.sim.client, env.gripper, env._move + env._fingers
    forces = [gr.MOVE_FORCE] * 4 + env._grip_force
    scale = np.array([gr.SPEED, gr.SPEED, gr.SPEED, gr.YAW_RATE, gr.FINGER_SPEED])
    start = time.perf_counter()
    for i, a in enumerate(actions):
        v = a * scale
        p.setJointMotorControlArray(
            body, joints, p.VELOCITY_CONTROL, targetVelocities=[*v, v[4]], forces=forces, physicsClientId=c
        )
        for _ in range(gr.CONTROL_SUBSTEPS):
            p.stepSimulation(physicsClientId=c)
        if (i + 1) % gr.EPISODE_STEPS == 0:
            env.reset()
    return steps / (time.perf_counter() - start)


def time_raw_cartpole(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    forces = rng.uniform(-1, 1, steps) * env._force
    env.reset(seed=seed)
    c, body = env.sim.client, env.robot
    start = time.perf_counter()
    for f in forces:
        for _ in range(cp.CONTROL_SUBSTEPS):
            p.setJointMotorControl2(body, 0, p.TORQUE_CONTROL, force=float(f), physicsClientId=c)
            p.stepSimulation(physicsClientId=c)
    return steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--family", action="append", help="Only these families (repeatable) [default: all].")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    results = {}
    cases = {
        "reach": ("reach (7 joints, 30 Hz control, 8 substeps)", seven_joint_task, time_raw_reach),
        "cartpole": (
            "cartpole (48 Hz control, 5 substeps)",
            lambda: metarobot.get_family("cartpole").task("train", 0),
            time_raw_cartpole,
        ),
        "navigate": (
            "navigate (3 obstacles, 16-ray range sensor, 20 Hz control, 6 substeps of 1/120 s)",
            busiest_navigate_task,
            time_raw_navigate,
        ),
        "grasp": (
            "grasp (gripper on a 4-joint gantry + object, 20 Hz control, 12 substeps of 1/240 s)",
            lambda: metarobot.get_family("grasp").task("train", 0),
            time_raw_grasp,
        ),
    }
    for family, (name, make_task, raw_fn) in cases.items():
        if args.family and family not in args.family:
            continue
        env = metarobot.make_env(make_task())
        env_rates = [time_env(env, args.steps, seed=r) for r in range(args.repeats)]
        raw_rates = [raw_fn(env, args.steps, seed=r) for r in range(args.repeats)]
        env_rate, raw_rate = float(np.median(env_rates)), float(np.median(raw_rates))
        results[name] = {
            "env_steps_per_s": round(env_rate),
            "raw_physics_control_steps_per_s": round(raw_rate),
            "env_time_over_physics_time": round(raw_rate / env_rate, 2),
        }
        env.close()
    results["machine"] = f"{platform.machine()} {platform.processor() or ''}".strip() + ", 1 core pinned"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
