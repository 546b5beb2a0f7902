"""The privileged env of the ``oracle``: a family's env whose observation also carries the task's
hidden parameters (``TaskFamily.hidden_params``), the upper reference no adaptation can beat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from metarobot.family import Task

if TYPE_CHECKING:  # pragma: no cover
    from metarobot.family import TaskFamily

#: the appended hidden parameters are clipped to +/- this (training ranges map to [-1, 1];
#: ``ood`` values lie a little outside)
HIDDEN_BOUND = 5.0


class PrivilegedEnv(gym.Wrapper):  # type: ignore[type-arg]
    """``env``'s observation followed by ``family.hidden_params(env.task)`` (float32).

    ``set_task`` switches the wrapped env in place and updates the appended vector; ``task``,
    ``task_type``, ``render`` and ``close`` are the wrapped env's."""

    def __init__(self, family: TaskFamily, env: gym.Env) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.family = family
        base = env.observation_space
        assert isinstance(base, gym.spaces.Box) and len(base.shape) == 1
        k = family.hidden_dim
        low = np.concatenate([base.low, np.full(k, -HIDDEN_BOUND)]).astype(np.float32)
        high = np.concatenate([base.high, np.full(k, HIDDEN_BOUND)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._hidden = self._hidden_of(env.unwrapped.task)  # type: ignore[attr-defined]

    def _hidden_of(self, task: Task) -> np.ndarray:
        hidden = np.asarray(self.family.hidden_params(task), dtype=np.float32)
        if hidden.shape != (self.family.hidden_dim,):
            want = (self.family.hidden_dim,)
            raise ValueError(f"{self.family.name}.hidden_params gave shape {hidden.shape}, want {want}")
        return np.clip(hidden, -HIDDEN_BOUND, HIDDEN_BOUND)

    @property
    def task(self) -> Task:
        return self.env.unwrapped.task  # type: ignore[attr-defined,no-any-return]

    @property
    def task_type(self) -> type[Task]:
        return self.env.unwrapped.task_type  # type: ignore[attr-defined,no-any-return]

    @property
    def hidden(self) -> np.ndarray:
        """The appended hidden parameters of the current task (a copy)."""
        return self._hidden.copy()

    def set_task(self, task: Task) -> None:
        """Switch the wrapped env to ``task`` and append its hidden parameters from now on."""
        self.env.unwrapped.set_task(task)  # type: ignore[attr-defined]
        self._hidden = self._hidden_of(task)

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(obs, dtype=np.float32), self._hidden])

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._augment(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._augment(obs), float(reward), terminated, truncated, info
