"""A real robot file under a family's held-out conditions (issue 12, point 6), adapted with each
method's own routine, N tasks x S seeds -- ``metarobot evaluate``'s protocol on a user's robot:

* a wheeled base (``navigate-v1``) is put on each of the first N ``test`` tasks' floors and goals;
* an arm (``reach-v2``) is N robots of the file's model: task i is the file's arm with its hidden
  differences (every joint's direction and gain, zero offsets, payload) drawn from the family's
  ranges with seed 10000 + i (``task_from_urdf(..., variation_seed=...)``); goals are tip poses of
  joint angles within half of each joint's range around its centre;
* an object (``grasp``, ``--object-urdf`` or ``--object-mesh`` with ``--object-mass`` or
  ``--object-density`` and ``--object-scale``) is held by each of the first N ``test`` tasks'
  grippers, placed as those tasks place their objects.

    python bench/real_robot_eval.py --family navigate-v1 --urdf husky/husky.urdf \\
        --checkpoint policies/pretrained/navigate-v1-rma-online.pt --baselines multitask,recurrent,oracle \\
        --tasks 10 --seeds 3 --steps 3 --episodes 5 --out bench/results/husky-navigate-v1

A relative ``--urdf`` is looked up in ``pybullet_data``. Baselines are the family's shipped ones
(multitask, oracle: ``FAMILY-ALGO.pt``; recurrent: ``FAMILY-recurrent.zip``). The oracle is shown
the hidden parameters of the file's robot as the family normalises them (a real robot may lie
far outside the training ranges). A checkpoint that carries a fallback policy adapts with it
(``METHOD+fallback``); ``--also-alone`` adds the same checkpoint without it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VARIATION_SEED = 10_000  # an arm's task i: the file's arm varied with this seed + i


def main() -> None:
    import pybullet_data
    from metarobot.policies.pretrained import pretrained_path, shipped_file

    from metarobot.evaluation import Method, evaluate, format_table, write_results
    from metarobot.meta import MetaLearner
    from metarobot.registry import get_family
    from metarobot.validation import check_urdf_file

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="navigate-v1")
    ap.add_argument("--urdf", help="a robot file (navigate, reach)")
    ap.add_argument("--object-urdf", help="an object file (grasp)")
    ap.add_argument("--object-mesh", help="a bare mesh object (grasp)")
    ap.add_argument("--object-mass", type=float)
    ap.add_argument("--object-density", type=float)
    ap.add_argument("--object-scale", type=float, default=1.0)
    ap.add_argument("--checkpoint", action="append", default=[])
    ap.add_argument("--baselines", default="multitask,recurrent,oracle")
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--also-alone", action="store_true", help="a checkpoint that carries a fallback runs without it too"
    )
    ap.add_argument(
        "--same-seeds", action="store_true", help="every k on k = 0's episode seeds (metarobot evaluate --same-seeds)"
    )
    args = ap.parse_args()

    given = [a for a in (args.urdf, args.object_urdf, args.object_mesh) if a]
    if len(given) != 1:
        raise SystemExit("give one of --urdf, --object-urdf, --object-mesh")
    urdf = Path(given[0])
    if not urdf.is_absolute() and not urdf.exists():  # "pybullet_data/x.urdf": results.json's "robot"
        parts = urdf.parts[1:] if urdf.parts[0] == "pybullet_data" else urdf.parts
        urdf = Path(pybullet_data.getDataPath(), *parts)
    if not args.object_mesh:
        check_urdf_file(urdf)
    family = get_family(args.family)
    arm = family.name.startswith("reach")

    def tasks_of(split: str, n: int) -> list:
        if arm:
            return [family.task_from_urdf(urdf, variation_seed=VARIATION_SEED + i) for i in range(n)]
        if args.object_urdf:
            from metarobot.envs.grasp import object_task_from_urdf

            return [object_task_from_urdf(urdf, gripper_from=t) for t in family.heldout_tasks(split, n)]
        if args.object_mesh:
            from metarobot.envs.grasp import object_task_from_mesh

            size = {"mass": args.object_mass, "density": args.object_density, "scale": args.object_scale}
            return [object_task_from_mesh(urdf, **size, gripper_from=t) for t in family.heldout_tasks(split, n)]
        return [family.task_from_urdf(urdf, map_from=t) for t in family.heldout_tasks(split, n)]

    methods, learners = [], []
    for path in args.checkpoint:
        learner = MetaLearner.load(path, workers=args.workers)
        learners.append(learner)
        if learner.fallback is None:
            methods.append(Method(learner.name, learner.meta_state(), learner, learner.name))
            continue
        inner = f"{learner.name}, fallback {learner.fallback.config.algo}"
        methods.append(Method(f"{learner.name}+fallback", learner.meta_state(), learner, inner))
        if args.also_alone:  # the same policy without the fallback the checkpoint carries
            methods.append(Method(learner.name, learner.meta_state(), learner, learner.name, fallback=False))
    wanted = [b for b in args.baselines.split(",") if b and b != "none"]
    for name in wanted:
        if name == "recurrent":
            from metarobot.recurrent import RecurrentBaseline, load_recurrent

            zip_path = shipped_file(args.family, "recurrent", ".zip")
            if zip_path is None:
                raise SystemExit(f"no shipped recurrent baseline for {args.family}")
            rec = RecurrentBaseline(load_recurrent(zip_path), args.family)
            learners.append(rec)
            methods.append(Method("recurrent", None, rec, "memory (no update)", update=False))  # type: ignore[arg-type]
        elif name in ("multitask", "oracle"):
            learner = MetaLearner.load(pretrained_path(args.family, name), workers=args.workers)
            learners.append(learner)
            methods.append(Method(name, learner.meta_state(), learner, "none", update=False))
        else:
            raise SystemExit(f"unknown baseline {name!r} (multitask, recurrent, oracle)")
    try:
        results = evaluate(
            methods,
            args.family,
            ["test"],
            args.tasks,
            args.seeds,
            args.steps,
            args.episodes,
            tasks_of=tasks_of,
            same_seeds=args.same_seeds,
        )
    finally:
        for learner in learners:
            learner.close()
    results["robot"] = str(urdf).replace(pybullet_data.getDataPath() + "/", "pybullet_data/")
    if arm:
        last = VARIATION_SEED + args.tasks - 1
        where = f"the file's arm, hidden differences drawn with seeds {VARIATION_SEED}..{last}"
    elif args.object_urdf or args.object_mesh:
        where = f"the file's object held by the first {args.tasks} {args.family} test grippers"
    else:
        where = f"the first {args.tasks} {args.family} test floors and goals, the robot from the file"
    results["tasks_from"] = where
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(results, args.out)
    print(format_table(results))
    print(json.dumps({"out": str(args.out)}))


if __name__ == "__main__":
    main()
