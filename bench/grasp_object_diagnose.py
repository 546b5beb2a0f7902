"""Why a grasp policy fails on a user's object: each of the first N ``test`` grippers of the
policy's family holds the object (as ``bench/real_robot_eval.py`` places it), deterministic
actions, no adaptation. Per episode: success, the steps both fingers touch the object, the step
they first do, the highest lift, and the share of finger contacts whose normal is more than 50%
vertical (fingertips on the object's top rather than its sides).

    python bench/grasp_object_diagnose.py policies/pretrained/grasp-multitask.pt --object-urdf teddy_vhacd.urdf
    python bench/grasp_object_diagnose.py CHECKPOINT --object-mesh duck.obj --object-density 300 --object-scale 0.05

Relative paths are looked up in ``pybullet_data`` when they are not files here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data
import torch
from metarobot.envs.grasp import object_task_from_mesh, object_task_from_urdf

from metarobot.meta import MetaLearner


def _path(name: str) -> Path:
    path = Path(name)
    return path if path.is_file() else Path(pybullet_data.getDataPath()) / name


def episode(learner: MetaLearner, env, seed: int) -> dict:
    """One deterministic episode of ``learner``'s policy: what happened to the object."""
    c = env.sim.client
    obs, _ = env.reset(seed=seed)
    both, first, lift, top, contacts, done, t, info = 0, None, 0.0, 0, 0, False, 0, {}
    while not done:
        with torch.no_grad():
            action = learner.policy(torch.as_tensor(obs[None]), deterministic=True)[0].numpy()[0]
        obs, _, terminated, truncated, info = env.step(np.clip(action, -1, 1))
        done, t = terminated or truncated, t + 1
        if info.get("contact_left") and info.get("contact_right"):
            both += 1
            first = first or t
        lift = max(lift, float(info.get("lift", 0.0)))
        for finger in env._fingers:
            for cp in p.getContactPoints(env.gripper, env.object, finger, -1, physicsClientId=c):
                contacts += 1
                top += abs(cp[7][2]) > 0.5
    return {"success": bool(info.get("is_success")), "both": both, "first": first, "lift": lift,
            "top_share": top / contacts if contacts else 0.0}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--object-urdf")
    ap.add_argument("--object-mesh")
    ap.add_argument("--object-mass", type=float)
    ap.add_argument("--object-density", type=float)
    ap.add_argument("--object-scale", type=float, default=1.0)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    if bool(args.object_urdf) == bool(args.object_mesh):
        raise SystemExit("give one of --object-urdf, --object-mesh")
    torch.set_num_threads(1)
    with MetaLearner.load(args.checkpoint, workers=0) as learner:
        family = learner.family
        rows = []
        for g, gripper in enumerate(family.heldout_tasks("test", args.tasks)):
            if args.object_urdf:
                task = object_task_from_urdf(_path(args.object_urdf), gripper_from=gripper)
            else:
                size = {"mass": args.object_mass, "density": args.object_density, "scale": args.object_scale}
                task = object_task_from_mesh(_path(args.object_mesh), gripper_from=gripper, **size)
            env = family.make_env(task)
            try:
                runs = [episode(learner, env, seed) for seed in range(args.seeds)]
            finally:
                env.close()
            rows += runs
            print(
                f"gripper {g}: opens {task.max_opening * 100:.1f} cm, fingers {task.finger_length * 100:.1f} cm | "
                + " ; ".join(
                    f"{'ok  ' if r['success'] else 'FAIL'} both {r['both']:3d} first {r['first']} "
                    f"lift {r['lift'] * 100:4.1f} cm top {r['top_share']:.0%}"
                    for r in runs
                )
            )
        ok = [r for r in rows if r["success"]]
        bad = [r for r in rows if not r["success"]]
        print(f"{family.name}: success {len(ok)}/{len(rows)}")
        for label, group in (("succeeded", ok), ("failed", bad)):
            if group:
                print(
                    f"  {label}: mean steps with both fingers on {np.mean([r['both'] for r in group]):.0f}, "
                    f"lifted > 1 cm {sum(r['lift'] > 0.01 for r in group)}/{len(group)}, contacts on the top "
                    f"{np.mean([r['top_share'] for r in group]):.0%}"
                )


if __name__ == "__main__":
    main()
