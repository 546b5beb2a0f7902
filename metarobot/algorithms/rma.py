"""``rma``: teacher-student task inference (Rapid Motor Adaptation's two stages).

Stage 1 is the privileged ``oracle`` (``--algo oracle``): a policy over ``[obs; hidden task
parameters]``. Stage 2, this algorithm, keeps that policy as it is and learns to *estimate* the
hidden parameters from transitions: the same permutation-invariant encoder as ``proto`` (mean of
per-transition embeddings) and a linear head onto the hidden parameters, fitted by regression on
the episodes the policy itself produces with its own estimates (so it learns on the data it will
see when deployed). Adapting: run episodes (the first with an all-zero estimate), estimate the
parameters from every transition so far, run the oracle policy with the estimate. No gradient at
test time.

Without ``--init-from`` one run does both stages: its first ``teacher_fraction`` of the
iterations train the teacher exactly as ``--algo oracle`` does (true hidden parameters in the
observation, PPO on the policy), while the estimator is already fitted on the teacher's
episodes; the rest keep the policy fixed and fit the estimator on the student's own episodes.
``--init-from runs/x-oracle/meta_policy.pt`` starts from a trained oracle and runs stage 2 only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarobot.algorithms.multitask import Multitask
from metarobot.algorithms.proto import COUNT, SUM, Proto, transitions
from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.meta import read_checkpoint
from metarobot.sampling import Rollout

State = dict[str, torch.Tensor]


class RMA(Proto):
    """The oracle's policy, run on hidden parameters estimated from transitions."""

    name = "rma"
    # the teacher also learns to act on an all-zero context (what it is run on until the first
    # estimate): on navigate-v1, a teacher trained without it reached 0% on its first episodes,
    # whose transitions then told the estimator little (rma 0% -> 50% after 5 episodes, 200k
    # env steps from a 100% oracle)
    defaults = {"inner_steps": 1, "context_aux_steps": 50, "context_dropout": 0.2}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.aux_head is None:
            raise MetarobotError(f"family {self.family.name!r} declares no hidden parameters to estimate")
        cfg = self.config
        #: iterations of stage 1 (the teacher); 0 when the teacher comes from --init-from
        self.teacher_iterations = 0 if cfg.init_from else int(round(cfg.teacher_fraction * cfg.iterations))
        if cfg.init_from and not self.restoring:
            self._warm_start_estimator(Path(cfg.init_from))
        self._freeze(not self.in_teacher_stage)

    def _warm_start_estimator(self, path: Path) -> None:
        """Take ``path``'s estimator too where it holds one of this shape (an ``rma`` or
        ``rma-online`` run): stage 2 then continues that fit instead of starting over."""
        extra = read_checkpoint(path).get("algo_state") or {}
        own = {"encoder": self.encoder.state_dict(), "aux_head": self.aux_head.state_dict()}  # type: ignore[union-attr]
        for name, mine in own.items():
            theirs = extra.get(name)
            if not isinstance(theirs, dict) or {k: tuple(v.shape) for k, v in theirs.items()} != {
                k: tuple(v.shape) for k, v in mine.items()
            }:
                return  # an oracle, or an estimator of another shape: fit a fresh one
        self.encoder.load_state_dict(extra["encoder"])
        self.aux_head.load_state_dict(extra["aux_head"])  # type: ignore[union-attr]

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return Multitask._make_optimizer(self)  # type: ignore[arg-type]  # stage 1 is Multitask's PPO

    @property
    def in_teacher_stage(self) -> bool:
        return self.iteration < self.teacher_iterations

    def _freeze(self, frozen: bool) -> None:
        for p in self.policy.parameters():  # stage 2 keeps the teacher's policy as it is
            p.requires_grad_(not frozen)

    @property
    def context_dim(self) -> int:
        return int(getattr(self.family, "hidden_dim", 0))

    def context_of(self, state: State) -> torch.Tensor:
        count = float(state[COUNT]) if COUNT in state else 0.0
        if count <= 0 or self.aux_head is None:
            return torch.zeros(self.context_dim)
        with torch.no_grad():
            return self.aux_head(state[SUM] / count)

    def job_context(self, task: Task, state: State) -> np.ndarray:
        if self.in_teacher_stage:  # the teacher is shown the truth
            return np.asarray(self.family.hidden_params(task), dtype=np.float32)
        return super().job_context(task, state)

    @property
    def training_context_dropout(self) -> float:
        return self.config.context_dropout if self.in_teacher_stage else 0.0

    def inner_update(self, state: State, rollout: Rollout, seed: int = 0) -> State:
        if self.in_teacher_stage:
            return state
        return super().inner_update(state, rollout, seed)

    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        teacher = self.in_teacher_stage
        self._freeze(not teacher)
        stats: dict[str, float] = {}
        if teacher:  # stage 1: the oracle's own update (domain-randomised PPO on [obs; truth])
            stats = Multitask.outer_update(self, phases, adapted, meta)  # type: ignore[arg-type]
        trans = [[transitions(ph[i], self.obs_dim) for ph in phases] for i in range(len(phases[0]))]
        hidden = [torch.as_tensor(self.family.hidden_params(t), dtype=torch.float32) for t in self.current_tasks]
        stats["aux_loss"] = self._fit_hidden(trans, hidden)
        self.encoder.update_statistics(torch.cat([t for task_trans in trans for t in task_trans]))
        stats["teacher"] = float(teacher)
        return stats
