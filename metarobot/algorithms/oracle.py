"""The privileged ``oracle``: the multitask baseline whose policy also sees the true hidden
task parameters (``family.hidden_params(task)``) -- the upper reference no adaptation method
can beat, trained with the same env-step budget. It needs no adaptation; at test time its
inner update leaves it as it is.
"""

from __future__ import annotations

import numpy as np
import torch

from metarobot.algorithms.context import CONTEXT_KEY, ContextLearner
from metarobot.algorithms.multitask import Multitask
from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.sampling import Rollout

State = dict[str, torch.Tensor]


class Oracle(ContextLearner, Multitask):
    """Domain-randomised PPO with the hidden task parameters appended to the observation."""

    name = "oracle"
    updates_parameters = False

    @property
    def context_dim(self) -> int:
        dim = int(getattr(self.family, "hidden_dim", 0))
        if dim <= 0:
            raise MetarobotError(f"family {self.family.name!r} declares no hidden parameters: it has no oracle")
        return dim

    def job_context(self, task: Task, state: State) -> np.ndarray:
        return np.asarray(self.family.hidden_params(task), dtype=np.float32)

    def inner_update(self, state: State, rollout: Rollout, seed: int = 0) -> State:
        return state  # it already knows the task

    def deployed_state(self, task: Task, state: State) -> State:
        return {**state, CONTEXT_KEY: torch.as_tensor(self.job_context(task, state))}
