"""The multitask baseline: plain SB3 PPO on tasks resampled from the training split.

It samples the same phases as the meta-learners (so the same env-step budget per iteration)
but never adapts while training; its update is SB3's ``PPO.train`` on all of the iteration's
episodes. At test time it adapts with SB3 PPO updates from its own parameters (as Reptile's
inner loop does).
"""

from __future__ import annotations

import torch

from metarobot import adaptation as ad
from metarobot.algorithms.reptile import ppo_adapt
from metarobot.meta import MetaLearner, merge_rollouts
from metarobot.sampling import Rollout

State = dict[str, torch.Tensor]


class Multitask(MetaLearner):
    """Domain-randomised PPO: ``Multitask(family="reach").train()``."""

    name = "multitask"
    adapts_in_training = False

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return self.ppo.policy.optimizer  # SB3's own Adam: the update is PPO.train

    def inner_update(self, state: State, rollout: Rollout, seed: int = 0) -> State:
        return ppo_adapt(self, state, rollout, seed)

    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        cfg = self.config
        merged = merge_rollouts([ro for ph in phases for ro in ph])
        buffer = ad.make_buffer(merged, self.policy, cfg.gamma, cfg.gae_lambda, cfg.device)
        self.ppo.train_on(buffer, batch_size=max(64, merged.rewards.size // cfg.ppo_minibatches))
        return {}
