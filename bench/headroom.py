"""Headroom of a family: a privileged ``oracle`` against the domain-randomised ``multitask`` policy.

    python bench/headroom.py --family reach-v1 --steps 500000

Both are plain SB3 PPO with the same settings and the same env-step budget, trained on a new
``train`` task at every episode (``metarobot.wrappers.ResampleTasks``):

* ``multitask`` sees the family's normal observation;
* ``oracle`` sees it followed by the task's hidden parameters (``family.make_privileged_env``),
  the upper reference no adaptation method can beat.

Each is then evaluated with its deterministic policy on the canonical held-out tasks
(``family.heldout_tasks(split, --tasks)``, splits ``test`` and ``ood``), one episode per task
and reset seed (``--eval-seeds`` seeds), without any update. The gap ``oracle - multitask`` on
``test`` is where adaptation can pay. Prints a JSON line per evaluation and writes
``OUT/FAMILY.json`` (and the trained policies as ``OUT/FAMILY-METHOD.zip`` with ``--save``).

PPO settings are those of ``bench/learnability.py`` (n_steps 256 per env, batch 512, 10 epochs,
lr 1e-3, gamma 0.97, log-std -1, tanh) with 128x128 layers, since one policy must cover many
robots. Envs run in one process (``DummyVecEnv``) with one torch thread: on this 2-core
machine ``SubprocVecEnv`` was measured no faster (DESIGN.md, "Sampling").
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import metarobot
from metarobot.wrappers import ResampleTasks

METHODS = ("multitask", "oracle")


class TrainLog(BaseCallback):
    """Prints the success rate of the training episodes every ``every`` env steps, and at each
    budget of ``eval_at`` calls ``on_budget(model, env_steps)`` (a held-out evaluation), so
    that a run stopped early still leaves equal-budget numbers."""

    def __init__(self, method: str, every: int, start: float, eval_at: list[int], on_budget: Any = None) -> None:
        super().__init__()
        self.method, self.every, self.start = method, every, start
        self.next_log = every
        self.eval_at = sorted(eval_at)
        self.on_budget = on_budget
        self.successes: list[bool] = []
        self.history: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:
                self.successes.append(bool(info.get("is_success", False)))
        if self.eval_at and self.num_timesteps >= self.eval_at[0]:
            self.eval_at.pop(0)
            if self.on_budget is not None:
                self.on_budget(self.model, self.num_timesteps)
        if self.num_timesteps >= self.next_log:
            self.next_log += self.every
            row = {
                "method": self.method,
                "env_steps": self.num_timesteps,
                "train_success": round(float(np.mean(self.successes)), 3) if self.successes else None,
                "episodes": len(self.successes),
                "wall_s": round(time.perf_counter() - self.start, 1),
            }
            self.successes = []
            self.history.append(row)
            print(json.dumps(row), flush=True)
        return True


def make_venv(family: str, privileged: bool, n_envs: int, seed: int, vec: str) -> Any:
    def make(i: int) -> Any:
        return lambda: ResampleTasks(family, "train", seed=seed + 1000 * i, privileged=privileged)

    fns = [make(i) for i in range(n_envs)]
    venv = SubprocVecEnv(fns) if vec == "subproc" else DummyVecEnv(fns)
    venv.seed(seed)
    return venv


def train(args: argparse.Namespace, method: str, on_budget: Any = None) -> tuple[PPO, dict[str, Any]]:
    venv = make_venv(args.family, method == "oracle", args.n_envs, args.seed, args.vec)
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
        policy_kwargs={
            "net_arch": [args.width, args.width],
            "activation_fn": torch.nn.Tanh,
            "log_std_init": args.log_std_init,
        },
    )
    start = time.perf_counter()
    log = TrainLog(method, args.log_every, start, args.eval_at, on_budget)
    model.learn(args.steps, callback=log)
    wall = time.perf_counter() - start
    venv.close()
    return model, {"train_wall_s": round(wall, 1), "train_fps": round(args.steps / wall, 1), "train_log": log.history}


def evaluate(model: PPO, family: metarobot.TaskFamily, privileged: bool, split: str, n_tasks: int, seeds: int) -> dict:
    """Deterministic-policy success on ``n_tasks`` held-out tasks x ``seeds`` reset seeds."""
    tasks = family.heldout_tasks(split, n_tasks)
    make = family.make_privileged_env if privileged else family.make_env
    env: Any = make(tasks[0])
    per_seed = []
    per_task = np.zeros(len(tasks))
    try:
        for seed in range(seeds):
            wins = []
            for i, task in enumerate(tasks):
                env.set_task(task)
                obs, _ = env.reset(seed=10_000 + seed)
                done, info = False, {}
                while not done:
                    action, _ = model.predict(obs, deterministic=True)
                    obs, _, term, trunc, info = env.step(action)
                    done = term or trunc
                wins.append(bool(info.get("is_success", False)))
                per_task[i] += wins[-1]
            per_seed.append(float(np.mean(wins)))
    finally:
        env.close()
    return {
        "success": round(float(np.mean(per_seed)), 4),
        "success_per_seed": [round(v, 4) for v in per_seed],
        "success_per_task": (per_task / seeds).round(3).tolist(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="reach-v1")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of multitask,oracle")
    ap.add_argument("--steps", type=int, default=500_000, help="env steps per method")
    ap.add_argument("--n-envs", type=int, default=8)
    ap.add_argument("--vec", choices=("dummy", "subproc"), default="dummy")
    ap.add_argument("--width", type=int, default=128, help="units per hidden layer (two layers)")
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--log-std-init", type=float, default=-1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", type=int, default=20, help="held-out tasks per split")
    ap.add_argument("--eval-seeds", type=int, default=3, help="reset seeds per held-out task")
    ap.add_argument("--log-every", type=int, default=50_000)
    ap.add_argument(
        "--eval-at",
        type=lambda text: [int(v) for v in text.split(",") if v],
        default=[],
        help="comma-separated env-step budgets at which to also evaluate on held-out tasks",
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results/headroom"))
    ap.add_argument("--tag", default="", help="suffix of the result file name (FAMILY[-TAG].json)")
    ap.add_argument("--save", action="store_true", help="also write the trained policies (SB3 zips)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    family = metarobot.get_family(args.family)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.family + (f"-{args.tag}" if args.tag else "")
    result: dict[str, Any] = {
        "family": args.family,
        "command": "python bench/headroom.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "save")),
        "steps_per_method": args.steps,
        "protocol": f"deterministic policy, {args.tasks} held-out tasks x {args.eval_seeds} reset seeds, no update",
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, torch threads 1, "
        f"{args.vec} x {args.n_envs} envs",
        "methods": {},
    }
    for method in methods:
        intermediate: dict[str, Any] = {}

        def on_budget(model: PPO, steps: int, method: str = method, intermediate: dict = intermediate) -> None:
            row = {}
            for split in ("test", "ood"):
                row[split] = evaluate(model, family, method == "oracle", split, args.tasks, args.eval_seeds)["success"]
            intermediate[str(steps)] = row
            print(json.dumps({"method": method, "env_steps": steps, "heldout_success": row}), flush=True)
            result["methods"][method] = {"at_budget": intermediate}
            (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))

        model, info = train(args, method, on_budget)
        if intermediate:
            info["at_budget"] = intermediate
        if args.save:
            model.save(args.out / f"{name}-{method}.zip")
        splits = {}
        for split in ("test", "ood"):
            splits[split] = evaluate(model, family, method == "oracle", split, args.tasks, args.eval_seeds)
            print(json.dumps({"method": method, "split": split, "success": splits[split]["success"]}), flush=True)
        result["methods"][method] = {**info, "splits": splits}
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
    if set(METHODS) <= set(result["methods"]):
        success = {m: {s: result["methods"][m]["splits"][s]["success"] for s in ("test", "ood")} for m in METHODS}
        gap = {s: round(success["oracle"][s] - success["multitask"][s], 4) for s in ("test", "ood")}
        result["gap_oracle_minus_multitask"] = gap
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
        print(json.dumps({"family": args.family, "gap": gap}), flush=True)


if __name__ == "__main__":
    main()
