"""The ``cartpole`` family: a PyBullet cart-pole whose pole length, pole mass, cart mass, force
scale and actuator direction are sampled per task (the classic MAML example, small and fast).

Control: 48 Hz (5 physics steps of 1/240 s). Action: one value in [-1, 1], the horizontal
force on the cart as a fraction of ``force_scale`` (N); ``actuator_sign = -1`` is a motor wired
reversed. Observation (4 floats): cart position (m), cart velocity (m/s), pole angle (rad,
0 = upright), pole angular velocity (rad/s). None of the task's parameters is observed.

Reward: +1 per step while the pole is up. The episode terminates when |angle| > 0.21 rad
(12 degrees) or |x| > 2.4 m, and is truncated after 200 steps (4.2 s), so the maximum return is
200. Success (``info["is_success"]``): the pole is still up at the end of the 200 steps.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet as p
from metarobot.envs.base import MetaRobotEnv
from metarobot.envs.sim import shared_urdf
from metarobot.envs.urdf_builder import cartpole_urdf

from metarobot.errors import MetarobotError
from metarobot.family import Range, Task, TaskFamily, round_params

CONTROL_SUBSTEPS = 5
EPISODE_STEPS = 200
ANGLE_LIMIT = 0.21  # rad
X_LIMIT = 2.4  # m
#: observation bounds: position (m), velocity (m/s), angle (rad), angular velocity (rad/s)
OBS_HIGH = np.array([10.0, 100.0, np.pi, 100.0], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class CartPoleTask(Task):
    """One cart-pole. Pole length in m (full length), masses in kg, force scale in N."""

    family: ClassVar[str] = "cartpole"

    pole_length: float
    pole_mass: float
    cart_mass: float
    force_scale: float
    actuator_sign: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        checks = (
            ("pole_length", 0.1, 5.0),
            ("pole_mass", 0.01, 5.0),
            ("cart_mass", 0.1, 20.0),
            ("force_scale", 1.0, 100.0),
        )
        for name, low, high in checks:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and low <= v <= high):
                raise MetarobotError(f"cartpole task {name}={v!r} is out of range [{low}, {high}]")
        if self.actuator_sign not in (1, -1):
            raise MetarobotError(f"cartpole task actuator_sign={self.actuator_sign!r} must be +1 or -1")

    def body_key(self) -> tuple[float, float, float]:
        return (self.pole_length, self.pole_mass, self.cart_mass)


@dataclasses.dataclass(frozen=True)
class CartPoleSpace:
    """Training ranges of the ``cartpole`` family (and the ``ood`` ranges outside them)."""

    pole_length: Range = Range(0.6, 1.4, "m")
    pole_mass: Range = Range(0.05, 0.4, "kg")
    cart_mass: Range = Range(0.6, 1.6, "kg")
    force_scale: Range = Range(8.0, 14.0, "N")
    reversed_probability: float = 0.5
    ood_pole_length_short: Range = Range(0.35, 0.5, "m")
    ood_pole_length_long: Range = Range(1.6, 2.2, "m")
    ood_pole_mass: Range = Range(0.5, 0.8, "kg")
    ood_cart_mass: Range = Range(1.9, 2.6, "kg")
    ood_force_scale_low: Range = Range(5.0, 7.0, "N")
    ood_force_scale_high: Range = Range(16.0, 20.0, "N")


class CartPoleFamily(TaskFamily):
    name = "cartpole"
    env_id = "metarobot/CartPole-v0"
    task_type = CartPoleTask
    summary = "procedural cart-poles (pole length/mass, cart mass, motor strength and direction)"
    episode_steps = EPISODE_STEPS
    control_hz = 48.0
    # episodes are 200 steps (reach: 60), so fewer per update and fewer iterations keep the
    # default run a few minutes long
    meta_defaults: ClassVar[dict[str, Any]] = {"iterations": 40, "meta_batch": 10, "episodes_per_update": 5}

    def __init__(self, space: CartPoleSpace | None = None) -> None:
        self.space = space or CartPoleSpace()

    def _sign(self, rng: np.random.Generator) -> int:
        return -1 if rng.random() < self.space.reversed_probability else 1

    def _sample_in_range(self, rng: np.random.Generator) -> CartPoleTask:
        s = self.space
        return CartPoleTask(
            pole_length=round_params(s.pole_length.sample(rng)),
            pole_mass=round_params(s.pole_mass.sample(rng)),
            cart_mass=round_params(s.cart_mass.sample(rng)),
            force_scale=round_params(s.force_scale.sample(rng)),
            actuator_sign=self._sign(rng),
        )

    def _sample_ood(self, rng: np.random.Generator) -> CartPoleTask:
        s = self.space
        base = self._sample_in_range(rng)
        shift = int(rng.integers(4))
        if shift == 0:
            r = s.ood_pole_length_long if rng.random() < 0.5 else s.ood_pole_length_short
            return dataclasses.replace(base, pole_length=round_params(r.sample(rng)))
        if shift == 1:
            return dataclasses.replace(base, pole_mass=round_params(s.ood_pole_mass.sample(rng)))
        if shift == 2:
            return dataclasses.replace(base, cart_mass=round_params(s.ood_cart_mass.sample(rng)))
        r = s.ood_force_scale_high if rng.random() < 0.5 else s.ood_force_scale_low
        return dataclasses.replace(base, force_scale=round_params(r.sample(rng)))

    def make_env(self, task: Task, render_mode: str | None = None) -> CartPoleEnv:
        return CartPoleEnv(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    hidden_dim = 5

    def hidden_params(self, task: Task) -> np.ndarray:
        """Pole length, pole mass, cart mass, force scale (each mapped from its training range
        to [-1, 1]) and the actuator sign (+1/-1)."""
        assert isinstance(task, CartPoleTask)
        s = self.space
        return np.array(
            [
                s.pole_length.normalise(task.pole_length),
                s.pole_mass.normalise(task.pole_mass),
                s.cart_mass.normalise(task.cart_mass),
                s.force_scale.normalise(task.force_scale),
                task.actuator_sign,
            ],
            dtype=np.float32,
        )

    def ranges(self) -> dict[str, str]:
        s = self.space
        return {
            "pole_length": f"{s.pole_length} (ood: {s.ood_pole_length_short} or {s.ood_pole_length_long})",
            "pole_mass": f"{s.pole_mass} (ood: {s.ood_pole_mass})",
            "cart_mass": f"{s.cart_mass} (ood: {s.ood_cart_mass})",
            "force_scale": f"{s.force_scale} (ood: {s.ood_force_scale_low} or {s.ood_force_scale_high})",
            "actuator_sign": f"-1 with probability {s.reversed_probability}, else +1",
            "success": "pole within 12 degrees and cart within 2.4 m for all 200 steps (4.2 s)",
        }


class CartPoleEnv(MetaRobotEnv):
    """Gymnasium env of one cart-pole task (``metarobot/CartPole-v0``)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 48}
    task_type = CartPoleTask
    max_episode_steps = EPISODE_STEPS

    def __init__(
        self, task: CartPoleTask | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = CartPoleFamily().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        self.observation_space = gym.spaces.Box(-OBS_HIGH, OBS_HIGH, dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._body_key: tuple[float, ...] | None = None
        super().__init__(task, render_mode)  # type: ignore[arg-type]

    def _apply_task(self, task: Task, previous: Task | None) -> None:
        assert isinstance(task, CartPoleTask)
        if task.body_key() != self._body_key:
            sim = self.sim
            sim.reset_world()
            sim.load_urdf_file(shared_urdf("ground.urdf"))
            self.robot = sim.load_urdf_text(cartpole_urdf(task.pole_length, task.pole_mass, task.cart_mass))
            # free joints: switch off PyBullet's default velocity motors
            p.setJointMotorControlArray(
                self.robot, [0, 1], p.VELOCITY_CONTROL, forces=[0.0, 0.0], physicsClientId=sim.client
            )
            self._body_key = task.body_key()
        self._force = task.actuator_sign * task.force_scale

    def _obs(self) -> np.ndarray:
        (x, xd, *_), (th, thd, *_) = p.getJointStates(self.robot, [0, 1], physicsClientId=self.sim.client)
        return np.array([x, xd, th, thd], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        q = self.np_random.uniform(-0.05, 0.05, size=4)
        c = self.sim.client
        p.resetJointState(self.robot, 0, q[0], q[1], physicsClientId=c)
        p.resetJointState(self.robot, 1, q[2], q[3], physicsClientId=c)
        self._steps = 0
        return self._obs(), {"is_success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        c = self.sim.client
        force = self._force * a
        for _ in range(CONTROL_SUBSTEPS):
            p.setJointMotorControl2(self.robot, 0, p.TORQUE_CONTROL, force=force, physicsClientId=c)
            p.stepSimulation(physicsClientId=c)
        self._steps += 1
        obs = self._obs()
        x, xd, th, thd = obs.tolist()
        if not (math.isfinite(x + xd + th + thd) and abs(xd) < OBS_HIGH[1] and abs(thd) < OBS_HIGH[3]):
            return np.zeros(4, np.float32), 0.0, True, False, {"physics_error": True, "is_success": False}
        fallen = abs(x) > X_LIMIT or abs(th) > ANGLE_LIMIT
        if fallen and (abs(x) >= OBS_HIGH[0] or abs(th) >= OBS_HIGH[2]):
            obs = np.clip(obs, -OBS_HIGH, OBS_HIGH)
        truncated = (not fallen) and self._steps >= EPISODE_STEPS
        return obs, 1.0, fallen, truncated, {"is_success": truncated}

    def camera(self) -> dict[str, Any]:
        length = self.task.pole_length  # type: ignore[attr-defined]
        # the pole fills about half the frame; the cart stays in view for |x| < ~1.5 m
        return {"target": (0.0, 0.0, 0.15 + 0.45 * length), "distance": 1.6 + 1.2 * length, "yaw": 0.0, "pitch": -8.0}
