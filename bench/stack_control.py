"""Is a short history enough? A second control for the ``recurrent`` baseline's memory.

``bench/recipe_control.py`` showed that on grasp (v0) the recurrent baseline's edge is memory:
SB3's feed-forward PPO with the same recipe reaches 82% of ood objects, the LSTM 97%. This
trains the same feed-forward PPO on the last ``--stack`` observations (SB3's ``VecFrameStack``:
oldest first, zeros before an episode's first step), the same env steps, and evaluates it with
the baseline's routine (episodes on each task, no update, ``metarobot evaluate``'s seeds) on
the *train* split, where a design is chosen, then on test and ood. ``--compare`` evaluates other
SB3 zips (the recurrent baseline, the feed-forward control) the same way on the same tasks.

    python bench/stack_control.py --family grasp --stack 4 --steps 1200000 --out runs/grasp-stack4.zip \\
        --compare policies/pretrained/grasp-recurrent.zip runs/grasp-ff.zip

If a short history matches the LSTM, a metarobot method can take memory as a wider observation;
if not, it needs a recurrent policy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarobot.recurrent import RecurrentBaseline, load_recurrent, sb3_recipe
from metarobot.registry import get_family


class StackedBaseline(RecurrentBaseline):
    """``RecurrentBaseline``'s routine for a feed-forward policy on stacked observations."""

    def __init__(self, model: Any, family: str, stack: int) -> None:
        super().__init__(model, family)
        self.stack = stack

    def _episodes(self, task: Any, n: int, seed: int) -> tuple[float, float, int]:
        if self._env is None:
            self._env = self.family.make_env(task)
        env = self._env
        env.set_task(task)
        torch.manual_seed(seed)
        wins, rets, steps = [], [], 0
        for s in np.random.SeedSequence(seed).generate_state(n):
            obs, _ = env.reset(seed=int(s))
            width = obs.shape[0]
            frames = np.zeros(width * self.stack, dtype=np.float32)
            frames[-width:] = obs
            total, info, done = 0.0, {}, False
            while not done:
                action, _ = self.model.predict(frames[None], deterministic=False)
                obs, reward, term, trunc, info = env.step(action[0])
                frames = np.concatenate([frames[width:], np.asarray(obs, dtype=np.float32)])
                total += float(reward)
                steps += 1
                done = term or trunc
            wins.append(bool(info.get("is_success", False)))
            rets.append(total)
        return float(np.mean(wins)), float(np.mean(rets)), steps


def main() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecFrameStack

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", required=True)
    ap.add_argument("--stack", type=int, default=4)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare", nargs="*", default=[], help="other SB3 zips, evaluated the same way")
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--splits", default="train,test,ood")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.out.is_file():
        model = PPO.load(str(args.out), device="cpu")
        print(f"loaded {args.out}")
    else:
        start = time.perf_counter()
        venv, kwargs = sb3_recipe(args.family, seed=args.seed)
        venv = VecFrameStack(venv, args.stack)
        model = PPO("MlpPolicy", venv, policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, **kwargs)
        model.learn(args.steps)
        model.save(str(args.out))
        print(f"trained {model.num_timesteps:,} env steps in {time.perf_counter() - start:.0f} s", flush=True)
    runners: dict[str, Any] = {f"stack {args.stack}": StackedBaseline(model, args.family, args.stack)}
    for path in args.compare:
        try:
            other = load_recurrent(path)
        except Exception:  # noqa: BLE001 - a feed-forward PPO zip
            other = PPO.load(path, device="cpu")
        runners[Path(path).name] = RecurrentBaseline(other, args.family)
    fam = get_family(args.family)
    for split in args.splits.split(","):
        tasks = fam.heldout_tasks(split, args.tasks)
        for name, runner in runners.items():
            success = [
                [r.success[0] for r in runner.adapt_many(tasks, steps=0, episodes=args.episodes, seed=s)]
                for s in range(args.seeds)
            ]
            flat = np.asarray(success).ravel()
            ci = 1.96 * flat.std(ddof=1) / np.sqrt(flat.size)
            print(f"{split} {name}: {100 * flat.mean():.1f} +- {100 * ci:.1f}% ({args.tasks} x {args.seeds}, k=0)")
    for runner in runners.values():
        runner.close()


if __name__ == "__main__":
    main()
