"""Pilot: cavia with a first-order outer update (not a registered algorithm).

The outer loss is PPO's clipped objective on the post-update episodes under the context they
ran with (in their observations), so the weights' gradient is not taken through the context
step -- as fomaml is to maml. Everything else (inner loop, sampling, defaults) is cavia's.

    nice -n 10 python bench/cavia_first_order.py --family cartpole --out runs/cavia-fo
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from metarobot import adaptation as ad
from metarobot.algorithms import register_algorithm
from metarobot.algorithms.cavia import CAVIA
from metarobot.config import MetaConfig
from metarobot.training import Run


class FirstOrderCAVIA(CAVIA):
    """CAVIA whose outer gradient ignores how the adapted context depends on the weights."""

    name = "cavia-fo"

    def task_loss(self, pre_batches: list[ad.Batch], post_batch: ad.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        params = ad.trainable_params(self.policy)
        return ad.ppo_surrogate(self.policy, params, post_batch, cfg.clip_range, cfg.vf_coef, cfg.ent_coef)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--family", default="cartpole")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    register_algorithm(FirstOrderCAVIA)
    cfg = MetaConfig.resolve(family=args.family, algo="cavia-fo")
    summary = Run(args.out, cfg).train(progress=False)
    print(summary.get("heldout_test"), summary["env_steps"], summary["wall_s"])


if __name__ == "__main__":
    main()
