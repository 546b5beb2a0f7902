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

from metarobot.family import FloatParam, Param, Range, SignParam, Task, TaskFamily

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
    params: ClassVar[tuple[Param, ...]] = (
        FloatParam(
            name="pole_length", unit="m", doc="full length of the pole", bounds=(0.1, 5.0),
            train=Range(0.6, 1.4), ood=(Range(0.35, 0.5), Range(1.6, 2.2)),
        ),
        FloatParam(
            name="pole_mass", unit="kg", doc="mass of the pole", bounds=(0.01, 5.0),
            train=Range(0.05, 0.4), ood=(Range(0.5, 0.8),),
        ),
        FloatParam(
            name="cart_mass", unit="kg", doc="mass of the cart", bounds=(0.1, 20.0),
            train=Range(0.6, 1.6), ood=(Range(1.9, 2.6),),
        ),
        FloatParam(
            name="force_scale", unit="N", doc="force on the cart at action +1", bounds=(1.0, 100.0),
            train=Range(8.0, 14.0), ood=(Range(5.0, 7.0), Range(16.0, 20.0)),
        ),
        SignParam(name="actuator_sign", doc="motor direction (-1: wired reversed)", reversed_probability=0.5),
    )  # fmt: skip

    pole_length: float
    pole_mass: float
    cart_mass: float
    force_scale: float
    actuator_sign: int = 1

    def body_key(self) -> tuple[float, float, float]:
        return (self.pole_length, self.pole_mass, self.cart_mass)


class CartPoleFamily(TaskFamily):
    """Every parameter drawn from its spec (``CartPoleTask.params``); an ``ood`` task moves one
    of pole length, pole mass, cart mass and force scale outside its training range."""

    name = "cartpole"
    env_id = "metarobot/CartPole-v0"
    task_type = CartPoleTask
    summary = "procedural cart-poles (pole length/mass, cart mass, motor strength and direction)"
    success = "pole within 12 degrees and cart within 2.4 m for all 200 steps (4.2 s)"
    episode_steps = EPISODE_STEPS
    control_hz = 48.0
    # episodes are 200 steps (reach: 60), so fewer per update and fewer iterations keep the
    # default run a few minutes long
    meta_defaults: ClassVar[dict[str, Any]] = {"iterations": 40, "meta_batch": 10, "episodes_per_update": 5}
    #: pole length, pole mass, cart mass, force scale (each mapped from its training range to
    #: [-1, 1]) and the actuator sign (+1/-1)
    hidden = ("pole_length", "pole_mass", "cart_mass", "force_scale", "actuator_sign")

    def make_env(self, task: Task, render_mode: str | None = None) -> CartPoleEnv:
        return CartPoleEnv(task=task, render_mode=render_mode)  # type: ignore[arg-type]


class CartPoleEnv(MetaRobotEnv):
    """Gymnasium env of one cart-pole task (``metarobot/CartPole-v0``)."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 48}
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
