"""Success per kind of ood task in an ``evaluate`` output: which shift out of the training
ranges a method fails on (navigate: denser map, smaller or bigger robot, one weak motor; grasp:
heavier, wider or more slippery object, shorter fingers).

    python bench/ood_groups.py bench/results/navigate-r2/results.json
    python bench/ood_groups.py bench/results/grasp-all/results.json

Prints, per method, the mean success of each group's tasks at every k (over the seeds).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from metarobot.registry import get_family


def group_of(family: Any, task: Any) -> str:
    """The shift that takes ``task`` out of the training ranges (the first found)."""

    def outside(name: str) -> bool:
        r = family.param(name).train_range
        return not r.low <= getattr(task, name) <= r.high

    if family.name == "navigate":
        length = family.param("chassis_length").train_range
        if task.chassis_length < length.low:
            return "smaller robot"
        if task.chassis_length > length.high:
            return "bigger robot"
        if outside("left_gain") or outside("right_gain"):
            return "one weak motor"
        return "denser map" if len(task.obstacle_kinds) > 3 else "in range"
    for name in getattr(family, "ood_shifts", ()):
        if outside(name):
            return name
    return "in range"


def main() -> None:
    data = json.loads(open(sys.argv[1]).read())
    family = get_family(data["family"])
    tasks = family.heldout_tasks("ood", data["tasks"])
    groups = [group_of(family, t) for t in tasks]
    names = sorted(set(groups))
    print(", ".join(f"{g}: {groups.count(g)} tasks" for g in names))
    for method, res in data["splits"]["ood"].items():
        success = np.asarray(res["success_per_seed_task"])  # (seeds, tasks, k)
        cells = []
        for g in names:
            idx = [i for i, x in enumerate(groups) if x == g]
            cells.append(f"{g} " + "/".join(f"{100 * success[:, idx, k].mean():.0f}" for k in range(success.shape[2])))
        print(f"  {method:28s} " + "  ".join(cells))


if __name__ == "__main__":
    main()
