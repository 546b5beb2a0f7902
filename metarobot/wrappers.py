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


class Trials(gym.Wrapper):  # type: ignore[type-arg]
    """RL²'s env: a *trial* of ``episodes`` episodes of one task, run as one long episode, so
    that a recurrent policy's memory carries from each episode of a robot to the next. Every
    trial draws a new task of ``split`` (or keeps ``task``, where given).

    The observation is the family's, then the previous action (as applied, clipped to the
    action space), the previous reward (clipped to +-``reward_clip``) and a flag that is 1 on
    an episode's first step (both zero on a trial's first). An episode that ends inside the
    trial resets the robot and goes on; the trial ends with its last episode's terminated or
    truncated. ``episode_seeds`` (consumed one per episode) fixes each episode's reset seed;
    ``trial_log`` keeps each finished trial's per-episode (success, return); ``last_action``
    and ``last_reward`` are what the latest observation shows of the step before it. A reset
    with ``options={"last_action": ..., "last_reward": ...}`` starts the trial's first
    observation from those instead of zeros (a trial that continues an earlier one's memory)."""

    def __init__(
        self,
        family: str,
        episodes: int,
        split: str = "train",
        seed: int = 0,
        pool: int = 1000,
        task: Any = None,
        reward_clip: float = 10.0,
        render_mode: str | None = None,
    ) -> None:
        from gymnasium import spaces

        from metarobot.sampling import as_box

        fam = get_family(family)
        self._fam = fam
        # the pool of tasks is drawn at the first reset (the same draw): a learner loaded to adapt
        # builds its training envs and never resets them, and drawing 64 pools took half a minute
        self._pool: tuple[str, int, int] | None = None if task is not None else (split, seed, pool)
        self._tasks = [task] if task is not None else fam.sample_tasks(1, split, np.random.default_rng(seed))
        self.rng = np.random.default_rng(seed + 1)
        super().__init__(fam.make_env(self._tasks[0], render_mode=render_mode))
        self.episodes = int(episodes)
        self.reward_clip = float(reward_clip)
        obs_space, act_space = as_box(self.env.observation_space), as_box(self.env.action_space)
        self._low, self._high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)
        n = act_space.shape[0]
        self.observation_space = spaces.Box(
            np.concatenate([obs_space.low, self._low, [-self.reward_clip, 0.0]]).astype(np.float32),
            np.concatenate([obs_space.high, self._high, [self.reward_clip, 1.0]]).astype(np.float32),
            dtype=np.float32,
        )
        self._n_act = n
        self.episode_seeds: list[int] = []
        self.trial_log: list[list[tuple[bool, float]]] = []
        #: called when an episode ends, before the robot is reset (rendering its last frame)
        self.on_episode_end: Any = None
        self._done_episodes: list[tuple[bool, float]] = []
        self._return = 0.0
        self.last_action = np.zeros(n, dtype=np.float32)
        self.last_reward = 0.0

    def set_task(self, task: Any) -> None:
        self._tasks, self._pool = [task], None
        env: Any = self.env
        env.set_task(task)

    def augment(self, obs: np.ndarray, action: np.ndarray, reward: float, first: bool) -> np.ndarray:
        self.last_action = np.asarray(action, dtype=np.float32)
        self.last_reward = float(np.clip(reward, -self.reward_clip, self.reward_clip))
        return np.concatenate([obs, self.last_action, [self.last_reward, 1.0 if first else 0.0]]).astype(np.float32)

    def _reset_robot(self) -> Any:
        seed = self.episode_seeds.pop(0) if self.episode_seeds else None
        return self.env.reset(seed=seed)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        if self._pool is not None:
            split, pool_seed, size = self._pool
            self._tasks, self._pool = self._fam.sample_tasks(size, split, np.random.default_rng(pool_seed)), None
        if len(self._tasks) > 1:
            env: Any = self.env
            env.set_task(self._tasks[int(self.rng.integers(len(self._tasks)))])
        obs, info = self._reset_robot() if self.episode_seeds else self.env.reset(seed=seed)
        self._done_episodes, self._return = [], 0.0
        carried = options or {}
        action = carried.get("last_action", np.zeros(self._n_act, dtype=np.float32))
        return self.augment(obs, action, float(carried.get("last_reward", 0.0)), True), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        applied = np.clip(np.asarray(action, dtype=np.float32), self._low, self._high)
        obs, reward, term, trunc, info = self.env.step(applied)
        self._return += float(reward)
        if not (term or trunc):
            return self.augment(obs, applied, float(reward), False), float(reward), False, False, info
        self._done_episodes.append((bool(info.get("is_success", False)), self._return))
        self._return = 0.0
        if self.on_episode_end is not None:
            self.on_episode_end()
        if len(self._done_episodes) >= self.episodes:  # the trial ends with its last episode
            self.trial_log.append(self._done_episodes)
            return self.augment(obs, applied, float(reward), False), float(reward), bool(term), bool(trunc), info
        obs, _ = self._reset_robot()  # the next episode of the same robot: memory carries on
        return self.augment(obs, applied, float(reward), True), float(reward), False, False, info
