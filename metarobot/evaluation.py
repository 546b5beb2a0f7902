"""The adaptation protocol (the number this project exists for).

For each held-out task of a split and each seed: success rate and mean return of the policy
before adaptation (k = 0) and after each of k = 1..K inner updates, every update from N
episodes of that task. Reported as mean and 95% confidence interval over tasks x seeds, for
each meta-policy and for the same adaptation applied to baselines:

* ``multitask`` -- domain-randomised PPO with the same env-step budget, used as it is (no update);
* ``finetune``  -- that policy fine-tuned by SB3 PPO updates at the learning rate that did best
  on the *train* split (``choose_finetune_lr``), with the safe-adaptation check;
* ``oracle``    -- PPO that also sees the hidden task parameters: the upper reference;
* ``scratch``   -- a freshly initialised policy (a new random init per seed), adapted with the
  method's own inner loop.

Each baseline is adapted with its own routine, never with another method's step size.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.meta import MetaLearner
from metarobot.runio import atomic_save, atomic_write_text


@dataclasses.dataclass
class Method:
    """A policy to evaluate: a name, its parameters, and the inner loop that adapts it."""

    name: str
    state: dict[str, torch.Tensor] | None  # None: a fresh random init per seed (scratch)
    learner: MetaLearner  # whose inner loop (and settings) adapt this policy
    algo: str  # what adapts it, as shown in the results ("none" for a policy used as it is)
    update: bool = True  # False: the same episodes at every k, never an update
    fallback: bool = True  # False: adapt without the learner's fallback policy (scratch)


def ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the normal-approximation 95% confidence interval."""
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    if arr.size == 1:
        return float(arr[0]), 0.0
    return float(arr.mean()), float(1.96 * arr.std(ddof=1) / math.sqrt(arr.size))


def fresh_state(learner: MetaLearner, seed: int) -> dict[str, torch.Tensor]:
    """Parameters of a newly initialised policy of the learner's architecture."""
    torch.manual_seed(seed)
    policy = learner.spec.build(learner.policy.observation_space, learner.policy.action_space)
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


def evaluate(
    methods: Sequence[Method],
    family_name: str,
    splits: Sequence[str],
    n_tasks: int,
    seeds: int,
    steps: int,
    episodes: int,
    progress: Callable[[int], None] | None = None,
    tasks_of: Callable[[str, int], Sequence[Task]] | None = None,
    same_seeds: bool = False,
) -> dict[str, Any]:
    """Run the protocol; returns the JSON-ready results (raw per-task values included).
    ``tasks_of(split, n)`` gives each split's tasks (default: the family's held-out ones; e.g.
    a user's robot on each held-out task's floor and goal). ``same_seeds``: every k runs k =
    0's episode seeds (``MetaLearner.adapt_many``), so k's differ by the policy alone."""
    if n_tasks < 1 or seeds < 1 or steps < 0 or episodes < 1:
        raise MetarobotError("--tasks, --seeds and --episodes must be >= 1 and --steps >= 0")
    results: dict[str, Any] = {
        "family": family_name,
        "tasks": n_tasks,
        "seeds": seeds,
        "steps": steps,
        "episodes": episodes,
        "ci": "normal approximation, 1.96 * sample std / sqrt(tasks * seeds)",
        "same_seeds": same_seeds,
        "splits": {},
    }
    for split in splits:
        family = methods[0].learner.family
        tasks = list(tasks_of(split, n_tasks) if tasks_of is not None else family.heldout_tasks(split, n_tasks))

        def tick(n: int = len(tasks)) -> None:
            if progress is not None:
                progress(n)

        split_out: dict[str, Any] = {}
        for m in methods:
            success = np.zeros((seeds, n_tasks, steps + 1))
            returns = np.zeros((seeds, n_tasks, steps + 1))
            for s in range(seeds):
                fresh = m.state is None and m.update  # scratch: a new init per seed
                state = fresh_state(m.learner, 10_000 + s) if fresh else m.state
                res = m.learner.adapt_many(
                    tasks,
                    steps,
                    episodes,
                    state=state,
                    seed=s,
                    progress=tick,
                    update=m.update,
                    fallback=m.fallback,
                    same_seeds=same_seeds,
                )
                for i, r in enumerate(res):
                    success[s, i] = r.success
                    returns[s, i] = r.returns
            split_out[m.name] = {
                "success_mean": [ci95(success[:, :, k].ravel())[0] for k in range(steps + 1)],
                "success_ci95": [ci95(success[:, :, k].ravel())[1] for k in range(steps + 1)],
                "return_mean": [ci95(returns[:, :, k].ravel())[0] for k in range(steps + 1)],
                "return_ci95": [ci95(returns[:, :, k].ravel())[1] for k in range(steps + 1)],
                "success_per_seed_task": success.tolist(),
                "return_per_seed_task": returns.tolist(),
                "inner_loop": m.algo,
            }
        results["splits"][split] = split_out
    return results


#: learning rates ``finetune`` chooses from (PPO's Adam, from the multitask policy)
FINETUNE_LRS = (1e-4, 3e-4, 1e-3)


def choose_finetune_lr(
    learner: MetaLearner,
    steps: int,
    episodes: int,
    seed: int = 0,
    n_tasks: int = 5,
    candidates: Sequence[float] = FINETUNE_LRS,
) -> tuple[float, dict[str, float]]:
    """The PPO learning rate that fine-tunes ``learner``'s policy best on ``n_tasks`` tasks of
    the *train* split (success after ``steps`` updates, then return): chosen there, never on
    the held-out splits it is measured on."""
    tasks = learner.family.heldout_tasks("train", n_tasks)
    scores: dict[str, float] = {}
    best: tuple[float, float, float] | None = None
    for lr in candidates:
        tuner = learner.load_as(ppo_lr=lr)
        try:
            res = tuner.adapt_many(tasks, steps, episodes, seed=seed + 31_337)
        finally:
            tuner.close()
        success = float(np.mean([r.success[-1] for r in res]))
        ret = float(np.mean([r.returns[-1] for r in res]))
        scores[f"{lr:g}"] = success
        if best is None or (success, ret) > best[:2]:
            best = (success, ret, lr)
    assert best is not None
    return best[2], scores


def format_table(results: dict[str, Any]) -> str:
    """The terminal table: success (and return) mean +/- 95% CI at every k."""
    lines = []
    steps = results["steps"]
    for split, methods in results["splits"].items():
        lines.append(
            f"split {split}: {results['tasks']} tasks x {results['seeds']} seeds, "
            f"{results['episodes']} episodes per update"
        )
        head = f"  {'method':<22}" + "".join(f"{'k=' + str(k):>17}" for k in range(steps + 1))
        lines.append(head)
        for name, m in methods.items():
            succ = "".join(
                f"{100 * mu:>9.1f}% ±{100 * ci:>4.1f}" for mu, ci in zip(m["success_mean"], m["success_ci95"])
            )
            lines.append(f"  {name + ' success':<22}{succ}")
            ret = "".join(f"{mu:>10.1f} ±{ci:>4.1f}" for mu, ci in zip(m["return_mean"], m["return_ci95"]))
            lines.append(f"  {name + ' return':<22}{ret}")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> Path:
    """Adaptation curves: success vs k, one line per method, 95% CI bands, a panel per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(results["splits"])
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.0), squeeze=False)
    ks = np.arange(results["steps"] + 1)
    for ax, split in zip(axes[0], splits):
        for name, m in results["splits"][split].items():
            mu = 100 * np.asarray(m["success_mean"])
            ci = 100 * np.asarray(m["success_ci95"])
            ax.plot(ks, mu, marker="o", label=name)
            ax.fill_between(ks, mu - ci, mu + ci, alpha=0.2)
        ax.set_title(f"{results['family']}: {split} tasks")
        ax.set_xlabel("adaptation updates k")
        ax.set_ylabel("success rate (%)")
        ax.set_ylim(-2, 102)
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    return json_path, atomic_save(out / "adaptation.png", lambda tmp: plot(results, tmp))
