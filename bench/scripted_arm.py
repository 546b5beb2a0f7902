"""Reference controllers for ``reach-v2`` arms: follow the observed nominal-model step
(``d``, the damped least-squares step of the believed arm) with

* ``known``: each joint's true direction and gain (what an oracle could do with no learning);
* ``nominal``: the file's word -- every joint forward, gain 1.5 rad/s (what a user gets who
  trusts the URDF when the robot is miswired or its gains differ);
* ``identified``: classic online identification, no learning -- each joint's signed gain is the
  least-squares ratio of its observed speed to the command sent the step before, over the
  episode so far (the file's word until a joint has moved), and the wanted command uses it.

The wanted command is ``10 * d / g`` (``g``: the signed gain), scaled down as a whole so that
no command exceeds 1, sent as the residual on the nominal controller that gives it: the
controller and the estimate are those of ``--algo identify`` (``ArmIdentification``), run
here without its residual network and its sampled exploration. The same tasks as
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
    """Success (%) of ``mode``'s controller: the ``identify`` method's (``ArmIdentification``),
    fed the true signed gains, the file's word, or its own online estimate."""
    import torch
    from metarobot.envs.reach import MAX_JOINTS
    from metarobot.envs.reach_v2 import FILE_GAIN, ArmIdentification

    ident = ArmIdentification()
    wins = []
    for task in tasks:
        env = family.make_env(task)
        n = task.n_joints
        try:
            for seed in range(seeds):
                obs, info = env.reset(seed=seed)
                estimate = np.full(MAX_JOINTS, FILE_GAIN)
                if mode == "known":
                    estimate[:n] = np.asarray(task.actuator_signs) * np.asarray(task.actuator_gains)
                sums = np.zeros(ident.stats_dim)  # over the episode so far
                for _ in range(family.episode_steps):
                    if mode == "identified":
                        estimate = ident.estimate(sums[None])[0].astype(np.float64)
                    seen = torch.as_tensor(obs, dtype=torch.float64)
                    a = ident.action(seen, torch.as_tensor(estimate)).numpy()
                    next_obs, r, terminated, truncated, info = env.step(a)
                    if terminated or truncated:
                        break
                    row = np.concatenate([obs, a, [r], next_obs.astype(np.float64) - obs])  # as transition_rows
                    sums += ident.statistics(row[None])[0]
                    obs = next_obs
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
