"""Reference controllers for ``reach-v2`` arms: follow the observed nominal-model step
(``d``, the damped least-squares step of the believed arm) with

* ``known``: each joint's true direction and gain (what an oracle could do with no learning);
* ``nominal``: the file's word -- every joint forward, gain 1.5 rad/s (what a user gets who
  trusts the URDF when the robot is miswired or its gains differ);
* ``identified``: classic online identification, no learning -- each joint's signed gain is the
  least-squares ratio of its observed speed to the command sent the step before, over the
  episode so far (the file's word until a joint has moved), and the wanted command uses it.

The wanted command is ``10 * s * d / g``, scaled down as a whole so that no command exceeds 1,
sent as the residual on the nominal controller that gives it. The same tasks as
``bench/real_robot_eval.py`` (the file's arm varied with seeds 10000 + i), or a split's held-out
tasks with ``--split``; success at the end of each of ``--seeds`` episodes per task.

    python bench/scripted_arm.py --urdf franka_panda/panda.urdf kuka_iiwa/model.urdf xarm/xarm6_robot.urdf \\
        --split test --tasks 10 --seeds 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from real_robot_eval import VARIATION_SEED  # the same robots of each file's model


def run(family, tasks, seeds: int, mode: str) -> float:
    from metarobot.envs.reach import MAX_JOINTS, OBS_DIM, VEL_SCALE
    from metarobot.envs.reach_v2 import RESIDUAL_SCALE, nominal_command

    wins = []
    for task in tasks:
        env = family.make_env(task)
        n = task.n_joints
        try:
            for seed in range(seeds):
                obs, info = env.reset(seed=seed)
                signed = np.asarray(task.actuator_signs) * np.asarray(task.actuator_gains)
                gain = signed if mode == "known" else np.full(n, 1.5)
                moved, pushed = np.zeros(n), np.zeros(n)  # sums of speed x command and command^2
                sent = np.zeros(n)
                for _ in range(family.episode_steps):
                    if mode == "identified":
                        speed = obs[2 * MAX_JOINTS : 2 * MAX_JOINTS + n] * VEL_SCALE
                        moved += speed * sent
                        pushed += sent * sent
                        seen = pushed > 1e-3
                        estimate = np.where(seen, moved / np.maximum(pushed, 1e-9), 1.5)
                        gain = np.where(np.abs(estimate) > 0.05, estimate, 1.5)
                    step = obs[OBS_DIM : OBS_DIM + n]
                    want = 10.0 * step / gain
                    want = want / max(1.0, float(np.abs(want).max()))
                    sent = want
                    a = np.pad((want - nominal_command(step)) / RESIDUAL_SCALE, (0, MAX_JOINTS - n))
                    obs, _, terminated, truncated, info = env.step(a)
                    if terminated or truncated:
                        break
                wins.append(bool(info["is_success"]))
        finally:
            env.close()
    return 100.0 * float(np.mean(wins))


def main() -> None:
    import pybullet_data

    from metarobot.registry import get_family

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="reach-v2")
    ap.add_argument("--urdf", nargs="*", default=[])
    ap.add_argument("--split", nargs="*", default=[], help="also held-out procedural arms of these splits")
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    family = get_family(args.family)
    rows = {}
    for name in args.urdf:
        path = Path(name)
        if not path.is_absolute() and not path.exists():
            path = Path(pybullet_data.getDataPath()) / path
        rows[name] = [family.task_from_urdf(path, variation_seed=VARIATION_SEED + i) for i in range(args.tasks)]
    for split in args.split:
        rows[f"{split} split"] = family.heldout_tasks(split, args.tasks)
    modes = ("known", "nominal", "identified")
    header = "| known wiring and gains | the file's word | identified online |"
    print(f"| arms ({args.tasks} tasks x {args.seeds} seeds) {header}")
    print("|---|---|---|---|")
    out = {}
    for name, tasks in rows.items():
        out[name] = {mode: run(family, tasks, args.seeds, mode) for mode in modes}
        print(f"| {name} | " + " | ".join(f"{out[name][m]:.1f}%" for m in modes) + " |", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
