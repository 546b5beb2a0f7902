"""``rma``: teacher-student task inference (Rapid Motor Adaptation's two stages).

Stage 1 is the privileged ``oracle`` (``--algo oracle``): a policy over ``[obs; hidden task
parameters]``. Stage 2, this algorithm, keeps that policy as it is and learns to *estimate* the
hidden parameters from transitions: the same permutation-invariant encoder as ``proto`` (mean of
per-transition embeddings) and a linear head onto the hidden parameters, fitted by regression on
the episodes the policy itself produces with its own estimates (so it learns on the data it will
see when deployed). Adapting: run episodes (the first with an all-zero estimate), estimate the
parameters from every transition so far, run the oracle policy with the estimate. No gradient at
test time. Start it from an oracle checkpoint: ``--algo rma --init-from runs/x-oracle/meta_policy.pt``.
"""

from __future__ import annotations

from typing import Any

import torch

from metarobot.algorithms.proto import COUNT, SUM, Proto, transitions
from metarobot.errors import MetarobotError
from metarobot.sampling import Rollout

State = dict[str, torch.Tensor]


class RMA(Proto):
    """The oracle's policy, run on hidden parameters estimated from transitions."""

    name = "rma"
    defaults = {"inner_steps": 1, "context_aux_steps": 50}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.aux_head is None:
            raise MetarobotError(f"family {self.family.name!r} declares no hidden parameters to estimate")
        if not self.config.init_from and not self.restoring:
            raise MetarobotError("rma needs --init-from ORACLE_CHECKPOINT (train the teacher with --algo oracle)")
        for p in self.policy.parameters():  # the teacher's policy is kept as it is
            p.requires_grad_(False)

    @property
    def context_dim(self) -> int:
        return int(getattr(self.family, "hidden_dim", 0))

    def context_of(self, state: State) -> torch.Tensor:
        count = float(state[COUNT]) if COUNT in state else 0.0
        if count <= 0 or self.aux_head is None:
            return torch.zeros(self.context_dim)
        with torch.no_grad():
            return self.aux_head(state[SUM] / count)

    def outer_update(self, phases: list[list[Rollout]], adapted: list[State], meta: State) -> dict[str, float]:
        trans = [[transitions(ph[i], self.obs_dim) for ph in phases] for i in range(len(phases[0]))]
        hidden = [torch.as_tensor(self.family.hidden_params(t), dtype=torch.float32) for t in self.current_tasks]
        loss = self._fit_hidden(trans, hidden)
        self.encoder.update_statistics(torch.cat([t for task_trans in trans for t in task_trans]))
        return {"aux_loss": loss}
