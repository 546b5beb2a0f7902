"""How fast deployed policies reach the goal: success within a step budget (navigate families).

    python bench/steps_to_goal.py runs/x-oracle/meta_policy.pt runs/x-multitask/meta_policy.pt --tasks 20 --seeds 2

For each checkpoint (an ``oracle`` runs on the privileged observation), the deterministic policy
runs one episode per canonical task of ``--split`` (default ``train``: what a design choice may
look at) and reset seed, without any update, and records the step at which it arrived. Prints the
success rate, the median and quartiles of the steps to the goal, and the success rate within 30,
40, 50 and 60 steps (the family's episode length caps what can be seen).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from metarobot.meta import MetaLearner


def steps_to_goal(path: str, split: str, n_tasks: int, seeds: int) -> list[int | None]:
    learner = MetaLearner.load(path, workers=0)
    try:
        fam, policy = learner.family, learner.policy
        privileged = learner.config.algo == "oracle"
        out: list[int | None] = []
        for task in fam.heldout_tasks(split, n_tasks):
            env = fam.make_privileged_env(task) if privileged else fam.make_env(task)
            try:
                for seed in range(seeds):
                    obs, _ = env.reset(seed=seed)
                    arrived = None
                    for t in range(fam.episode_steps):
                        action, _ = policy.predict(obs, deterministic=True)
                        obs, _, terminated, truncated, info = env.step(action)
                        if info.get("is_success"):
                            arrived = t + 1
                            break
                        if terminated or truncated:
                            break
                    out.append(arrived)
            finally:
                env.close()
        return out
    finally:
        learner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--split", choices=("train", "test", "ood"), default="train")
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    for path in args.checkpoints:
        arrived = steps_to_goal(path, args.split, args.tasks, args.seeds)
        steps = np.array([a for a in arrived if a is not None])
        within = {k: round(float(np.mean([a is not None and a <= k for a in arrived])), 3) for k in (30, 40, 50, 60)}
        row = {
            "checkpoint": path,
            "split": args.split,
            "success": round(len(steps) / len(arrived), 3),
            "median_steps": float(np.median(steps)) if len(steps) else None,
            "quartiles": [float(q) for q in np.percentile(steps, [25, 75])] if len(steps) else None,
            "success_within": within,
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
