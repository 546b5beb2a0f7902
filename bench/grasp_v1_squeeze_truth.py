"""How much of grasp-v1 is the squeeze? A checkpoint's policy before any adaptation (k = 0) on
held-out tasks, with the grip command it sends while closing (``a[4] > 0``) replaced by the
middle of the task's true squeeze window (``truth``), or left as it is (``none``).

    python bench/grasp_v1_squeeze_truth.py policies/pretrained/grasp-v1-rma-online.pt --split test

The replacement reads the task's hidden parameters: it is a measurement of what an exact
identification of the squeeze would give, not a method (it runs in-process, workers=0).
"""

from __future__ import annotations

import argparse

import numpy as np
from metarobot.envs import grasp_v1

from metarobot.meta import MetaLearner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="test")
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--modes", default="none,truth")
    args = ap.parse_args()
    own_step = grasp_v1.GraspV1Env.step
    mode = {"truth": False}

    def step(env: grasp_v1.GraspV1Env, action: np.ndarray):  # type: ignore[no-untyped-def]
        a = np.array(action, dtype=np.float64).reshape(-1).copy()
        if mode["truth"] and a[4] > 0:
            a[4] = float(np.mean(grasp_v1.squeeze_window(env.task)))  # type: ignore[arg-type]
        return own_step(env, a)

    grasp_v1.GraspV1Env.step = step  # type: ignore[method-assign]
    with MetaLearner.load(args.checkpoint, workers=0, identify_actions=False) as learner:
        tasks = learner.family.heldout_tasks(args.split, args.tasks)
        edges = [grasp_v1.squeeze_window(t) for t in tasks]  # type: ignore[arg-type]
        print("window lower edges:", " ".join(f"{lo:.2f}" for lo, _ in edges))
        print("window widths:     ", " ".join(f"{hi - lo:.2f}" for lo, hi in edges))
        for name in args.modes.split(","):
            mode["truth"] = name == "truth"
            res = learner.adapt_many(tasks, steps=0, episodes=5, seed=0)
            per_task = "".join(str(round(5 * r.success[0])) for r in res)
            print(f"{name}: success {100 * np.mean([r.success[0] for r in res]):.1f}% (per task, of 5: {per_task})")


if __name__ == "__main__":
    main()
