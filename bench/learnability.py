"""Learnability: plain SB3 PPO on one fixed task of a family, evaluated as it trains.

    python bench/learnability.py --family reach --steps 300000

Prints, every ``--eval-every`` env steps, the success rate and mean return of the
deterministic policy over ``--eval-episodes`` episodes, and at the end the first env-step
count (and wall time) at which success reached ``--target``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

import metarobot


def evaluate(model: PPO, env, episodes: int, seed: int) -> tuple[float, float]:
    successes, returns = [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total, info = False, 0.0, {}
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, info = env.step(action)
            total += r
            done = term or trunc
        successes.append(bool(info.get("is_success", False)))
        returns.append(total)
    return float(np.mean(successes)), float(np.mean(returns))


class EvalCallback(BaseCallback):
    def __init__(self, env, every: int, episodes: int, target: float, start: float) -> None:
        super().__init__()
        self.env, self.every, self.episodes, self.target, self.start = env, every, episodes, target, start
        self.next_eval = every
        self.history: list[dict] = []
        self.reached: dict | None = None

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.every
            succ, ret = evaluate(self.model, self.env, self.episodes, seed=10_000)
            row = {
                "env_steps": self.num_timesteps,
                "success": succ,
                "return": round(ret, 3),
                "wall_s": round(time.perf_counter() - self.start, 1),
            }
            self.history.append(row)
            print(json.dumps(row), flush=True)
            if succ >= self.target and self.reached is None:
                self.reached = row
                return False
        return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--family", default="reach")
    ap.add_argument("--split", default="train")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--n-envs", type=int, default=8)
    ap.add_argument("--eval-every", type=int, default=20_000)
    ap.add_argument("--eval-episodes", type=int, default=50)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-std-init", type=float, default=-1.0)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    family = metarobot.get_family(args.family)
    task = family.task(args.split, args.index)
    print(f"task: {task.to_json()}")
    venv = DummyVecEnv([lambda: family.make_env(task) for _ in range(args.n_envs)])
    venv.seed(args.seed)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=256,
        batch_size=512,
        n_epochs=10,
        learning_rate=args.learning_rate,
        gamma=0.97,
        gae_lambda=0.95,
        ent_coef=0.0,
        seed=args.seed,
        device="cpu",
        policy_kwargs={"net_arch": [64, 64], "activation_fn": torch.nn.Tanh, "log_std_init": args.log_std_init},
    )
    start = time.perf_counter()
    cb = EvalCallback(family.make_env(task), args.eval_every, args.eval_episodes, args.target, start)
    model.learn(args.steps, callback=cb)
    wall = time.perf_counter() - start
    result = {
        "family": args.family,
        "task": f"{args.split}[{args.index}]",
        "reached": cb.reached,
        "final": cb.history[-1] if cb.history else None,
        "total_wall_s": round(wall, 1),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, torch threads 1",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
