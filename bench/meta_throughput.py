"""Meta-training throughput: env steps per second over whole iterations (sampling + inner
updates + outer update), against plain SB3 PPO on the same family and worker count.

    python bench/meta_throughput.py --family reach --iterations 4

Runs, in one process, one after the other:
  1. ``maml`` with ``--workers 2`` (the first iteration, which starts the workers, is not timed),
  2. ``maml`` with 1 worker (the scaling ratio),
  3. plain SB3 ``PPO.learn`` on tasks resampled from the train split (``ResampleTasks``), in a
     ``SubprocVecEnv`` of as many processes as workers, one torch thread per process, for the
     same number of env steps as the timed maml iterations;
  4. with ``--ray``: ``maml`` with the Ray sampler on a local Ray instance of ``--workers`` CPUs
     (the ratio to the local sampler is issue 10's target: >= 0.9);
  5. with ``--algos metasgd,cavia``: each of those algorithms with ``--workers`` workers and the
     same settings as step 1 (the family's defaults), its rate and its ratio to maml's;
     ``rma-online:student`` (or ``:teacher``) times one stage of a two-stage algorithm.

    python bench/meta_throughput.py --family cartpole --algos metasgd,cavia --skip-scaling --skip-ppo
    python bench/meta_throughput.py --family navigate-v1 --algos rma:student,rma-online:student --skip-ppo
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import SubprocVecEnv

from metarobot.meta import MetaLearner
from metarobot.wrappers import ResampleTasks


def maml_rate(family: str, workers: int, iterations: int, settings: dict, algo: str = "maml") -> tuple[float, dict]:
    """Env steps per second of ``iterations`` whole meta-iterations of ``algo`` (after one untimed)."""
    with MetaLearner(family=family, workers=workers, algo=algo, **settings) as learner:
        learner.step()  # warm-up: starts the workers
        steps0, t0 = learner.env_steps, time.perf_counter()
        for _ in range(iterations):
            learner.step()
        wall = time.perf_counter() - t0
        return (learner.env_steps - steps0) / wall, {"steps": learner.env_steps - steps0, "wall_s": round(wall, 1)}


def _make(family: str, seed: int):
    def thunk():
        torch.set_num_threads(1)
        return ResampleTasks(family, "train", seed=seed)

    return thunk


def ppo_rate(family: str, workers: int, steps: int, n_steps: int) -> tuple[float, dict]:
    venv = SubprocVecEnv([_make(family, i) for i in range(workers)], start_method="forkserver")
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=n_steps * workers // 4,
        n_epochs=5,
        device="cpu",
        policy_kwargs={"net_arch": [64, 64], "activation_fn": torch.nn.Tanh},
        verbose=0,
    )
    model.learn(n_steps * workers)  # warm-up
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    wall = time.perf_counter() - t0
    venv.close()
    return steps / wall, {"steps": steps, "wall_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--family", default="reach")
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ray", action="store_true", help="also time the Ray sampler")
    ap.add_argument("--skip-ppo", action="store_true", help="leave out the SB3 PPO comparison")
    ap.add_argument("--skip-scaling", action="store_true", help="leave out maml with 1 worker")
    ap.add_argument("--algos", default="", help="comma-separated algorithms to time after maml (e.g. metasgd,cavia)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    settings = {"eval_tasks": 0}
    m2, info2 = maml_rate(args.family, args.workers, args.iterations, settings)
    from metarobot.registry import get_family

    ep = get_family(args.family).episode_steps
    out = {
        "family": args.family,
        f"maml_{args.workers}_workers_steps_per_s": round(m2),
        "runs": {"maml_2": info2},
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s) in the main process",
    }
    if not args.skip_scaling:
        m1, info1 = maml_rate(args.family, 1, args.iterations, settings)
        out["maml_1_worker_steps_per_s"] = round(m1)
        out[f"scaling_{args.workers}_over_1"] = round(m2 / m1, 2)
        out["runs"]["maml_1"] = info1
    for name in [a for a in args.algos.split(",") if a]:
        # NAME:teacher / NAME:student time one stage of a two-stage algorithm (rma, rma-online)
        algo, _, stage = name.partition(":")
        extra = {"teacher_fraction": {"teacher": 0.99, "student": 0.0}[stage]} if stage else {}
        rate, info = maml_rate(args.family, args.workers, args.iterations, {**settings, **extra}, algo=algo)
        algo = name
        out[f"{algo}_{args.workers}_workers_steps_per_s"] = round(rate)
        out[f"{algo}_over_maml"] = round(rate / m2, 2)
        out["runs"][algo] = info
    if not args.skip_ppo:
        p2, infop = ppo_rate(args.family, args.workers, info2["steps"], n_steps=ep * 32)
        out[f"sb3_ppo_{args.workers}_procs_steps_per_s"] = round(p2)
        out["maml_over_ppo"] = round(m2 / p2, 2)
        out["runs"]["ppo"] = infop
    if args.ray:
        mr, infor = maml_rate(args.family, args.workers, args.iterations, {**settings, "sampler": "ray"})
        out[f"maml_ray_{args.workers}_actors_steps_per_s"] = round(mr)
        out["ray_over_local"] = round(mr / m2, 2)
        out["runs"]["maml_ray"] = infor
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
