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

import dataclasses

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
        under the estimate and under the truth. Each task's loss is the mean over its
        estimates; the tasks' losses are averaged.

        All tasks, phases and slots go through the encoder in one batch (``PrefixBatch``), and
        every slot's running sums are one cumulative sum over its padded transitions."""
        cfg = self.config
        head = self.aux_head
        assert head is not None
        rng = np.random.default_rng(job_seed(cfg.seed, 95, self.iteration))
        batch = PrefixBatch.of(phases, self.obs_dim)
        n_tasks, n_phases, n_slots, length, width = batch.rows.shape
        target = torch.stack(hidden)  # (tasks, hidden)
        action_space = as_box(self.policy.action_space)
        low = torch.as_tensor(action_space.low, dtype=torch.float32)
        high = torch.as_tensor(action_space.high, dtype=torch.float32)
        tasks = torch.arange(n_tasks)
        prefix = torch.arange(length + 1, dtype=torch.float32)
        mask = batch.mask[..., None]
        loss = torch.zeros(())
        for _ in range(cfg.context_aux_steps):
            self.encoder_optimizer.zero_grad()
            k = torch.as_tensor([int(rng.integers(n_phases)) for _ in range(n_tasks)])
            emb = self.encoder(batch.rows.reshape(-1, width)).reshape(n_tasks, n_phases, n_slots, length, -1) * mask
            earlier = (torch.arange(n_phases)[None] < k[:, None]).float()  # (tasks, phases)
            prior_sum = (emb.sum((2, 3)) * earlier[..., None]).sum(1)  # (tasks, dim)
            prior_count = (batch.mask.sum((2, 3)) * earlier).sum(1)  # (tasks,)
            mine = emb[tasks, k]  # (tasks, slots, length, dim)
            cum = torch.cat([torch.zeros_like(mine[:, :, :1]), torch.cumsum(mine, dim=2)], dim=2)
            counts = prior_count[:, None, None] + prefix  # (tasks, 1, length + 1)
            estimates = (prior_sum[:, None, None] + cum) / counts.clamp(min=1.0)[..., None]
            valid = (prefix <= batch.lengths[tasks, k][..., None]) & (counts > 0)  # (tasks, slots, length + 1)
            error = ((head(estimates) - target[:, None, None]) ** 2).mean(-1)
            loss = _task_mean(error, valid).sum() / n_tasks
            if cfg.context_action_coef > 0:
                # step s of a slot acts on the estimate after the slot's transitions before s
                before = batch.before[tasks, k]  # (tasks, slots, steps)
                acted = torch.gather(estimates, 2, before[..., None].expand(-1, -1, -1, estimates.shape[-1]))
                known = (torch.gather(counts.expand(-1, n_slots, -1), 2, before) > 0) & batch.stepped[tasks, k]
                obs = batch.obs[tasks, k]
                seen = torch.cat([obs, head(acted)], dim=-1)
                act = self._action_mean(seen.reshape(-1, seen.shape[-1]), low, high)
                with torch.no_grad():
                    truth = target[:, None, None].expand(-1, n_slots, obs.shape[2], -1)
                    act_truth = self._action_mean(torch.cat([obs, truth], dim=-1).reshape(len(act), -1), low, high)
                gap = ((act - act_truth) ** 2).mean(-1).reshape(known.shape)
                loss = loss + cfg.context_action_coef * _task_mean(gap, known).sum() / n_tasks
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


def _task_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per task (first axis), the mean of ``values`` where ``valid``; 0 for a task with none."""
    w = valid.to(values.dtype)
    dims = tuple(range(1, values.dim()))
    return (values * w).sum(dims) / w.sum(dims).clamp(min=1.0)


@dataclasses.dataclass
class PrefixBatch:
    """Every task's, phase's and slot's transitions, zero-padded to one tensor, for the prefix
    estimates of ``OnlineRMA._fit_online``."""

    #: (tasks, phases, slots, transitions, row) rows ``(o, a, r, o' - o)`` in the order seen
    rows: torch.Tensor
    #: (tasks, phases, slots, transitions): 1 where a row is a transition, 0 for padding
    mask: torch.Tensor
    #: (tasks, phases, slots): transitions per slot
    lengths: torch.Tensor
    #: (tasks, phases, slots, steps, obs): each step's observation
    obs: torch.Tensor
    #: (tasks, phases, slots, steps): the slot's transitions before each step
    before: torch.Tensor
    #: (tasks, phases, slots, steps): 1 where a step was taken, 0 for padding
    stepped: torch.Tensor

    @classmethod
    def of(cls, phases: list[list[Rollout]], obs_dim: int) -> PrefixBatch:
        n_tasks, n_phases = len(phases[0]), len(phases)
        cols = [[column_transitions(phases[k][i], obs_dim) for k in range(n_phases)] for i in range(n_tasks)]
        n_slots = max(ph[i].observations.shape[1] for ph in phases for i in range(n_tasks))
        steps = max(ph[i].observations.shape[0] for ph in phases for i in range(n_tasks))
        length = max([len(c) for task in cols for phase in task for c in phase] + [1])
        width = next((c.shape[1] for task in cols for phase in task for c in phase), 1)
        rows = torch.zeros((n_tasks, n_phases, n_slots, length, width))
        mask = torch.zeros((n_tasks, n_phases, n_slots, length))
        lengths = torch.zeros((n_tasks, n_phases, n_slots), dtype=torch.long)
        obs = torch.zeros((n_tasks, n_phases, n_slots, steps, obs_dim))
        before = torch.zeros((n_tasks, n_phases, n_slots, steps), dtype=torch.long)
        stepped = torch.zeros((n_tasks, n_phases, n_slots, steps), dtype=torch.bool)
        for i in range(n_tasks):
            for k in range(n_phases):
                rollout = phases[k][i]
                s, j = rollout.observations.shape[:2]
                obs[i, k, :j, :s] = torch.as_tensor(rollout.observations[:, :, :obs_dim]).transpose(0, 1)
                went_on = rollout.episode_starts[1:] == 0
                counted = np.concatenate([np.zeros((1, j), dtype=np.int64), np.cumsum(went_on, axis=0)])
                before[i, k, :j, :s] = torch.as_tensor(counted.T)
                stepped[i, k, :j, :s] = True
                for slot, col in enumerate(cols[i][k]):
                    rows[i, k, slot, : len(col)] = col
                    mask[i, k, slot, : len(col)] = 1.0
                    lengths[i, k, slot] = len(col)
        return cls(rows, mask, lengths, obs, before, stepped)
