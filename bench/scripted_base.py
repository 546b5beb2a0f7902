"""What a wheeled base can physically do on a family's tasks: a scripted controller that knows
the robot's wiring (a URDF base is wired as its file says) steers on the observed goal bearing
with full wheel speed, on the same floors and goals as ``bench/real_robot_eval.py``. Its success
is a reference for the learned policies, which must also work the wiring out: where it fails,
the robot cannot make the goal in the episode's time with this simple a controller.

    python bench/scripted_base.py --family navigate-v1 --urdf husky/husky.urdf --tasks 10 --seeds 3

``--reverse`` drives to a goal behind backward (navigate-v1's ``identify`` controller).
``--episode-steps 60,90,120`` runs each window length in turn (the family's is 60 steps, 3 s): a
diagnosis of whether the robot runs out of time. Each line also counts the failures by kind
(timeout, collision, flipped).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np


def controller(obs: np.ndarray, turn_gain: float, reverse: bool = False) -> np.ndarray:
    """Wheel commands (left, right) in [-1, 1] from the goal bearing in the observation (obs[3],
    obs[4]: cos and sin of the goal's bearing in the robot frame): turn toward it, drive forward
    as much as it lies ahead. With ``reverse``, a goal behind is driven to backward, the rear
    turned toward it (the controller of navigate-v1's ``identify``, told the wiring)."""
    bearing = math.atan2(float(obs[4]), float(obs[3]))
    if reverse and math.cos(bearing) < 0:
        import torch
        from metarobot.envs.navigate import goal_wheel_speeds

        want = goal_wheel_speeds(torch.tensor(bearing, dtype=torch.float64), turn_gain).numpy()
        return (want / np.abs(want).max()).astype(np.float32)
    turn = float(np.clip(turn_gain * bearing, -1.0, 1.0))
    forward = max(0.0, math.cos(bearing))
    left, right = forward - turn, forward + turn
    scale = max(1.0, abs(left), abs(right))
    return np.array([left / scale, right / scale], dtype=np.float32)


def main() -> None:
    import pybullet_data

    from metarobot.registry import get_family

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="navigate-v1")
    ap.add_argument("--urdf", required=True)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--turn-gains", default="1,2,4")
    ap.add_argument("--episode-steps", default="", help="window lengths to run (default: the family's)")
    ap.add_argument("--reverse", action="store_true", help="drive to a goal behind in reverse")
    args = ap.parse_args()
    urdf = Path(args.urdf)
    if not urdf.is_absolute() and not urdf.exists():
        urdf = Path(pybullet_data.getDataPath()) / urdf
    family = get_family(args.family)
    tasks = [family.task_from_urdf(urdf, map_from=t) for t in family.heldout_tasks("test", args.tasks)]
    windows = [int(w) for w in args.episode_steps.split(",") if w] or [family.episode_steps]
    for window in windows:
        for gain in (float(g) for g in args.turn_gains.split(",")):
            outcomes, steps_to_goal, failures = [], [], {}
            for task in tasks:
                env = family.make_env(task)
                env.max_episode_steps = window
                try:
                    for seed in range(args.seeds):
                        obs, _ = env.reset(seed=seed)
                        done, info, t = False, {}, 0
                        while not done:
                            obs, _, term, trunc, info = env.step(controller(obs, gain, args.reverse))
                            t += 1
                            done = term or trunc
                        outcomes.append(bool(info.get("is_success", False)))
                        if outcomes[-1]:
                            steps_to_goal.append(t)
                        else:
                            kind = "timeout"
                            if info.get("flipped") or info.get("collision"):
                                kind = "flipped" if info.get("flipped") else "collision"
                            failures[kind] = failures.get(kind, 0) + 1
                finally:
                    env.close()
            median = f"{np.median(steps_to_goal):.0f}" if steps_to_goal else "-"
            print(
                f"{urdf.name} on {args.family} ({args.tasks} test floors x {args.seeds} seeds), turn gain {gain:g}, "
                f"{window}-step window: success {100 * np.mean(outcomes):.1f}%, median steps to the goal {median}, "
                f"failures {failures or 'none'}"
            )


if __name__ == "__main__":
    main()
