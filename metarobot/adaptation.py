"""Functional pieces of the inner and outer losses, shared by the algorithms.

The gradient inner loop (``inner_step``): an SGD step on the vanilla policy-gradient loss
``-mean(log pi(a|s) * A)`` of one task's episodes (GAE advantages from SB3's
``RolloutBuffer``, normalised per task), computed with ``torch.func.functional_call`` on a
parameter dict: differentiable (second order), or with the gradient detached (first order),
never an in-place edit of the meta-parameters. ``ppo_surrogate`` is PPO's clipped objective
under a parameter dict (the outer loss of MAML). The algorithms themselves live in
``metarobot.algorithms``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from torch import nn
from torch.func import functional_call

from metarobot.sampling import Rollout

Params = dict[str, torch.Tensor]


class _Evaluate(nn.Module):
    """Lets ``functional_call`` reach ``policy.evaluate_actions`` (it only calls ``forward``)."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.policy.evaluate_actions(obs, actions)  # type: ignore[operator,no-any-return]


def evaluate_with(
    policy: nn.Module, params: Params, obs: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``policy.evaluate_actions`` under ``params`` instead of the module's own tensors."""
    wrapper = _Evaluate(policy)
    prefixed = {f"policy.{k}": v for k, v in params.items()}
    values, log_prob, entropy = functional_call(wrapper, prefixed, (obs, actions), strict=False)
    return values.flatten(), log_prob, entropy


def trainable_params(policy: nn.Module) -> Params:
    return {k: v for k, v in policy.named_parameters()}


def detached_state(params: Params, policy: nn.Module) -> dict[str, torch.Tensor]:
    """A full state dict (parameters + buffers) of ``policy`` with ``params`` swapped in."""
    state = {k: v.detach().clone().cpu() for k, v in policy.state_dict().items()}
    for k, v in params.items():
        state[k] = v.detach().clone().cpu()
    return state


def make_buffer(
    rollout: Rollout, policy: Any, gamma: float, gae_lambda: float, device: str | torch.device = "cpu"
) -> RolloutBuffer:
    """An SB3 ``RolloutBuffer`` holding ``rollout``, with SB3's GAE returns and advantages."""
    n_steps, n_envs = rollout.rewards.shape
    buf = RolloutBuffer(
        n_steps,
        policy.observation_space,
        policy.action_space,
        device=device,
        gae_lambda=gae_lambda,
        gamma=gamma,
        n_envs=n_envs,
    )
    buf.observations[:] = rollout.observations.reshape(buf.observations.shape)
    buf.actions[:] = rollout.actions.reshape(buf.actions.shape)
    buf.rewards[:] = rollout.rewards
    buf.episode_starts[:] = rollout.episode_starts
    buf.values[:] = rollout.values
    buf.log_probs[:] = rollout.log_probs
    buf.pos, buf.full = n_steps, True
    # copies: arrays that came back from a Ray actor are read-only views of its object store
    buf.compute_returns_and_advantage(torch.tensor(np.array(rollout.last_values)), np.array(rollout.last_dones))
    return buf


class Batch:
    """Flat torch tensors of one task's episodes (what the functional losses consume)."""

    def __init__(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        old_log_prob: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
    ) -> None:
        self.obs, self.actions, self.old_log_prob = obs, actions, old_log_prob
        self.advantages, self.returns = advantages, returns

    @classmethod
    def from_buffer(cls, buf: RolloutBuffer, device: str | torch.device = "cpu") -> Batch:
        def flat(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a.reshape(a.shape[0] * a.shape[1], *a.shape[2:]), device=device)

        return cls(
            flat(buf.observations).float(),
            flat(buf.actions).float(),
            flat(buf.log_probs).float(),
            flat(buf.advantages).float(),
            flat(buf.returns).float(),
        )

    @classmethod
    def from_rollout(
        cls, rollout: Rollout, policy: nn.Module, gamma: float, gae_lambda: float, device: str | torch.device = "cpu"
    ) -> Batch:
        return cls.from_buffer(make_buffer(rollout, policy, gamma, gae_lambda), device)


def normalized(adv: torch.Tensor) -> torch.Tensor:
    return (adv - adv.mean()) / (adv.std() + 1e-8) if adv.numel() > 1 else adv


def policy_gradient_loss(policy: nn.Module, params: Params, batch: Batch) -> torch.Tensor:
    """Vanilla PG surrogate ``-mean(log pi(a|s) * A)`` (the inner-loop objective)."""
    _, log_prob, _ = evaluate_with(policy, params, batch.obs, batch.actions)
    return -(log_prob * normalized(batch.advantages)).mean()


def inner_step(
    policy: nn.Module,
    params: Params,
    batch: Batch,
    inner_lr: float | Mapping[str, torch.Tensor],
    first_order: bool = False,
    create_graph: bool = True,
) -> Params:
    """One inner SGD step on ``batch``; returns new parameters (the old ones are untouched).

    ``inner_lr``: one step size for every parameter, or a tensor per parameter name of that
    parameter's shape (Meta-SGD's per-element step sizes; the step is then differentiable
    w.r.t. them as well). ``create_graph=True`` keeps the step differentiable w.r.t.
    ``params`` (second order); ``first_order=True`` detaches the inner gradient (FOMAML).
    Parameters that do not affect the loss (the value head) keep their value.
    """
    loss = policy_gradient_loss(policy, params, batch)
    names = [k for k, v in params.items() if v.requires_grad]
    grads = torch.autograd.grad(
        loss, [params[k] for k in names], create_graph=create_graph and not first_order, allow_unused=True
    )
    new = dict(params)
    for k, g in zip(names, grads):
        if g is None:
            continue
        if first_order or not create_graph:
            g = g.detach()
        lr = inner_lr[k] if isinstance(inner_lr, Mapping) else inner_lr
        new[k] = params[k] - lr * g
    return new


def ppo_surrogate(
    policy: nn.Module,
    params: Params,
    batch: Batch,
    clip_range: float,
    vf_coef: float,
    ent_coef: float,
    value_params: Params | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped objective (SB3's conventions: normalised advantages, min of the clipped
    and unclipped ratio terms, MSE value loss, entropy bonus), under ``params``."""
    values, log_prob, entropy = evaluate_with(policy, params, batch.obs, batch.actions)
    if value_params is not None:
        values, _, _ = evaluate_with(policy, value_params, batch.obs, batch.actions)
    adv = normalized(batch.advantages)
    ratio = torch.exp(log_prob - batch.old_log_prob)
    policy_loss = -torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)).mean()
    value_loss = torch.nn.functional.mse_loss(batch.returns, values)
    entropy_loss = -entropy.mean()
    loss = policy_loss + vf_coef * value_loss + ent_coef * entropy_loss
    stats = {
        "policy_loss": float(policy_loss.detach()),
        "value_loss": float(value_loss.detach()),
        "entropy": float(entropy.detach().mean()),
        "clip_fraction": float(((ratio.detach() - 1).abs() > clip_range).float().mean()),
    }
    return loss, stats
