"""Meta-SGD (Li et al. 2017, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning")
around SB3 PPO: MAML whose inner step size is learned, one per element of every policy tensor.

Inner rule (adaptation), for every policy parameter tensor ``theta`` (``inner_steps`` times,
each on the task's fresh episodes)::

    theta' = theta - exp(log_alpha) * grad_theta L_pg(theta)

``L_pg`` is MAML's inner loss (the vanilla policy-gradient surrogate of the task's episodes,
``metarobot.adaptation.policy_gradient_loss``), ``*`` is element-wise and ``log_alpha`` has
``theta``'s shape. The step sizes are kept as their logarithm (positive at any value the outer
Adam reaches), initialised at ``log(inner_lr)`` in every element, so an untrained Meta-SGD
takes exactly MAML's step. Parameters the inner loss does not reach (the value network) have
step sizes too, which never change.

Outer update: MAML's (PPO's clipped objective on the post-adaptation episodes, back-propagated
through the inner steps, second order), the same Adam updating the policy and ``log_alpha``
together (gradient clipped to norm 0.5 as one vector). The step sizes are meta-state: the
checkpoint holds them (``algo_state["log_step_sizes"]``), ``MetaLearner.load`` restores them and
``adapt``/``evaluate`` adapt with them; after training, ``inner_lr`` only tells where they
started.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from metarobot import adaptation as ad
from metarobot.algorithms.maml import MAML
from metarobot.errors import MetarobotError
from metarobot.sampling import Rollout
from metarobot.validation import DivergedError, check_finite_tensors

State = dict[str, torch.Tensor]
#: the key of the learned log step sizes in a checkpoint's ``algo_state``
STEP_SIZES_KEY = "log_step_sizes"


class MetaSGD(MAML):
    """Meta-SGD: MAML with a learned inner step size per parameter element."""

    name = "metasgd"

    #: log of the inner step size of every element of every policy parameter (by name)
    log_step_sizes: dict[str, nn.Parameter]

    def _make_optimizer(self) -> torch.optim.Optimizer:
        # called by MetaLearner.__init__ once the policy exists: the step sizes are built here,
        # so that the one Adam of the outer update holds them from the start
        start = math.log(self.config.inner_lr)
        self.log_step_sizes = {
            name: nn.Parameter(torch.full_like(p.detach(), start)) for name, p in self.policy.named_parameters()
        }
        return torch.optim.Adam(self.meta_parameters(), lr=self.config.outer_lr)

    def meta_parameters(self) -> list[torch.Tensor]:
        return [*self.policy.parameters(), *self.log_step_sizes.values()]

    def step_sizes(self, differentiable: bool = False) -> dict[str, torch.Tensor]:
        """The inner step size of every element, ``exp(log_alpha)`` (in the outer update's
        graph when ``differentiable``)."""
        return {k: (v if differentiable else v.detach()).exp() for k, v in self.log_step_sizes.items()}

    def inner_step(self, params: ad.Params, batch: ad.Batch, create_graph: bool = True) -> ad.Params:
        """One inner step with the learned step sizes (differentiable w.r.t. the parameters and
        the step sizes unless ``create_graph`` is False)."""
        return ad.inner_step(
            self.policy,
            params,
            batch,
            self.step_sizes(differentiable=create_graph),
            first_order=self.first_order,
            create_graph=create_graph,
        )

    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        stats = super().outer_update(phases, adapted, meta)
        try:  # the divergence check after a step looks at the policy only
            check_finite_tensors(self.log_step_sizes, "learned inner step sizes")
        except DivergedError as exc:
            raise DivergedError(
                f"training diverged in iteration {self.iteration + 1}: {exc} (lower --outer-lr)"
            ) from None
        reached = [v for k, v in self.log_step_sizes.items() if v.grad is not None]
        if reached:  # the mean step size of the parameters the inner loss reaches
            stats["inner_lr_mean"] = float(torch.cat([v.detach().exp().reshape(-1) for v in reached]).mean())
        return stats

    def extra_state(self) -> dict[str, Any]:
        return {STEP_SIZES_KEY: {k: v.detach().clone().cpu() for k, v in self.log_step_sizes.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        saved = state.get(STEP_SIZES_KEY)
        if not isinstance(saved, dict) or not saved:
            raise MetarobotError(f"metasgd checkpoint lacks its learned step sizes (algo_state[{STEP_SIZES_KEY!r}])")
        if set(saved) != set(self.log_step_sizes):
            missing = sorted(set(self.log_step_sizes) - set(saved)) or sorted(set(saved) - set(self.log_step_sizes))
            raise MetarobotError(f"metasgd checkpoint's step sizes do not match its policy (e.g. {missing[0]!r})")
        for name, value in saved.items():
            own = self.log_step_sizes[name]
            if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.shape != own.shape:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise MetarobotError(
                    f"metasgd checkpoint's step sizes of {name!r} have shape {shape}, its policy's {tuple(own.shape)}"
                )
        try:
            check_finite_tensors(saved, "metasgd checkpoint's learned step sizes")
        except DivergedError as exc:
            raise MetarobotError(str(exc)) from None
        with torch.no_grad():  # in place: the optimiser holds these very tensors
            for name, value in saved.items():
                self.log_step_sizes[name].copy_(value.to(self.log_step_sizes[name].dtype))
