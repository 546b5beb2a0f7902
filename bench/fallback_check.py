"""Adapting with a context-free fallback, on the *train* split (where settings are chosen).

A context method (rma, rma-online) run on a robot unlike its training robots can do worse
than the domain-randomized multitask policy (navigate's ood: 40% against 67%). This runs
the selection rule ``--fallback`` uses, on N train-split tasks per seed, k = 0..K:

- ``first``: the fallback runs the first episodes (k = 0); the method runs k = 1 on the
  evidence of those episodes; from k = 2 on, whichever of the two returned more runs (the
  method's best return so far against the fallback's), and the method keeps adapting while it
  is the one that runs;
- ``second``: the method runs k = 0, the fallback k = 1, then the same rule.

Both plain policies run too (the method adapting as usual, the fallback as it is), on the
same episode seeds.

    python bench/fallback_check.py policies/pretrained/navigate-rma-online.pt \\
        policies/pretrained/navigate-multitask.pt --tasks 20 --seeds 0,1
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    from metarobot.meta import MetaLearner, job_seed

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
    fallback = MetaLearner.load(args.fallback, workers=args.workers)
    tasks = method.family.heldout_tasks(args.split, args.tasks)
    n, steps, episodes = len(tasks), args.steps, args.episodes
    table: dict[str, list[list[float]]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):

        def run(learner: MetaLearner, states: list, k: int, which: list[int]) -> dict[int, object]:
            jobs = [learner.make_job(tasks[i], states[i], episodes, job_seed(seed, 7_777, k, i)) for i in which]
            return dict(zip(which, learner.sampler().run(jobs)))

        def update(states: list, i: int, rollout: object, k: int) -> None:
            if method.updates_parameters or method.config.carry_context:
                states[i] = method.inner_update(states[i], rollout, seed=job_seed(seed, 8_888, k, i))

        everyone = list(range(n))
        plain_m = method.adapt_many(tasks, steps, episodes, seed=seed)
        table.setdefault("method", []).append([np.mean([r.success[k] for r in plain_m]) for k in range(steps + 1)])
        fb_state = fallback.meta_state()
        fb_rows = [run(fallback, [fb_state] * n, k, everyone) for k in range(steps + 1)]
        table.setdefault("fallback", []).append([np.mean([r.success_rate for r in row.values()]) for row in fb_rows])
        for order in ("first", "second"):
            states = [method.meta_state()] * n
            fb_return = [0.0] * n
            best_m = [-np.inf] * n
            success = []
            for k in range(steps + 1):
                fb_turn = (k == 0) if order == "first" else (k == 1)
                if k >= 2:
                    use_fb = [i for i in everyone if fb_return[i] > best_m[i]]
                    use_m = [i for i in everyone if fb_return[i] <= best_m[i]]
                elif fb_turn:
                    use_fb, use_m = everyone, []
                else:
                    use_fb, use_m = [], everyone
                got = {**run(fallback, [fb_state] * n, k, use_fb), **run(method, states, k, use_m)}
                for i in use_fb:
                    if k < 2:
                        fb_return[i] = got[i].mean_return  # type: ignore[attr-defined]
                    update(states, i, got[i], k)  # the method learns from every episode on the robot
                for i in use_m:
                    best_m[i] = max(best_m[i], got[i].mean_return)  # type: ignore[attr-defined]
                    update(states, i, got[i], k)
                success.append(np.mean([got[i].success_rate for i in everyone]))  # type: ignore[attr-defined]
            table.setdefault(f"fallback {order}", []).append(success)
    print(f"{args.method} with fallback {args.fallback}: {args.split} split, {n} tasks, seeds {args.seeds}")
    for name, rows in table.items():
        mean = 100 * np.mean(rows, axis=0)
        print(f"  {name:16s} k=0..{steps}: " + " / ".join(f"{m:.1f}%" for m in mean))
    method.close()
    fallback.close()


if __name__ == "__main__":
    main()
