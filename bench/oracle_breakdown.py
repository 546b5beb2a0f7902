"""Where a trained policy succeeds: success on a family's canonical train tasks grouped by
motor wiring, obstacle count and floor friction (navigate families).

    python bench/oracle_breakdown.py runs/navigate-v1-oracle/meta_policy.pt 60

Runs the checkpoint's deployed policy (no update) for 4 episodes on each of the first N
canonical ``train`` tasks and prints the mean success per group.
"""

import collections
import sys

import numpy as np

from metarobot.meta import MetaLearner


def main() -> None:
    learner = MetaLearner.load(sys.argv[1], workers=0)
    tasks = learner.family.heldout_tasks("train", int(sys.argv[2]))
    results = learner.adapt_many(tasks, 0, 4, state=None, seed=0, update=False)
    groups: dict[str, list[float]] = collections.defaultdict(list)
    for task, res in zip(tasks, results):
        success = res.success[0]
        groups[f"wiring {task.left_sign},{task.right_sign}"].append(success)
        groups[f"obstacles {len(task.obstacles())}"].append(success)
        groups["floor < 0.5" if task.floor_friction < 0.5 else "floor >= 0.5"].append(success)
        groups["all"].append(success)
    for key in sorted(groups):
        print(f"{key:15s} n={len(groups[key]):3d} success={np.mean(groups[key]):.2f}")


if __name__ == "__main__":
    main()
