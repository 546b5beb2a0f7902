"""The env layer shared by every family: a Gymnasium env that owns one ``BulletSim`` and can
switch to another task in place (``set_task``)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from metarobot.envs.sim import BulletSim

from metarobot.errors import MetarobotError
from metarobot.family import Task


class MetaRobotEnv(gym.Env):  # type: ignore[type-arg]
    """Base of every family's env. Subclasses build the scene for a task and step it."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}
    task_type: ClassVar[type[Task]]
    #: control steps per episode (the env truncates itself; registration uses the same number)
    max_episode_steps: ClassVar[int]
    #: default render size (pixels)
    render_width: int = 320
    render_height: int = 240

    def __init__(self, task: Task, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise MetarobotError(f"unknown render_mode {render_mode!r}; choose from {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.sim = BulletSim(**self.sim_settings())
        self._task: Task | None = None
        self._steps = 0
        self.set_task(task)

    def sim_settings(self) -> dict[str, Any]:
        return {}

    @property
    def task(self) -> Task:
        assert self._task is not None
        return self._task

    def set_task(self, task: Task) -> None:
        """Switch to ``task`` (rebuilds the robot only when its body changes)."""
        if not isinstance(task, self.task_type):
            raise MetarobotError(f"{type(self).__name__} takes a {self.task_type.__name__}, got {type(task).__name__}")
        previous, self._task = self._task, task
        self._apply_task(task, previous)

    def _apply_task(self, task: Task, previous: Task | None) -> None:
        raise NotImplementedError

    def camera(self) -> dict[str, Any]:
        """Camera target (m), distance (m), yaw and pitch (deg) that frame the whole scene."""
        return {"target": (0.0, 0.0, 0.3), "distance": 2.0, "yaw": 45.0, "pitch": -25.0}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self.render_mode != "rgb_array":
            return None
        return self.render_frame(self.render_width, self.render_height)

    def render_frame(self, width: int, height: int) -> np.ndarray:
        return self.sim.render(width, height, **self.camera())

    def close(self) -> None:
        self.sim.close()
        super().close()
