"""Per task, what grasp-v1's squeeze identification (``--identify-actions``) found: the task's
true window of grip commands, the command it ends on, how many transitions held, broke and
slipped, and the success at each k.

    python bench/grasp_v1_squeeze_diag.py policies/pretrained/grasp-v1-rma-online.pt --split train --tasks 10
"""

from __future__ import annotations

import argparse

import numpy as np
from metarobot.envs import grasp_v1

from metarobot.meta import ACTION_SUMS, MetaLearner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="train")
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ident = grasp_v1.SqueezeIdentification()
    with MetaLearner.load(args.checkpoint, workers=2, identify_actions=True) as learner:
        tasks = learner.family.heldout_tasks(args.split, args.tasks)
        res = learner.adapt_many(tasks, steps=args.steps, episodes=5, seed=args.seed)
        for task, r in zip(tasks, res):
            low, high = grasp_v1.squeeze_window(task)  # type: ignore[arg-type]
            sums = r.final_state[ACTION_SUMS].numpy()
            print(
                f"window {low:.2f}-{high:.2f}  ends on {ident.command(sums[None], 1)[0]:.2f}  "
                f"held {sums[0]:.0f} broke {sums[3]:.0f} slipped {sums[5]:.0f}  "
                f"success k=0..{args.steps}: {' '.join(f'{s:.1f}' for s in r.success)}  "
                f"({task.object_shape}, {task.object_mass:.2f} kg)"  # type: ignore[attr-defined]
            )
        means = [100 * np.mean([r.success[k] for r in res]) for k in range(args.steps + 1)]
        print("mean success:", " / ".join(f"{m:.1f}%" for m in means))


if __name__ == "__main__":
    main()
