"""Reptile around SB3 PPO.

Inner loop (adaptation): SB3's own PPO update (``PPO.train``, ``ppo_epochs`` epochs, a fresh
Adam of step ``ppo_lr``) on the task's episodes, from the given parameters. Outer update: the
meta-parameters move ``reptile_step`` of the way toward the mean of the adapted ones.
"""

from __future__ import annotations

import numpy as np
import torch

from metarobot import adaptation as ad
from metarobot.meta import MetaLearner
from metarobot.sampling import Rollout

State = dict[str, torch.Tensor]


def ppo_adapt(learner: MetaLearner, state: State, rollout: Rollout, seed: int) -> State:
    """SB3 PPO's update of ``state`` on one task's ``rollout`` (a fresh optimiser; seeded so
    the minibatch order depends on ``seed`` only, never on what ran before in this process)."""
    ppo = learner.inner_ppo()
    ppo.policy.load_state_dict(state)
    cfg = learner.config
    buffer = ad.make_buffer(rollout, ppo.policy, cfg.gamma, cfg.gae_lambda, cfg.device)
    # seeded last, just before the update draws its minibatches: anything in between that
    # touches the global generators (building the PPO once did: SB3 reseeds them with the
    # run's seed) would make the result depend on which task's update came first
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    ppo.train_on(buffer, fresh_optimizer=True)
    return {k: v.detach().clone().cpu() for k, v in ppo.policy.state_dict().items()}


class Reptile(MetaLearner):
    """Reptile: ``Reptile(family="cartpole", reptile_step=0.25).train(iterations=20)``."""

    name = "reptile"

    def inner_update(self, state: State, rollout: Rollout, seed: int = 0) -> State:
        return ppo_adapt(self, state, rollout, seed)

    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        with torch.no_grad():
            for name, param in self.policy.named_parameters():
                target = torch.stack([s[name] for s in adapted]).mean(0).to(param.device)
                param.add_(self.config.reptile_step * (target - param))
        return {}
