"""What a grasp-v1 policy does with the squeeze: on 10 train-split tasks x 2 seeds, with sampled
and with deterministic actions, how many episodes succeed and how many crush the object, how
many steps both fingers touch it, and the squeeze command ``a[4]`` it sends (mean, spread, share
of steps that squeeze at all). For an oracle checkpoint (the context is the task's hidden
parameters).

    python bench/grasp_v1_diagnose.py runs/grasp-v1-oracle/meta_policy.pt
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from metarobot.meta import MetaLearner


def episode(learner, env, context: np.ndarray, seed: int, deterministic: bool) -> tuple[dict, int, list[float]]:
    """One episode: its last info, the steps both fingers touched, and the squeeze commands."""
    obs, _ = env.reset(seed=seed)
    done, info, touched, squeezes = False, {}, 0, []
    while not done:
        seen = torch.as_tensor(np.concatenate([obs, context])[None])
        with torch.no_grad():
            action = learner.policy(seen, deterministic=deterministic)[0].numpy()[0]
        squeezes.append(float(action[4]))
        obs, _, terminated, truncated, info = env.step(np.clip(action, -1, 1))
        done = terminated or truncated
        touched += bool(info.get("contact_left") and info.get("contact_right"))
    return info, touched, squeezes


def main() -> None:
    with MetaLearner.load(sys.argv[1], workers=0) as learner:
        family = learner.family
        tasks = family.heldout_tasks("train", 10)
        for deterministic in (False, True):
            crushed = success = touched = episodes = 0
            squeezes: list[float] = []
            for task in tasks:
                env = family.make_env(task)
                context = np.asarray(family.hidden_params(task), np.float32)
                try:
                    for seed in range(2):
                        info, touching, sent = episode(learner, env, context, seed, deterministic)
                        crushed += bool(info.get("crushed", False))
                        success += bool(info["is_success"])
                        touched += touching
                        squeezes += sent
                        episodes += 1
                finally:
                    env.close()
            a4 = np.asarray(squeezes)
            print(
                f"{'deterministic' if deterministic else 'sampled'}: success {success}/{episodes}, "
                f"crushed {crushed}/{episodes}, steps with both fingers on the object {touched}, "
                f"a[4] mean {a4.mean():.2f} std {a4.std():.2f} share > 0 {(a4 > 0).mean():.2f}"
            )


if __name__ == "__main__":
    main()
