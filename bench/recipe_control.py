"""Is it memory, or the recipe? A control for the ``recurrent`` baseline.

The recurrent baseline (sb3-contrib ``RecurrentPPO``) beats every metarobot policy on the v0
families and grasp-v2, the oracle included. It differs from metarobot's multitask policy in two
ways at once: an LSTM, and SB3's own PPO recipe (16 envs of tasks resampled every episode, one
rollout of ``max(episode_steps, 128)`` steps per env, two minibatches, SB3's loss with advantage
normalisation and gradient clipping). This trains SB3's *feed-forward* ``PPO`` with the same
recipe (same envs, rollout, minibatches, learning rate, discount, epochs; the LSTM's 64 units
replaced by a 64-unit layer) for the same env steps, and evaluates it with the baseline's own
routine (``RecurrentBaseline``: episodes on each held-out task, no update) on the tasks and seeds
``metarobot evaluate`` uses:

    python bench/recipe_control.py --family grasp --steps 1200000 --out runs/grasp-ff.zip

If it matches the recurrent baseline, the recipe is what wins; if it matches multitask, memory is.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarobot.recurrent import RecurrentBaseline, sb3_recipe
from metarobot.registry import get_family


def make_ff(family: str, seed: int = 0):  # noqa: ANN201
    """SB3's feed-forward ``PPO`` on the recurrent baseline's recipe (``sb3_recipe``), the
    LSTM's 64 units replaced by a 64-unit layer."""
    from stable_baselines3 import PPO

    venv, kwargs = sb3_recipe(family, seed=seed)
    return PPO("MlpPolicy", venv, policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, **kwargs)


def train_or_load(out: Path, steps: int, build: Callable[[], Any]) -> Any:
    """The SB3 model saved at ``out``, or ``build()`` trained for ``steps`` env steps and saved
    there (the wall time printed)."""
    from stable_baselines3 import PPO

    if out.is_file():
        print(f"loaded {out}")
        return PPO.load(str(out), device="cpu")
    start = time.perf_counter()
    model = build()
    model.learn(steps)
    model.save(str(out))
    print(f"trained {model.num_timesteps:,} env steps in {time.perf_counter() - start:.0f} s", flush=True)
    return model


def k0_success(runner: RecurrentBaseline, tasks: list, seeds: int, episodes: int) -> tuple[float, float]:
    """Mean success (%) and its 95% CI half-width of ``runner``'s policy on ``tasks`` at k = 0,
    ``seeds`` seeds of ``episodes`` episodes each (the baseline's routine, evaluate's seeds)."""
    success = [
        [r.success[0] for r in runner.adapt_many(tasks, steps=0, episodes=episodes, seed=s)] for s in range(seeds)
    ]
    flat = np.asarray(success).ravel()
    return 100 * float(flat.mean()), 100 * float(1.96 * flat.std(ddof=1) / np.sqrt(flat.size))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = train_or_load(args.out, args.steps, lambda: make_ff(args.family, seed=args.seed))
    fam = get_family(args.family)
    runner = RecurrentBaseline(model, args.family)  # predict(obs, state, episode_start) works for PPO too
    report = {}
    for split in ("test", "ood"):
        mean, ci = k0_success(runner, fam.heldout_tasks(split, args.tasks), args.seeds, args.episodes)
        report[split] = {"success": round(mean, 1), "ci": round(ci, 1)}
        print(f"{split}: {mean:.1f} +- {ci:.1f}% ({args.tasks} tasks x {args.seeds} seeds, k=0)")
    runner.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
