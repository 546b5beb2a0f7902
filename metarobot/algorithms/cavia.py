"""CAVIA (Zintgraf et al. 2019, "Fast Context Adaptation via Meta-Learning") around SB3 PPO.

The policy and value networks read ``[o; c]``: the observation and a context vector ``c`` of
``context_dim`` floats (the context-conditioned policy of ``metarobot.algorithms.context``,
whose context also gates the action mean). Adapting to a task changes ``c`` only; the network
weights ``theta`` are the meta-parameters and stay as they are. Inner rule (``inner_steps``
times, each on the task's fresh episodes, ``c`` starting at zeros for every task)::

    c' = c - inner_lr * grad_c L_pg(theta, c)

with ``L_pg`` MAML's inner loss (the vanilla policy-gradient surrogate of the task's episodes,
``metarobot.adaptation.policy_gradient_loss``) evaluated on the episodes' observations with
``c`` in place of the context they ran with; ``inner_lr`` defaults to 10 for cavia (see
``CAVIA.defaults``: the context's gradient is small). Outer update: PPO's clipped objective on the
post-adaptation episodes under ``[o; c_K]``, with ``c_K`` recomputed from zeros through the
inner steps, differentiably (second order), so its gradient reaches ``theta`` both directly
and through the adapted context; ``outer_epochs`` passes of ``outer_minibatches`` Adam steps, as
in MAML.

Test time is the same: episodes with ``c = 0``, then gradient steps on ``c`` alone. Because the
weights never move, an adaptation cannot overwrite what the network knows, but it can still move
``c`` somewhere bad, so safe adaptation (``safe_adaptation``) checks each step as for MAML (a
rejected step is retried at half its length: the context halfway back). An adapted policy
exports as a plain SB3 zip with the context folded into the first layers' biases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from metarobot import adaptation as ad
from metarobot.algorithms.context import CONTEXT_KEY, ContextLearner
from metarobot.algorithms.maml import MAML
from metarobot.family import Task
from metarobot.meta import AdaptationResult
from metarobot.sampling import Rollout

State = dict[str, torch.Tensor]


class CAVIA(ContextLearner, MAML):
    """CAVIA: the inner loop adapts a context vector of the policy's input, never its weights."""

    name = "cavia"
    # the context's gradient is small: through weights of ortho-init gain 0.01 (SB3's action head)
    # and a gate that starts at zero weights. On cartpole, from the initial policy, inner_lr 0.1
    # moved the context by 3e-5 (norm; 0.003 at 10). Pilot runs at cartpole's defaults, 8
    # iterations each: inner_lr 10 -> context norm about 1 from iteration 3, post-update return
    # above the pre-update one from iteration 5; inner_lr 100 -> norm 3.5-4.7 and below it
    # in 6 of 8 iterations (bench/RESULTS.md, issue 11)
    defaults = {"inner_lr": 10.0}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._shared_part: State | None = None
        super().__init__(*args, **kwargs)

    @property
    def context_dim(self) -> int:
        return int(self.config.context_dim)

    @property
    def training_context_dropout(self) -> float:
        return 0.0  # the context is the adapted one: nothing to drop

    # -- the context ------------------------------------------------------------------------
    def context_of(self, state: State) -> torch.Tensor:
        """The context ``state`` runs with (zeros before any update)."""
        context = state.get(CONTEXT_KEY)
        return torch.zeros(self.context_dim) if context is None else context

    def job_context(self, task: Task, state: State) -> np.ndarray:
        return self.context_of(state).detach().cpu().numpy().astype(np.float32)

    def with_context(self, batch: ad.Batch, context: torch.Tensor) -> ad.Batch:
        """``batch`` with ``context`` in place of the context its episodes ran with."""
        obs = batch.obs[:, : self.obs_dim]
        obs = torch.cat([obs, context.to(obs.dtype).expand(len(obs), -1)], dim=1)
        return ad.Batch(obs, batch.actions, batch.old_log_prob, batch.advantages, batch.returns)

    def context_step(
        self, params: ad.Params, context: torch.Tensor, batch: ad.Batch, create_graph: bool = True
    ) -> torch.Tensor:
        """One inner SGD step of ``context`` (a tensor that requires grad) on ``batch`` under the
        network ``params``; differentiable w.r.t. both unless ``create_graph`` is False."""
        loss = ad.policy_gradient_loss(self.policy, params, self.with_context(batch, context))
        (grad,) = torch.autograd.grad(loss, [context], create_graph=create_graph)
        return context - self.config.inner_lr * grad

    def inner_update(self, state: State, rollout: Rollout, seed: int = 0) -> State:
        device = self.config.device
        names = dict(self.policy.named_parameters())
        params = {k: v.to(device) for k, v in self.policy_part(state).items() if k in names}
        context = self.context_of(state).detach().to(device).requires_grad_(True)
        new = self.context_step(params, context, self._batch(rollout), create_graph=False)
        out = dict(state)  # the network's tensors are the very same objects
        out[CONTEXT_KEY] = new.detach().cpu()
        return out

    def deployed_state(self, task: Task, state: State) -> State:
        return {**state, CONTEXT_KEY: self.context_of(state)}

    def adapt_many(  # type: ignore[override]
        self,
        tasks: Sequence[Task],
        steps: int | None = None,
        episodes: int | None = None,
        state: State | None = None,
        **kwargs: Any,
    ) -> list[AdaptationResult]:
        # start from an explicit all-zero context: safe adaptation's retry goes halfway between
        # the kept state and the rejected one, key by key, so the kept one must hold a context
        start = state if state is not None else self.meta_state()
        start = {**start, CONTEXT_KEY: self.context_of(start)}
        return super().adapt_many(tasks, steps, episodes, start, **kwargs)

    def policy_part(self, state: State) -> State:
        # every adapted state shares the network's tensors: hand the samplers one dict for all of
        # them, so the parameters travel once per worker and call (as the meta-parameters do)
        part = super().policy_part(state)
        shared = self._shared_part
        if part is not state and shared is not None and part.keys() == shared.keys():
            if all(part[k] is shared[k] for k in part):
                return shared
        if part is not state:
            self._shared_part = part
        return part

    # -- meta-training ----------------------------------------------------------------------
    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        stats = super().outer_update(phases, adapted, meta)
        # how far the inner loop moved the context (0 would mean it adapts nothing)
        stats["context_norm"] = float(np.mean([float(self.context_of(s).norm()) for s in adapted]))
        return stats

    def task_loss(self, pre_batches: list[ad.Batch], post_batch: ad.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """One task's outer loss: the context adapted from zeros on the pre-adaptation batches
        (differentiably), then PPO's clipped objective on the post-adaptation batch under it."""
        cfg = self.config
        params = ad.trainable_params(self.policy)
        context = torch.zeros(self.context_dim, dtype=post_batch.obs.dtype, device=post_batch.obs.device)
        context.requires_grad_(True)
        for batch in pre_batches:
            context = self.context_step(params, context, batch)
        return ad.ppo_surrogate(
            self.policy, params, self.with_context(post_batch, context), cfg.clip_range, cfg.vf_coef, cfg.ent_coef
        )
