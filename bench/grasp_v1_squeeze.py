"""Where the squeeze that holds a grasp-v1 object lies: a scripted grasp (open, centre, descend,
close, lift; it reads the finger length from the task) with squeeze commands of k times
``holding_force(task)`` for several k, crush force switched off, on training tasks.

    python bench/grasp_v1_squeeze.py --tasks 16

Prints one row per task: shape, mass (kg), pad x object friction, holding force (N), grip force
(N), the task's crush margin, and success (0/1) per k.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from metarobot.envs.grasp_v1 import holding_force, scripted_grasp_action, squeeze_command

import metarobot

FACTORS = (0.5, 0.8, 1.0, 1.3, 1.6, 2.0, 2.5, 4.0)


def scripted(env, task, squeeze: float) -> dict:
    obs, _ = env.reset(seed=0)
    info: dict = {}
    for k in range(env.max_episode_steps):
        obs, _, term, trunc, info = env.step(scripted_grasp_action(obs, k, task.finger_length, squeeze))
        if term or trunc:
            break
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    fam = metarobot.get_family("grasp-v1")
    tasks = fam.sample_tasks(args.tasks, "train", np.random.default_rng(args.seed))
    env = fam.make_env(tasks[0])
    print("k:", FACTORS)
    for task in tasks:
        unbreakable = dataclasses.replace(task, object_crush_force=1000.0)
        env.set_task(unbreakable)
        hold = holding_force(task)
        commands = [min(squeeze_command(k * hold, task.grip_force), 1.0) for k in FACTORS]
        row = [int(scripted(env, unbreakable, c)["is_success"]) for c in commands]
        print(
            f"{task.object_shape:8s} m={task.object_mass:.2f} mu={task.pad_friction * task.object_friction:.2f} "
            f"hold={hold:5.1f} N grip={task.grip_force:4.1f} N crush={task.object_crush_force / hold:.2f}x",
            row,
            flush=True,
        )
    env.close()


if __name__ == "__main__":
    main()
