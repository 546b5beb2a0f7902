"""Break a headroom result down by a task property (per-task success from ``bench/headroom.py``).

    python bench/headroom_by_group.py bench/results/headroom/navigate-v1.json

Groups: reach-v1 by the number of reversed joints, navigate-v1 by the motor wiring (left, right),
grasp-v1 by the squeeze window (crush force / grip force), cartpole by motor direction.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

import numpy as np

import metarobot


def group_of(task: Any) -> str:
    if task.family == "reach-v1":
        return f"{sum(s < 0 for s in task.actuator_signs)} reversed"
    if task.family.startswith("navigate"):
        return f"wiring {task.left_sign:+d}/{task.right_sign:+d}"
    if task.family == "grasp-v1":
        ratio = task.object_crush_force / task.grip_force
        return "crush/grip " + ("< 0.15" if ratio < 0.15 else "0.15-0.4" if ratio < 0.4 else ">= 0.4")
    if task.family == "cartpole":
        return f"motor {task.actuator_sign:+d}"
    return "all"


def main() -> None:
    for path in sys.argv[1:]:
        result = json.loads(open(path).read())
        family = metarobot.get_family(result["family"])
        for method, data in sorted(result["methods"].items()):
            for split, row in data.get("splits", {}).items():
                tasks = family.heldout_tasks(split, len(row["success_per_task"]))
                groups: dict[str, list[float]] = defaultdict(list)
                for task, success in zip(tasks, row["success_per_task"]):
                    groups[group_of(task)].append(success)
                cells = ", ".join(f"{g}: {np.mean(v):.0%} (n={len(v)})" for g, v in sorted(groups.items()))
                print(f"{result['family']} {method} {split}: {row['success']:.0%} -- {cells}")


if __name__ == "__main__":
    main()
