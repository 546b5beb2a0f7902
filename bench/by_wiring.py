"""Split an evaluation's success rates by whether the held-out robot has a reversed motor.

    python bench/by_wiring.py bench/results/reach/results.json

Tells whether a method's successes come from robots a single policy can already drive (all
motors wired +1) or from adapting to a reversed one.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import metarobot


def reversed_motor(task) -> bool:
    signs = getattr(task, "actuator_signs", None)
    if signs is None:
        signs = (task.left_sign, task.right_sign) if hasattr(task, "left_sign") else (task.actuator_sign,)
    return any(s < 0 for s in signs)


def main(path: str) -> None:
    res = json.loads(open(path).read())
    family = metarobot.get_family(res["family"])
    for split, methods in res["splits"].items():
        tasks = family.heldout_tasks(split, res["tasks"])
        flags = np.array([reversed_motor(t) for t in tasks])
        print(f"{split}: {flags.sum()} of {len(flags)} tasks have a reversed motor")
        print(f"  {'method':<24}{'k=0 normal':>12}{'k=0 reversed':>14}{'k=1 normal':>12}{'k=1 reversed':>14}")
        for name, m in methods.items():
            s = np.asarray(m["success_per_seed_task"])  # seeds x tasks x k
            row = []
            for k in (0, 1):
                for flag in (False, True):
                    sel = s[:, flags == flag, k]
                    row.append(f"{100 * sel.mean():.0f}%" if sel.size else "-")
            print(f"  {name:<24}{row[0]:>12}{row[1]:>14}{row[2]:>12}{row[3]:>14}")


if __name__ == "__main__":
    main(sys.argv[1])
