"""MAML and FOMAML around SB3 PPO (ProMP / garage MAML-PPO style).

Inner loop (adaptation): ``inner_steps`` SGD steps of size ``inner_lr`` on the vanilla
policy-gradient loss of the task's episodes, computed functionally
(``torch.func.functional_call`` on a parameter dict; see ``metarobot.adaptation``).
Outer update: PPO's clipped objective on the post-adaptation episodes under the adapted
parameters, recomputed from the meta-parameters and back-propagated through the inner steps
(second order for ``MAML``; the inner gradient detached for ``FOMAML``), ``outer_epochs``
passes of ``outer_minibatches`` Adam steps.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from metarobot import adaptation as ad
from metarobot.meta import MetaLearner, job_seed
from metarobot.sampling import Rollout

State = dict[str, torch.Tensor]


class MAML(MetaLearner):
    """Second-order MAML: ``MAML(family="cartpole").train(iterations=20)``."""

    name = "maml"
    #: detach the inner gradient (FOMAML)
    first_order: ClassVar[bool] = False

    def inner_params(self, state: State) -> ad.Params:
        """The trainable tensors of ``state`` as leaves that the inner step differentiates."""
        names = dict(self.policy.named_parameters())
        return {k: v.detach().to(self.config.device).requires_grad_(True) for k, v in state.items() if k in names}

    def inner_step(self, params: ad.Params, batch: ad.Batch, create_graph: bool = True) -> ad.Params:
        """One inner SGD step (differentiable unless ``create_graph`` is False)."""
        return ad.inner_step(
            self.policy, params, batch, self.config.inner_lr, first_order=self.first_order, create_graph=create_graph
        )

    def inner_update(self, state: State, rollout: Rollout, seed: int = 0) -> State:
        new = self.inner_step(self.inner_params(state), self._batch(rollout), create_graph=False)
        out = dict(state)
        out.update({k: v.detach().cpu() for k, v in new.items()})
        return out

    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        cfg = self.config
        pre_batches = [[self._batch(ph[i]) for ph in phases[:-1]] for i in range(cfg.meta_batch)]
        post_batches = [self._batch(ro) for ro in phases[-1]]
        totals: dict[str, float] = {}
        groups = max(1, min(cfg.outer_minibatches, cfg.meta_batch))
        order_rng = np.random.default_rng(job_seed(cfg.seed, 97, self.iteration))
        updates = 0
        for _ in range(cfg.outer_epochs):
            for group in np.array_split(order_rng.permutation(cfg.meta_batch), groups):
                self.optimizer.zero_grad()
                for i in group:
                    loss, stats = self.task_loss(pre_batches[i], post_batches[i])
                    (loss / len(group)).backward()
                    for k, v in stats.items():
                        totals[k] = totals.get(k, 0.0) + v / (cfg.meta_batch * cfg.outer_epochs)
                torch.nn.utils.clip_grad_norm_(self.meta_parameters(), 0.5)
                self.optimizer.step()
                updates += 1
        totals["outer_updates"] = float(updates)
        return totals

    def task_loss(self, pre_batches: list[ad.Batch], post_batch: ad.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """One task's outer loss: the inner steps on its pre-adaptation batches, from the
        meta-parameters (differentiably), then PPO's clipped objective on its post-adaptation
        batch under the adapted parameters."""
        cfg = self.config
        params = ad.trainable_params(self.policy)
        for batch in pre_batches:
            params = self.inner_step(params, batch)
        return ad.ppo_surrogate(self.policy, params, post_batch, cfg.clip_range, cfg.vf_coef, cfg.ent_coef)

    def meta_parameters(self) -> list[torch.Tensor]:
        """What the outer update trains (its gradient is clipped to norm 0.5 as one vector)."""
        return list(self.policy.parameters())


class FOMAML(MAML):
    """First-order MAML: the same, with the inner gradient detached in the outer update."""

    name = "fomaml"
    first_order = True
