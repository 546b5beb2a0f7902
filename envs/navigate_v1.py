"""The ``navigate-v1`` family: ``navigate`` with the differences between real wheeled robots of one
kind that a memoryless closed-loop policy can neither absorb nor read off one observation.

Everything of ``navigate`` (``metarobot/Navigate-v0``) holds -- procedural differential-drive
robots and maps, 20 Hz wheel-speed commands, 100-step episodes, the same 24-float observation,
reward and success -- except:

* **each motor's wiring on its own**: left and right are each reversed with probability 0.5.
  ``navigate`` reversed both together (the robot drove mirrored); with one reversed, "forward"
  spins the robot on the spot and "turn" drives it straight, and a policy that steers one wiring
  to the goal steers another away from it. The chassis velocity shows where the robot went, not
  which command sent it there, so one observation does not tell the wirings apart;
* **wheel-radius asymmetry**: the right wheel's radius is ``right_wheel_scale`` times the
  left's (a worn or differently inflated tyre). It is simulated by scaling that wheel's speed,
  which for a wheel that rolls without slipping gives the same ground speed; the robot curves
  when commanded straight;
* **slip**: the floor's friction reaches lower (0.3-1.0, ``navigate``: 0.6-1.0), so wheels
  spin and drift under hard commands.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from metarobot.envs.navigate import NavigateEnv, NavigateFamily, NavigateTask

from metarobot.errors import MetarobotError
from metarobot.family import FloatParam, Param, Range, Task, replace_param, revise, round_params


@dataclasses.dataclass(frozen=True)
class NavigateV1Task(NavigateTask):
    """A ``navigate`` robot and map plus the right wheel's radius as a multiple of the left's.
    Any pair of motor signs is allowed."""

    family: ClassVar[str] = "navigate-v1"
    #: ``navigate``'s spec with each motor's wiring on its own, a more slippery floor, and the
    #: right wheel's scale
    params: ClassVar[tuple[Param, ...]] = revise(
        NavigateTask.params,
        replace_param(NavigateTask.params, "left_sign", sampling="for each motor on its own"),
        replace_param(NavigateTask.params, "right_sign", sampling="for each motor on its own"),
        replace_param(NavigateTask.params, "floor_friction", train=Range(0.3, 1.0), ood=(Range(0.15, 0.25),)),
        FloatParam(
            name="right_wheel_scale", doc="the right wheel's radius as a multiple of the left's", bounds=(0.3, 3.0),
            train=Range(0.85, 1.15), ood=(Range(0.65, 0.8), Range(1.2, 1.35)),
        ),
    )  # fmt: skip

    right_wheel_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.urdf_path is not None:
            raise MetarobotError("navigate-v1 tasks are procedural robots (no urdf_path); use navigate for URDFs")


class NavigateV1Family(NavigateFamily):
    """``navigate``'s sampler with each motor's direction drawn on its own and a right wheel
    scale; ``ood`` adds more unequal wheels and a more slippery floor to ``navigate``'s shifts."""

    name = "navigate-v1"
    env_id = "metarobot/Navigate-v1"
    task_type = NavigateV1Task
    summary = "navigate robots whose each motor's wiring, wheel radii and floor slip differ per robot"
    #: ``navigate``'s 11 robot values (signs: each motor's own), then the right wheel's scale
    #: (the training range maps to [-1, 1])
    hidden = (*NavigateFamily.hidden, "right_wheel_scale")

    def _robot(self, rng: np.random.Generator) -> dict[str, Any]:
        robot = super()._robot(rng)
        robot["left_sign"] = self.param("left_sign").sample(rng)
        robot["right_sign"] = self.param("right_sign").sample(rng)
        return robot

    def _v1(self, base: NavigateTask, scale: float) -> NavigateV1Task:
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(NavigateTask)}
        return NavigateV1Task(**fields, right_wheel_scale=round_params(scale))

    def _sample_in_range(self, rng: np.random.Generator) -> NavigateV1Task:
        scale = self.param("right_wheel_scale").sample(rng)
        return self._v1(self._with_map(self._robot(rng), self._obstacle_counts(), rng), scale)

    def _sample_ood(self, rng: np.random.Generator) -> NavigateV1Task:
        scale_param = self.param("right_wheel_scale")
        shift = int(rng.integers(5))
        if shift < 3:  # navigate's shifts: robot size, one weak motor, a denser map
            return self._v1(super()._sample_ood(rng), scale_param.sample(rng))
        robot = self._robot(rng)
        if shift == 3:  # wheels more unequal than any in training
            scale = scale_param.sample_ood(rng)
        else:  # a more slippery floor
            robot["floor_friction"] = self.param("floor_friction").sample_ood(rng)
            scale = scale_param.sample(rng)
        return self._v1(self._with_map(robot, self._obstacle_counts(), rng), scale)

    def make_env(self, task: Task, render_mode: str | None = None) -> NavigateV1Env:
        return NavigateV1Env(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def task_from_urdf(self, path: Path, **options: Any) -> NavigateTask:
        raise MetarobotError("navigate-v1 takes procedural robots only; use --family navigate for a URDF robot")


class NavigateV1Env(NavigateEnv):
    """Gymnasium env of one navigate-v1 task (``metarobot/Navigate-v1``)."""

    task_type = NavigateV1Task

    def __init__(
        self, task: NavigateV1Task | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = NavigateV1Family().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        super().__init__(task, render_mode)

    def _apply_task(self, task: Task, previous: Task | None) -> None:
        assert isinstance(task, NavigateV1Task)
        super()._apply_task(task, previous)
        # a right wheel r times the left's radius covers r times the ground per radian
        self._wheel_gain[self._n_left :] *= task.right_wheel_scale
