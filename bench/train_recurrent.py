"""Train the ``recurrent`` baseline (sb3-contrib ``RecurrentPPO``, domain-randomised) for a family
and save it where ``metarobot evaluate --recurrent-checkpoint`` reads it.

    python bench/train_recurrent.py --family navigate-v1 --steps 600000 --out runs/navigate-v1-recurrent.zip

Give it the env-step budget of the methods it is compared with. Writes the zip and, beside it,
``NAME.json`` with the command's settings, env steps and wall time (the provenance RESULTS cites).

Long runs are resumable: the model is saved to ``NAME.partial.zip`` (and its record to
``NAME.partial.json``) every ``--chunk`` env steps; the same command run again continues from there.
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
    ap.add_argument("--chunk", type=int, default=250_000, help="env steps between saves of NAME.partial.zip")
    args = ap.parse_args()
    torch.set_num_threads(1)
    # the commit the code ran at (read now: the checkout may move on during a long run)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial.zip")
    record = args.out.with_suffix(".partial.json")
    info = {
        "family": args.family,
        "env_steps": 0,
        "seed": args.seed,
        "n_envs": args.n_envs,
        "wall_s": 0.0,
        "commits": [],
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
    }
    if partial.is_file() and record.is_file():
        info = json.loads(record.read_text())
        print(f"resuming {partial} at {info['env_steps']:,} env steps")
    else:
        partial.unlink(missing_ok=True)  # a model without its record: its wall time is unknown, start over
    if commit not in info["commits"]:
        info["commits"].append(commit)
    wall_before = float(info["wall_s"])
    start = time.perf_counter()

    def saved(model: object) -> None:
        info["env_steps"] = int(model.num_timesteps)  # type: ignore[attr-defined]
        info["wall_s"] = round(wall_before + time.perf_counter() - start, 1)
        record.write_text(json.dumps(info, indent=2) + "\n")
        print(f"{info['env_steps']:,} env steps, {info['wall_s']} s", flush=True)

    model = train_recurrent(
        args.family, args.steps, seed=args.seed, n_envs=args.n_envs, partial=partial, chunk=args.chunk, on_chunk=saved
    )
    saved(model)
    model.save(str(args.out))
    partial.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
