"""``proto``: task inference from a few transitions (the prototype idea; PEARL/RMA family).

A permutation-invariant encoder embeds every transition ``(o, a, r, o' - o)`` of a task's
episodes and averages the embeddings: the mean is the task's *prototype* ``z``. The policy
reads ``[o; z; 1]`` (``[o; 0; 0]`` before anything is known). Adapting is: run episodes, add
their transitions to the running mean, run with the new ``z`` -- no gradient step, so an update
cannot wreck the policy's parameters, and k updates cost only the episodes.

Meta-training: phase 0 runs with the empty context; phase k with the prototype of phases
< k. The outer update is PPO's clipped objective on every phase, with each phase's context
recomputed from the encoder, so the gradient reaches the encoder through what the policy
does with ``z`` (end to end, as in PEARL). Where the family declares its hidden parameters,
a linear head on ``z`` also regresses them (weight ``context_aux_coef``; training only, as
RMA's privileged teacher signal), which gives the encoder its features far sooner.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from metarobot import adaptation as ad
from metarobot.algorithms.context import CONTEXT_KEY, ContextLearner
from metarobot.family import Task
from metarobot.meta import job_seed
from metarobot.online import transition_rows
from metarobot.sampling import Rollout, as_box

State = dict[str, torch.Tensor]
SUM, COUNT = "context.sum", "context.count"


class TransitionEncoder(nn.Module):
    """Per-transition embedding; a task's context is the mean over its transitions.

    Its inputs are standardised with running statistics (kept as buffers, so checkpoints hold
    them): the informative parts of a transition -- the change of a velocity after an action --
    are orders of magnitude smaller than positions and goals, and an unscaled encoder barely
    saw them (seen on cartpole: the motor sign was predicted at a tenth of its size)."""

    in_mean: torch.Tensor
    in_var: torch.Tensor
    in_count: torch.Tensor

    def __init__(self, obs_dim: int, act_dim: int, context_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        n_in = 2 * obs_dim + act_dim + 1
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_var", torch.ones(n_in))
        self.register_buffer("in_count", torch.zeros(()))
        self.net = nn.Sequential(
            nn.Linear(2 * obs_dim + act_dim + 1, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, context_dim),
        )

    def forward(self, transitions: torch.Tensor) -> torch.Tensor:
        """``(N, 2*obs + act + 1)`` transitions -> ``(N, context_dim)`` embeddings."""
        scaled = (transitions - self.in_mean) / torch.sqrt(self.in_var + 1e-8)
        return self.net(scaled.clamp(-10.0, 10.0))  # type: ignore[no-any-return]

    @torch.no_grad()
    def update_statistics(self, transitions: torch.Tensor) -> None:
        """Merge a batch's mean and variance into the running ones (parallel Welford)."""
        if len(transitions) == 0:
            return
        x = transitions.to(self.in_mean.dtype)
        n_b = float(len(x))
        mean_b, var_b = x.mean(0), x.var(0, unbiased=False)
        n_a = float(self.in_count)
        total = n_a + n_b
        delta = mean_b - self.in_mean
        if n_a == 0:
            self.in_mean.copy_(mean_b)
            self.in_var.copy_(var_b)
        else:
            self.in_mean.add_(delta * n_b / total)
            self.in_var.copy_((self.in_var * n_a + var_b * n_b + delta**2 * n_a * n_b / total) / total)
        self.in_count.fill_(total)


def transitions(rollout: Rollout, obs_dim: int) -> torch.Tensor:
    """Every ``(o, a, r, o' - o)`` of a rollout whose next observation is in it (steps that
    end an episode are left out: their next observation is the reset's)."""
    obs = rollout.observations[..., :obs_dim]
    n_steps = obs.shape[0]
    if n_steps < 2:
        return torch.zeros((0, 2 * obs_dim + rollout.actions.shape[-1] + 1))
    keep = rollout.episode_starts[1:] == 0  # (T-1, n): step t continues into t + 1
    rows = transition_rows(obs[:-1][keep], rollout.actions[:-1][keep], rollout.rewards[:-1][keep], obs[1:][keep])
    return torch.as_tensor(rows)


def estimator_head(context_dim: int, out_dim: int, width: int = 0) -> nn.Module:
    """The head from a mean transition embedding to ``out_dim`` hidden parameters.

    ``width`` 0: linear. A linear head on a mean is the mean of one estimate per transition, so
    it can only average what transitions say one by one; evidence that only means something
    together ("squeezed at c and held", after "squeezed at c' and slipped") needs a nonlinear
    map of the mean (DeepSets' rho). ``width`` > 0: one tanh layer of that many units."""
    if width <= 0:
        return nn.Linear(context_dim, out_dim)
    return nn.Sequential(nn.Linear(context_dim, width), nn.Tanh(), nn.Linear(width, out_dim))


def head_from_state(state: dict[str, torch.Tensor]) -> nn.Module:
    """The ``estimator_head`` whose ``state_dict`` is ``state`` (a linear or a one-layer head)."""
    if "weight" in state:
        head: nn.Module = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
    else:
        width, context_dim = state["0.weight"].shape
        head = estimator_head(context_dim, state["2.weight"].shape[0], width)
    head.load_state_dict(state)
    return head


def head_out_dim(state: dict[str, torch.Tensor]) -> int:
    """How many values the head whose ``state_dict`` is ``state`` outputs."""
    return int((state["bias"] if "bias" in state else state["2.bias"]).shape[0])


class Proto(ContextLearner):
    """Prototype task inference: ``Proto(family="reach-v1").train()``; adapting infers ``z``."""

    name = "proto"
    defaults = {"inner_steps": 1}
    updates_parameters = False  # adapting moves the context only

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        act_dim = int(as_box(self.policy.action_space).shape[0])
        torch.manual_seed(job_seed(self.config.seed, 4_242))
        self.encoder = TransitionEncoder(self.obs_dim, act_dim, self.config.context_dim)
        hidden = int(getattr(self.family, "hidden_dim", 0))
        self.aux_head = (
            estimator_head(self.config.context_dim, hidden, self.config.context_head) if hidden > 0 else None
        )
        # the encoder has an optimiser (and gradient clipping) of its own: clipped together with
        # the policy's, whose value loss is large early on, its steps were too small to learn
        # (seen on cartpole: after 800k env steps the hidden-parameter head predicted the motor
        # sign right but at a tenth of its size)
        self.encoder_optimizer = torch.optim.Adam(self.encoder_parameters(), lr=self.config.outer_lr)

    def encoder_parameters(self) -> list[nn.Parameter]:
        params = list(self.encoder.parameters())
        if self.aux_head is not None:
            params += list(self.aux_head.parameters())
        return params

    @property
    def context_dim(self) -> int:
        return int(self.config.context_dim) + 1  # z and a flag: 1 once z comes from transitions

    @property
    def training_context_dropout(self) -> float:
        return 0.0  # the context is the inferred one: nothing to drop

    # -- adaptation: accumulate the prototype -----------------------------------------------
    def context_of(self, state: State) -> torch.Tensor:
        count = float(state[COUNT]) if COUNT in state else 0.0
        if count <= 0:
            return torch.zeros(self.context_dim)
        return torch.cat([state[SUM] / count, torch.ones(1)])

    def job_context(self, task: Task, state: State) -> np.ndarray:
        return self.context_of(state).numpy().astype(np.float32)

    def inner_update(self, state: State, rollout: Rollout, seed: int = 0) -> State:
        with torch.no_grad():
            emb = self.encoder(transitions(rollout, self.obs_dim))
        out = dict(state)
        out[SUM] = state.get(SUM, torch.zeros(self.config.context_dim)) + emb.sum(0)
        out[COUNT] = state.get(COUNT, torch.zeros(1)) + float(emb.shape[0])
        return out

    def deployed_state(self, task: Task, state: State) -> State:
        return {**state, CONTEXT_KEY: self.context_of(state)}

    # -- meta-training ----------------------------------------------------------------------
    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        cfg = self.config
        n_tasks = len(phases[0])
        batches = [[self._batch(ph[i]) for ph in phases] for i in range(n_tasks)]
        trans = [[transitions(ph[i], self.obs_dim) for ph in phases] for i in range(n_tasks)]
        hidden = None
        if self.aux_head is not None and cfg.context_aux_coef > 0:
            hidden = [torch.as_tensor(self.family.hidden_params(t), dtype=torch.float32) for t in self.current_tasks]
        totals: dict[str, float] = {}
        groups = max(1, min(cfg.outer_minibatches, n_tasks))
        order_rng = np.random.default_rng(job_seed(cfg.seed, 97, self.iteration))
        n_terms = n_tasks * cfg.outer_epochs
        for _ in range(cfg.outer_epochs):
            for group in np.array_split(order_rng.permutation(n_tasks), groups):
                self.optimizer.zero_grad()
                self.encoder_optimizer.zero_grad()
                params = ad.trainable_params(self.policy)
                for i in group:
                    loss, stats = self.task_loss(params, batches[i], trans[i], None if hidden is None else hidden[i])
                    (loss / len(group)).backward()
                    for key, v in stats.items():
                        totals[key] = totals.get(key, 0.0) + v / n_terms
                nn.utils.clip_grad_norm_(self.policy.parameters(), 0.5)
                nn.utils.clip_grad_norm_(self.encoder_parameters(), 5.0)
                self.optimizer.step()
                self.encoder_optimizer.step()
        if hidden is not None:
            totals["aux_loss"] = self._fit_hidden(trans, hidden)
        # after the update, so this iteration's contexts were computed with one scaling
        self.encoder.update_statistics(torch.cat([t for task_trans in trans for t in task_trans]))
        return totals

    def _fit_hidden(self, trans: list[list[torch.Tensor]], hidden: list[torch.Tensor]) -> float:
        """Extra supervised steps of the hidden-parameter head (cheap: no policy in them), each
        on the prototype of one phase's transitions per task, as at test time."""
        cfg = self.config
        rng = np.random.default_rng(job_seed(cfg.seed, 96, self.iteration))
        loss = torch.zeros(())
        for _ in range(cfg.context_aux_steps):
            self.encoder_optimizer.zero_grad()
            loss = torch.zeros(())
            for task_trans, target in zip(trans, hidden):
                phase = task_trans[int(rng.integers(len(task_trans)))]
                if len(phase) == 0:
                    continue
                z = self.encoder(phase).mean(0)
                loss = loss + nn.functional.mse_loss(self.aux_head(z), target) / len(trans)  # type: ignore[misc]
            (cfg.context_aux_coef * loss).backward()
            nn.utils.clip_grad_norm_(self.encoder_parameters(), 5.0)
            self.encoder_optimizer.step()
        return float(loss.detach())

    def task_loss(
        self,
        params: ad.Params,
        batches: list[ad.Batch],
        trans: list[torch.Tensor],
        hidden: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """One task's outer loss: PPO's clipped objective on each phase k under the context
        inferred (differentiably) from the transitions of phases < k, plus the auxiliary
        regression of the hidden parameters where given."""
        cfg = self.config
        loss = torch.zeros((), dtype=batches[0].obs.dtype)
        stats: dict[str, float] = {}
        for k, batch in enumerate(batches):
            if k == 0:
                context = torch.zeros(self.context_dim, dtype=batch.obs.dtype)
            else:
                z = self.encoder(torch.cat(trans[:k])).mean(0)
                context = torch.cat([z, torch.ones(1, dtype=z.dtype)])
                if hidden is not None and self.aux_head is not None:
                    aux = nn.functional.mse_loss(self.aux_head(z), hidden.to(z.dtype))
                    loss = loss + cfg.context_aux_coef * aux
                    stats["aux_loss"] = stats.get("aux_loss", 0.0) + float(aux.detach())
            obs = torch.cat([batch.obs[:, : self.obs_dim], context.expand(len(batch.obs), -1)], dim=1)
            conditioned = ad.Batch(obs, batch.actions, batch.old_log_prob, batch.advantages, batch.returns)
            term, phase_stats = ad.ppo_surrogate(
                self.policy, params, conditioned, cfg.clip_range, cfg.vf_coef, cfg.ent_coef
            )
            loss = loss + term
            for key, v in phase_stats.items():
                stats[key] = stats.get(key, 0.0) + v / len(batches)
        return loss, stats

    def extra_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "encoder": {k: v.detach().clone() for k, v in self.encoder.state_dict().items()},
            "encoder_optimizer": self.encoder_optimizer.state_dict(),
        }
        if self.aux_head is not None:
            out["aux_head"] = {k: v.detach().clone() for k, v in self.aux_head.state_dict().items()}
        return out

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "encoder" in state:
            self.encoder.load_state_dict(state["encoder"])
        if self.aux_head is not None and "aux_head" in state:
            self.aux_head.load_state_dict(state["aux_head"])
        if "encoder_optimizer" in state:
            self.encoder_optimizer.load_state_dict(state["encoder_optimizer"])
