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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from recipe_control import k0_success, train_or_load

from metarobot.recurrent import RecurrentBaseline, load_recurrent, sb3_recipe
from metarobot.registry import get_family


class StackedBaseline(RecurrentBaseline):
    """``RecurrentBaseline``'s routine for a feed-forward policy on stacked observations."""

    def __init__(self, model: Any, family: str, stack: int) -> None:
        super().__init__(model, family)
        self.stack = stack

    def episode_policy(self) -> Callable[[np.ndarray], np.ndarray]:
        frames: np.ndarray | None = None  # the last ``stack`` observations, oldest first

        def act(obs: np.ndarray) -> np.ndarray:
            nonlocal frames
            seen = np.asarray(obs, dtype=np.float32)
            if frames is None:  # as VecFrameStack starts an episode: zeros before its first step
                frames = np.concatenate([np.zeros(seen.size * (self.stack - 1), dtype=np.float32), seen])
            else:
                frames = np.concatenate([frames[seen.size :], seen])
            action, _ = self.model.predict(frames[None], deterministic=False)
            return action[0]  # type: ignore[no-any-return]

        return act


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

    def build() -> Any:
        venv, kwargs = sb3_recipe(args.family, seed=args.seed)
        venv = VecFrameStack(venv, args.stack)
        return PPO("MlpPolicy", venv, policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, **kwargs)

    model = train_or_load(args.out, args.steps, build)
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
            mean, ci = k0_success(runner, tasks, args.seeds, args.episodes)
            print(f"{split} {name}: {mean:.1f} +- {ci:.1f}% ({args.tasks} x {args.seeds}, k=0)")
    for runner in runners.values():
        runner.close()


if __name__ == "__main__":
    main()
