"""Do meta-training results depend on the worker schedule? (issue 10's reproduction)

    python bench/worker_determinism.py --algo reptile --workers 2 --runs 6
    python bench/worker_determinism.py --slots

The first form runs the case of ``test_results_do_not_depend_on_the_number_of_workers``
(cartpole, meta-batch 3, 2 episodes per update, 2 iterations, hidden size 8) ``--runs`` times
and prints, per run, the pre- and post-adaptation returns, the sum of the final
meta-parameters and the order in which the tasks' inner updates ran (it varies with 2
workers); then how many distinct results and orders there were. The second form checks the
env slots: for every family, one job's rollout on fresh slots against the same job run after
three jobs of other tasks on the same slots.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from metarobot.config import MetaConfig
from metarobot.meta import MetaLearner, job_seed
from metarobot.registry import family_names, get_family
from metarobot.sampling import Job, PolicySpec, _SlotPool, run_job

CASE = dict(family="cartpole", meta_batch=3, episodes_per_update=2, outer_epochs=2, eval_tasks=0, hidden_sizes=(8,))


def one_run(algo: str, workers: int, iterations: int) -> dict[str, Any]:
    """One short run: its metrics and the order (iteration, task) of its inner updates."""
    order: list[tuple[int, int]] = []
    with MetaLearner(algo=algo, **{**CASE, "workers": workers, "iterations": iterations}) as learner:
        cfg = learner.config
        original = learner.inner_update

        def logged(state: Any, rollout: Any, seed: int = 0) -> Any:
            # the training loop's inner-update seed names the task: job_seed(seed, iteration, k, i)
            it = learner.iteration
            task = next(i for i in range(cfg.meta_batch) if job_seed(cfg.seed, it, 0, i) == seed)
            order.append((it, task))
            return original(state, rollout, seed)

        learner.inner_update = logged  # type: ignore[method-assign]
        rows = [(r["pre_return"], r["post_return"]) for r in learner.train()]
        total = float(sum(v.double().sum() for v in learner.meta_state().values()))
    return {"returns": rows, "meta_sum": total, "inner_order": order}


def slot_history() -> dict[str, bool]:
    """Per family: whether a job's rollout is the same on fresh slots and on used ones."""
    out = {}
    for name in family_names():
        fam = get_family(name)
        spec = PolicySpec(name, MetaConfig(family=name, hidden_sizes=(8,)).policy_kwargs(fam.action_mask_slice))
        state = {k: v.clone() for k, v in spec.build().state_dict().items()}
        tasks = fam.heldout_tasks("train", 3)
        steps = fam.episode_steps
        job = Job(tasks[0], state, 2, steps, 11, 0.99)
        fresh = run_job(_SlotPool(), spec, job)
        pool = _SlotPool()
        # other tasks, more slots than the job uses, and an episode cut off mid-way
        before = [(tasks[1], 3, 2 * steps, 5), (tasks[2], 2, steps + 7, 6), (tasks[0], 2, steps // 2, 8)]
        for task, n, t, seed in before:
            run_job(pool, spec, Job(task, state, n, t, seed, 0.99))
        used = run_job(pool, spec, job)
        pool.close()
        fields = ("observations", "actions", "rewards")
        out[name] = all(np.array_equal(getattr(fresh, f), getattr(used, f)) for f in fields)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", default="reptile")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--slots", action="store_true", help="check the env slots instead")
    args = ap.parse_args()
    if args.slots:
        print(json.dumps({"same_rollout_on_used_slots": slot_history()}, indent=2))
        return
    runs = []
    for r in range(args.runs):
        runs.append(one_run(args.algo, args.workers, args.iterations))
        print(r, json.dumps(runs[-1]), flush=True)
    summary = {
        "algo": args.algo,
        "workers": args.workers,
        "runs": args.runs,
        "distinct_results": len({json.dumps([x["returns"], x["meta_sum"]]) for x in runs}),
        "distinct_inner_orders": len({json.dumps(x["inner_order"]) for x in runs}),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
