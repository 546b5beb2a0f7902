"""Gymnasium wrappers around family envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from metarobot.registry import get_family


class ResampleTasks(gym.Wrapper):  # type: ignore[type-arg]
    """An env of ``family`` that switches to a new task of ``split`` at every reset (in place,
    with ``set_task``): what a plain, non-adaptive multi-task policy trains on. With
    ``privileged``, the env is the family's privileged one (the ``oracle``'s observation)."""

    def __init__(
        self, family: str, split: str = "train", seed: int = 0, pool: int = 1000, privileged: bool = False
    ) -> None:
        fam = get_family(family)
        self._tasks = fam.sample_tasks(pool, split, np.random.default_rng(seed))
        self._rng = np.random.default_rng(seed + 1)
        make = fam.make_privileged_env if privileged else fam.make_env
        super().__init__(make(self._tasks[0]))

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        # the outermost env's set_task: a privileged env updates its appended parameters too
        env: Any = self.env
        env.set_task(self._tasks[int(self._rng.integers(len(self._tasks)))])
        return self.env.reset(**kwargs)


class AppendContext(gym.ObservationWrapper):  # type: ignore[type-arg]
    """The env's observation with ``dim`` zero context floats appended: the spaces a
    context-conditioned policy is built for. ``dim=0`` leaves the env as it is."""

    def __init__(self, env: gym.Env, dim: int) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.dim = dim
        self.context = np.zeros(dim, dtype=np.float32)
        if dim > 0:
            from metarobot.sampling import widen

            self.observation_space = widen(env.observation_space, dim)

    def observation(self, observation: Any) -> Any:
        if self.dim == 0:
            return observation
        return np.concatenate([observation, self.context]).astype(observation.dtype)
