"""Adapting with a context-free fallback (``MetaLearner.set_fallback``), on a split of choice
(settings are chosen on ``train``; test and ood only measure).

A context method (rma, rma-online) run on a robot unlike its training robots can do worse
than the domain-randomized multitask policy (navigate's ood: 40% against 67%). With a
fallback, adapting runs the fallback first (k = 0), the method next (k = 1, from its own start),
then whichever did better (success, then return). This prints, on the same episode
seeds, success at k = 0..K of the method alone, the fallback alone (never updated) and the
two together, and how often the fallback was kept.

    python bench/fallback_check.py policies/pretrained/navigate-rma-online.pt \\
        policies/pretrained/navigate-multitask.pt --split train --tasks 20 --seeds 0,1

(The order was chosen on navigate's train split with a prototype of this rule, kept in git
history at the commit that added this file: fallback first 73.6 / 72.9% at k = 2, 3; method
first 72.1 / 71.1%.)
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    from metarobot.meta import FALLBACK_KEY, MetaLearner

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("method")
    ap.add_argument("fallback")
    ap.add_argument("--split", default="train")
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    method = MetaLearner.load(args.method, workers=args.workers)
    method.set_fallback(None)  # alone, whatever the checkpoint carries
    fallback = MetaLearner.load(args.fallback, workers=args.workers)
    both = MetaLearner.load(args.method, workers=args.workers)
    both.set_fallback(fallback)
    tasks = method.family.heldout_tasks(args.split, args.tasks)
    steps, episodes = args.steps, args.episodes
    table: dict[str, list[list[float]]] = {}
    kept_fallback = []
    for seed in (int(s) for s in args.seeds.split(",")):
        runs = {
            "method": method.adapt_many(tasks, steps, episodes, seed=seed),
            "fallback": fallback.adapt_many(tasks, steps, episodes, seed=seed, update=False),
            "with fallback": both.adapt_many(tasks, steps, episodes, seed=seed),
        }
        for name, res in runs.items():
            table.setdefault(name, []).append([float(np.mean([r.success[k] for r in res])) for k in range(steps + 1)])
        kept_fallback += [FALLBACK_KEY in r.final_state for r in runs["with fallback"]]
    print(f"{args.method} with fallback {args.fallback}: {args.split} split, {len(tasks)} tasks, seeds {args.seeds}")
    for name, rows in table.items():
        mean = 100 * np.mean(rows, axis=0)
        print(f"  {name:14s} k=0..{steps}: " + " / ".join(f"{m:.1f}%" for m in mean))
    print(f"  the fallback was kept for {np.mean(kept_fallback):.0%} of task-seeds")
    for learner in (method, both):
        learner.close()


if __name__ == "__main__":
    main()
