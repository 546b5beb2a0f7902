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
  spin and drift under hard commands;
* **no obstacles**: the goal is 0.7-1.2 m away on an open floor. With ``navigate``'s 0-3
  obstacles the privileged oracle (the hidden parameters shown) stalled at about 50% success:
  1.1M env steps of ``--algo oracle`` reached 89% on maps without obstacles and 25-31% on maps
  with 1-3 (60 train tasks), so the maps, not the robot differences this family is about, set
  its ceiling. ``ood`` tasks shift the robot (size, one weak motor), the wheel asymmetry or the
  floor, never the map.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from metarobot.envs.navigate import NavigateEnv, NavigateFamily, NavigateSpace, NavigateTask

from metarobot.errors import MetarobotError
from metarobot.family import Range, Task, round_params


@dataclasses.dataclass(frozen=True)
class NavigateV1Task(NavigateTask):
    """A ``navigate`` robot and map plus the right wheel's radius as a multiple of the left's.
    Any pair of motor signs is allowed."""

    family: ClassVar[str] = "navigate-v1"

    right_wheel_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.urdf_path is not None:
            raise MetarobotError("navigate-v1 tasks are procedural robots (no urdf_path); use navigate for URDFs")
        v = self.right_wheel_scale
        if not (isinstance(v, int | float) and not isinstance(v, bool) and 0.3 <= v <= 3.0):
            raise MetarobotError(f"navigate-v1 task right_wheel_scale={v!r} is out of range [0.3, 3.0]")


@dataclasses.dataclass(frozen=True)
class NavigateV1Space(NavigateSpace):
    """Training ranges of ``navigate-v1`` (``navigate``'s, with independent wiring, wheel
    asymmetry and a more slippery floor)."""

    #: probability that each motor, on its own, is wired reversed
    reversed_probability: float = 0.5
    floor_friction: Range = Range(0.3, 1.0)
    right_wheel_scale: Range = Range(0.85, 1.15)
    ood_right_wheel_scale: tuple[Range, Range] = (Range(0.65, 0.8), Range(1.2, 1.35))
    ood_floor_friction: Range = Range(0.15, 0.25)
    #: an open floor (see the module docstring for why)
    obstacles: tuple[int, int] = (0, 0)


class NavigateV1Family(NavigateFamily):
    name = "navigate-v1"
    env_id = "metarobot/Navigate-v1"
    task_type = NavigateV1Task
    summary = "navigate robots whose each motor's wiring, wheel radii and floor slip differ per robot"
    #: ``navigate``'s 11 robot values, then the right wheel's scale
    hidden_dim = 12

    def __init__(self, space: NavigateV1Space | None = None) -> None:
        self.space: NavigateV1Space = space or NavigateV1Space()

    def _robot(self, rng: np.random.Generator) -> dict[str, Any]:
        robot = super()._robot(rng)
        robot["left_sign"] = self._sign(rng)
        robot["right_sign"] = self._sign(rng)
        return robot

    def _v1(self, base: NavigateTask, scale: float) -> NavigateV1Task:
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(NavigateTask)}
        return NavigateV1Task(**fields, right_wheel_scale=round_params(scale))

    def _sample_in_range(self, rng: np.random.Generator) -> NavigateV1Task:
        s = self.space
        scale = s.right_wheel_scale.sample(rng)
        return self._v1(self._with_map(self._robot(rng), s.obstacles, rng), scale)

    def _sample_ood(self, rng: np.random.Generator) -> NavigateV1Task:
        s = self.space
        robot = self._robot(rng)
        scale = s.right_wheel_scale.sample(rng)
        shift = int(rng.integers(4))
        if shift == 0:  # a robot smaller or bigger than any in training (navigate's shift)
            length, track, wheel = s.ood_big if rng.random() < 0.5 else s.ood_small
            robot.update(
                chassis_length=round_params(length.sample(rng)),
                track_width=round_params(track.sample(rng)),
                wheel_radius=round_params(wheel.sample(rng)),
            )
        elif shift == 1:  # one motor much weaker than the other (navigate's shift)
            side = "left_gain" if rng.random() < 0.5 else "right_gain"
            robot[side] = round_params(s.ood_weak_gain.sample(rng))
        elif shift == 2:  # wheels more unequal than any in training
            low, high = s.ood_right_wheel_scale
            scale = (high if rng.random() < 0.5 else low).sample(rng)
        else:  # a more slippery floor
            robot["floor_friction"] = round_params(s.ood_floor_friction.sample(rng))
        return self._v1(self._with_map(robot, s.obstacles, rng), scale)

    def make_env(self, task: Task, render_mode: str | None = None) -> NavigateV1Env:
        return NavigateV1Env(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def hidden_params(self, task: Task) -> np.ndarray:
        """``navigate``'s 11 robot values (signs: each motor's own), then the right wheel's
        scale (the training range maps to [-1, 1])."""
        assert isinstance(task, NavigateV1Task)
        scale = self.space.right_wheel_scale.normalise(task.right_wheel_scale)
        return np.concatenate([super().hidden_params(task), [scale]]).astype(np.float32)

    def ranges(self) -> dict[str, str]:
        s = self.space
        low, high = s.ood_right_wheel_scale
        out = super().ranges()
        out["motor_sign"] = f"each motor on its own: -1 (wired reversed) with probability {s.reversed_probability}"
        out["right_wheel_scale"] = f"{s.right_wheel_scale} x the left wheel's radius (ood: {low} or {high})"
        out["friction"] = f"wheel {s.wheel_friction}, floor {s.floor_friction} (ood floor: {s.ood_floor_friction})"
        out["obstacles"] = "none (an open floor)"
        return out

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
