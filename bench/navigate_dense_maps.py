"""What a navigate policy does on the ood split's denser maps (5-7 obstacles): per map, its
success, mean chassis speed, closest approach to the goal and share of steps with an obstacle
within 0.25 m, over 6 episodes of its deployed policy (no update), the seeds of ``evaluate``'s
k = 0 with seed 0.

    python bench/navigate_dense_maps.py policies/pretrained/navigate-oracle.pt
"""

from __future__ import annotations

import sys

import numpy as np

from metarobot.meta import MetaLearner, job_seed


def main() -> None:
    learner = MetaLearner.load(sys.argv[1], workers=0)
    learner.set_fallback(None)
    tasks = learner.family.heldout_tasks("ood", 20)
    length = learner.family.param("chassis_length").train_range
    dense = [
        (i, t)
        for i, t in enumerate(tasks)
        if len(t.obstacle_kinds) > 3 and length.low <= t.chassis_length <= length.high
    ]
    state = learner.meta_state()
    jobs = [learner.make_job(t, state, 6, job_seed(0, 7_777, 0, i)) for i, t in dense]
    print(f"{sys.argv[1]} ({learner.name}) on the {len(dense)} denser ood maps")
    for (i, task), ro in zip(dense, learner.sampler().run(jobs)):
        obs = ro.observations  # (steps, episodes, obs): the env's observation first
        speed = np.linalg.norm(obs[..., 5:7], axis=-1).mean()
        near = (obs[..., 8:24].min(-1) * 1.5 < 0.25).mean()
        closest = (obs[..., 2] * 2).min(0).mean()
        print(
            f"  ood task {i:2d}: {len(task.obstacle_kinds)} obstacles, success {ro.success_rate:.2f}, "
            f"speed {speed:.2f} m/s, closest to the goal {closest:.2f} m, obstacle within 0.25 m {near:.0%} of steps"
        )
    learner.close()


if __name__ == "__main__":
    main()
