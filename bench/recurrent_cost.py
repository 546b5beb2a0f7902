"""CPU cost of the ``recurrent`` baseline's training per env step, for a few layouts of the
rollout (envs x minibatches): what sets the price of a same-budget comparison.

    python bench/recurrent_cost.py --family navigate-v1 --steps 8192 --layouts 4x4,16x2

CPU seconds of this process (``time.process_time``, one torch thread), not wall time, so the
figure holds on a shared machine; start-up (imports, task pools) is left out.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="navigate-v1")
    ap.add_argument("--steps", type=int, default=8192, help="env steps per layout")
    ap.add_argument("--layouts", default="4x4,16x2", help="ENVSxMINIBATCHES, comma-separated")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from metarobot.recurrent import make_recurrent

    for layout in args.layouts.split(","):
        n_envs, minibatches = (int(v) for v in layout.split("x"))
        model = make_recurrent(args.family, seed=0, n_envs=n_envs, minibatches=minibatches)
        start = time.process_time()
        model.learn(args.steps)
        cpu = time.process_time() - start
        steps = int(model.num_timesteps)
        print(
            json.dumps(
                {
                    "layout": layout,
                    "env_steps": steps,
                    "cpu_s": round(cpu, 1),
                    "cpu_ms_per_step": round(1000 * cpu / steps, 2),
                }
            )
        )
        model.get_env().close()


if __name__ == "__main__":
    main()
