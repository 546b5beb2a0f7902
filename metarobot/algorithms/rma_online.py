"""``rma-online``: rma whose estimate is updated after every step, within the episode.

``rma`` estimates a robot's hidden parameters from whole earlier episodes, so its first
episodes on a new robot run on no estimate at all, and it needs a batch of episodes before it
acts well. RMA's own adaptation module runs online instead, over the robot's recent history.
Measured on navigate-v1 (bench/RESULTS.md), an LSTM policy that identifies each motor's wiring
within its first steps beat rma's across-episode estimate on training-like robots (93.7% vs
84.3%). ``rma-online`` keeps rma's two stages and teacher, and runs its estimator online: the
context after ``m`` steps of an episode is the head on the running mean of the embeddings of
every transition so far (earlier adaptation episodes' and this one's), so each step's action
uses everything seen up to it (``metarobot.online``; the sampler and ``render`` run it).

Its stage 2 fits the estimator to what it will face: the regression targets are the hidden
parameters at *every prefix* of every episode (the estimate after 1, 2, ... transitions on top
of the earlier phases'), not only at whole-episode means. An exported SB3 policy folds in the
estimate from all of the adaptation episodes (a fixed context), as ``rma``'s does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from metarobot.algorithms.multitask import Multitask
from metarobot.algorithms.proto import COUNT, SUM, transitions
from metarobot.algorithms.rma import RMA
from metarobot.family import Task
from metarobot.meta import job_seed
from metarobot.online import OnlineEstimator, transition_rows
from metarobot.sampling import Job, Rollout, as_box

State = dict[str, torch.Tensor]


def column_transitions(rollout: Rollout, obs_dim: int) -> list[torch.Tensor]:
    """Each env slot's transitions ``(o, a, r, o' - o)`` in the order it saw them (the rows of
    ``proto.transitions``, kept apart per slot)."""
    obs = rollout.observations[..., :obs_dim]
    if obs.shape[0] < 2:
        return []
    keep = rollout.episode_starts[1:] == 0
    out = []
    for j in range(obs.shape[1]):
        k = keep[:, j]
        rows = transition_rows(obs[:-1, j][k], rollout.actions[:-1, j][k], rollout.rewards[:-1, j][k], obs[1:, j][k])
        out.append(torch.as_tensor(rows))
    return out


class OnlineRMA(RMA):
    """rma with an estimator that runs within the episode (see the module doc)."""

    name = "rma-online"
    # no context dropout: the teacher runs on an all-zero context only until the first step's
    # transition, so it need not learn to act on one (navigate-v1, train split: rma's teacher
    # trained with dropout 0.2 reached 73% on the truth, the oracle trained without it 96%)
    defaults = {**RMA.defaults, "context_dropout": 0.0}

    def make_job(self, task: Task, state: State, n_episodes: int, seed: int) -> Job:
        job = super().make_job(task, state, n_episodes, seed)
        if self.in_teacher_stage:
            return job  # the teacher is shown the truth
        assert self.aux_head is not None
        job.online = OnlineEstimator(
            encoder_state={k: v.detach().clone() for k, v in self.encoder.state_dict().items()},
            head_state={k: v.detach().clone() for k, v in self.aux_head.state_dict().items()},
            obs_dim=self.obs_dim,
            act_dim=int(as_box(self.policy.action_space).shape[0]),
            embed_dim=int(self.config.context_dim),
            prior_sum=state.get(SUM, torch.zeros(self.config.context_dim)).detach().clone(),
            prior_count=float(state[COUNT]) if COUNT in state else 0.0,
        )
        return job

    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        teacher = self.in_teacher_stage
        self._freeze(not teacher)
        stats: dict[str, float] = {}
        if teacher:
            stats = Multitask.outer_update(self, phases, adapted, meta)  # type: ignore[arg-type]
        hidden = [torch.as_tensor(self.family.hidden_params(t), dtype=torch.float32) for t in self.current_tasks]
        stats["aux_loss"] = self._fit_online(phases, hidden)
        every = [transitions(ph[i], self.obs_dim) for ph in phases for i in range(len(ph))]
        self.encoder.update_statistics(torch.cat(every))
        stats["teacher"] = float(teacher)
        return stats

    def _fit_online(self, phases: list[list[Rollout]], hidden: list[torch.Tensor]) -> float:
        """Supervised steps of encoder and head on every prefix estimate: for a random phase k
        of each task, the estimate each slot acts on at each step (the sum of all transitions
        of phases < k and of the slot's own transitions before the step, as ``adapt`` runs
        it). Two losses: the regression of the hidden parameters, and (``context_action_coef``)
        the squared difference between the teacher's action means on the visited observations
        under the estimate and under the truth."""
        cfg = self.config
        head = self.aux_head
        assert head is not None
        rng = np.random.default_rng(job_seed(cfg.seed, 95, self.iteration))
        n_tasks = len(phases[0])
        cols = [[column_transitions(ph[i], self.obs_dim) for ph in phases] for i in range(n_tasks)]
        action_space = as_box(self.policy.action_space)
        low = torch.as_tensor(action_space.low, dtype=torch.float32)
        high = torch.as_tensor(action_space.high, dtype=torch.float32)
        loss = torch.zeros(())
        for _ in range(cfg.context_aux_steps):
            self.encoder_optimizer.zero_grad()
            loss = torch.zeros(())
            for i, target in enumerate(hidden):
                k = int(rng.integers(len(phases)))
                prior = [c for phase in cols[i][:k] for c in phase if len(c)]
                prior_sum = torch.zeros(cfg.context_dim)
                prior_count = 0.0
                if prior:
                    emb = self.encoder(torch.cat(prior))
                    prior_sum, prior_count = emb.sum(0), float(len(emb))
                rollout = phases[k][i]
                went_on = rollout.episode_starts[1:] == 0
                estimates, acted, obs = [], [], []
                for j, col in enumerate(cols[i][k]):
                    cum = torch.cumsum(self.encoder(col), dim=0) if len(col) else torch.zeros((0, cfg.context_dim))
                    cum = torch.cat([torch.zeros((1, cfg.context_dim)), cum])
                    counts = prior_count + torch.arange(len(cum), dtype=cum.dtype)[:, None]
                    known = counts[:, 0] > 0
                    est = (prior_sum + cum[known]) / counts[known]
                    estimates.append(est)
                    # step t acts on the estimate after the transitions before it
                    before = np.concatenate([[0], np.cumsum(went_on[:, j])])
                    steps = np.flatnonzero(known.numpy()[before])
                    index = torch.as_tensor(before[steps] - int((~known).sum()))
                    acted.append(est[index])
                    obs.append(torch.as_tensor(rollout.observations[steps, j, : self.obs_dim]))
                if not estimates:
                    continue
                pred = head(torch.cat(estimates))
                loss = loss + nn.functional.mse_loss(pred, target.expand_as(pred)) / n_tasks
                if cfg.context_action_coef > 0 and any(len(a) for a in acted):
                    o = torch.cat(obs)
                    mine = self._action_mean(torch.cat([o, head(torch.cat(acted))], dim=1), low, high)
                    with torch.no_grad():
                        truth = self._action_mean(torch.cat([o, target.expand(len(o), -1)], dim=1), low, high)
                    loss = loss + cfg.context_action_coef * nn.functional.mse_loss(mine, truth) / n_tasks
            (cfg.context_aux_coef * loss).backward()
            nn.utils.clip_grad_norm_(self.encoder_parameters(), 5.0)
            self.encoder_optimizer.step()
        self.policy.zero_grad(set_to_none=True)  # the action loss reached the policy: not its update
        return float(loss.detach())

    def _action_mean(self, seen: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """The policy's action mean on ``[obs; context]`` rows, inside the action bounds (what
        the env is sent)."""
        mean = self.policy.get_distribution(seen).distribution.mean
        return torch.maximum(torch.minimum(mean, high), low)
