"""Train the ``recurrent`` baseline (sb3-contrib ``RecurrentPPO``, domain-randomised) for a family
and save it where ``metarobot evaluate --recurrent-checkpoint`` reads it.

    python bench/train_recurrent.py --family navigate-v1 --steps 600000 --out runs/navigate-v1-recurrent.zip

Give it the env-step budget of the methods it is compared with. Writes the zip and, beside it,
``NAME.json`` with the command's settings, env steps and wall time (the provenance RESULTS cites).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch

from metarobot.recurrent import train_recurrent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", required=True)
    ap.add_argument("--steps", type=int, required=True, help="env steps (the compared methods' budget)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-envs", type=int, default=16)
    ap.add_argument("--out", type=Path, required=True, help="zip to write")
    args = ap.parse_args()
    torch.set_num_threads(1)
    # the commit the code ran at (read now: the checkout may move on during a long run)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    start = time.perf_counter()
    model = train_recurrent(args.family, args.steps, seed=args.seed, n_envs=args.n_envs)
    wall = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(args.out))
    info = {
        "family": args.family,
        "env_steps": int(model.num_timesteps),
        "seed": args.seed,
        "n_envs": args.n_envs,
        "wall_s": round(wall, 1),
        "commit": commit,
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
    }
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
