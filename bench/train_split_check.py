"""Compare candidate checkpoints on the *train* split, where settings are chosen (test and ood
only measure): success after k = 0..K updates on N train-split tasks for each seed and, for a
checkpoint that estimates hidden parameters (rma, rma-online), the mean absolute error of its
estimate of each one after all of the adaptation episodes.

    python bench/train_split_check.py runs/a/meta_policy.pt runs/b/meta_policy.pt --tasks 20 --seeds 0,1

``--teacher`` runs an rma checkpoint's teacher on the true parameters instead (how good the
policy is that the estimate feeds).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    from metarobot.algorithms.proto import COUNT, SUM
    from metarobot.meta import MetaLearner

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--teacher", action="store_true", help="an rma checkpoint's teacher, shown the truth")
    ap.add_argument(
        "--identify-actions", choices=("on", "off"), help="override the checkpoint's identify_actions setting"
    )
    ap.add_argument("--carry-context", choices=("on", "off"), help="override the checkpoint's carry_context setting")
    ap.add_argument(
        "--safe-adaptation", choices=("on", "off"), help="override the checkpoint's safe_adaptation (rl2: its guard)"
    )
    ap.add_argument("--fallback", help="a fallback checkpoint to set (none: drop the one the checkpoint carries)")
    args = ap.parse_args()
    for path in args.checkpoints:
        # far more iterations than were run: an rma learner is then still in its teacher stage
        extra: dict = {"iterations": 10**6} if args.teacher else {}
        if args.identify_actions:
            extra["identify_actions"] = args.identify_actions == "on"
        if args.carry_context:
            extra["carry_context"] = args.carry_context == "on"
        if args.safe_adaptation:
            extra["safe_adaptation"] = args.safe_adaptation == "on"
        learner = MetaLearner.load(path, workers=args.workers, **extra)
        if args.fallback:
            fb = None if args.fallback == "none" else MetaLearner.load(args.fallback, workers=args.workers)
            learner.set_fallback(fb)
        names = tuple(getattr(learner.family, "hidden", ()))
        print(
            f"{path} ({learner.name}{', teacher on the truth' if args.teacher else ''}"
            f"{', identified actions' if learner.config.identify_actions else ''}"
            f"{'' if learner.config.carry_context else ', context not carried across episodes'}"
            f"{'' if learner.config.safe_adaptation else ', no safe adaptation'}"
            f"{f', fallback {learner.fallback.config.algo}' if learner.fallback is not None else ''})"
        )
        for seed in (int(s) for s in args.seeds.split(",")):
            tasks = learner.family.heldout_tasks("train", args.tasks)
            res = learner.adapt_many(tasks, steps=args.steps, episodes=args.episodes, seed=seed)
            success = [100 * float(np.mean([r.success[k] for r in res])) for k in range(args.steps + 1)]
            print(f"  seed {seed}: success k=0..{args.steps}: " + " / ".join(f"{s:.1f}%" for s in success))
            head = getattr(learner, "aux_head", None)
            errors = [
                np.abs(
                    head(r.final_state[SUM] / r.final_state[COUNT]).detach().numpy()
                    - learner.family.hidden_params(r.task)
                )
                for r in res
                if head is not None and COUNT in r.final_state
            ]
            if errors:
                mean = np.mean(errors, axis=0)
                print("    |estimate - truth|: " + ", ".join(f"{n} {e:.2f}" for n, e in zip(names, mean)))
        learner.close()


if __name__ == "__main__":
    main()
