"""The ``reach-v1`` family: ``reach`` with the differences between real arms of one kind that a
memoryless closed-loop policy can neither absorb nor read off one observation.

Everything of ``reach`` (``metarobot/Reach-v0``) holds -- procedural arms (up to 7 joints), 30 Hz
velocity control, 60-step episodes, the same reward and success (tip within 5 cm of the goal at
the end) and the same 37-float observation layout -- except:

* **arms of one kind**: in training every arm has the common layout of a base yaw joint
  followed by three pitch joints (axes z, y, y, y) and links of 16-22 cm; masses, damping and
  limits vary as in ``reach``. ``ood`` arms have 3, 5 or 6 joints or shorter or longer links.
  (A first design with ``reach``'s 3-5 joints and random axes left the oracle at 2% training
  success after 150,000 env steps: learning to reach with any arm, not the hidden parameters,
  was what took the budget.)
* **every joint's direction** is drawn on its own (+1 or -1 with probability 0.5 each): a
  motor wired reversed, or an encoder counting the other way. ``reach`` reversed at most one
  joint, which a closed-loop policy absorbed with the others. With every joint unknown, a
  policy that brings the tip in for a wiring ``s`` drives it out for ``-s`` (the linearised
  closed loop's trace changes sign), and no observation tells them apart: the joint velocity
  shows the sign of *command times direction*, not which of the two the policy chose;
* **joint gains** (rad/s per unit command) per joint, as in ``reach``;
* **joint zero offsets** (calibration error, rad): the arm's encoders read ``q + offset``.
  The observed joint angles *and the observed tip* are the arm's belief: the tip position and
  goal - tip are the forward kinematics of the read angles (a robot computes its tip from its
  encoders; the goal comes from a camera in the world frame), while success is judged on the
  true tip. Without knowing the offsets a policy stops where it believes the goal is;
* **a payload** at the tip (kg) that the motors must carry (0.5 kg moves where a second of the
  same commands ends by 3-4 cm).

Observation (37 floats), as ``reach``: per joint (padded to 7) sin and cos of the *read* angle,
q_dot / 3 rad/s, the mask; the *believed* tip position, the goal position, and goal - believed
tip in units of 10 cm. Only procedural arms (no URDF).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pybullet as p
from metarobot.envs.reach import (
    BASE_HEIGHT,
    ERROR_SCALE,
    ReachEnv,
    ReachFamily,
    ReachTask,
)

from metarobot.errors import MetarobotError
from metarobot.family import FloatParam, Param, Range, Task, replace_param, revise, round_params

MAX_OFFSET = 0.3  # rad: a calibration error beyond this is a broken robot, not a task
MAX_PAYLOAD = 5.0  # kg


@dataclasses.dataclass(frozen=True)
class ReachV1Task(ReachTask):
    """A ``reach`` arm plus per-joint zero offsets (rad, what the encoder reads minus the true
    angle) and a payload at the tip (kg). Any ``actuator_signs`` pattern is allowed."""

    family: ClassVar[str] = "reach-v1"
    #: ``reach``'s spec for arms of one kind (four joints, similar links), every joint's
    #: direction on its own, plus the zero offsets and the payload
    params: ClassVar[tuple[Param, ...]] = revise(
        ReachTask.params,
        replace_param(ReachTask.params, "n_joints", train=(4,), ood=(3, 5, 6)),
        replace_param(ReachTask.params, "link_lengths", train=Range(0.16, 0.22)),
        replace_param(ReachTask.params, "joint_axes", sampling="first z (base yaw), then y (pitch)"),
        replace_param(ReachTask.params, "actuator_signs", sampling="for each joint on its own"),
        FloatParam(
            name="joint_offsets", unit="rad", doc="zero offset of each joint's encoder (reads q + offset)",
            vector=True, bounds=(-MAX_OFFSET, MAX_OFFSET), train=Range(-0.03, 0.03),
            ood=(Range(-0.06, -0.035), Range(0.035, 0.06)),
        ),
        FloatParam(
            name="payload_mass", unit="kg", doc="payload at the tip", bounds=(0.0, MAX_PAYLOAD),
            train=Range(0.0, 0.5), ood=(Range(0.7, 1.2),),
        ),
    )  # fmt: skip

    joint_offsets: tuple[float, ...] = ()
    payload_mass: float = 0.0

    def validate(self) -> None:
        super().validate()
        if self.urdf_path is not None:
            raise MetarobotError("reach-v1 tasks are procedural arms (no urdf_path); use the reach family for URDFs")


class ReachV1Family(ReachFamily):
    """``reach``'s sampler with axes z, y, y, ..., every joint's direction drawn on its own, and
    offsets and payload from the spec; ``ood`` adds worse calibrations and heavier payloads to
    ``reach``'s shifts."""

    name = "reach-v1"
    env_id = "metarobot/Reach-v1"
    task_type = ReachV1Task
    summary = "reach arms whose every joint direction, gain, zero offset and tip payload differ per robot"
    file_family = None  # reach's routing of arm files to reach-v2 is reach's own
    #: ``reach``'s 49 per-joint values, then the 7 (padded) zero offsets (the training range maps
    #: to [-1, 1]) and the payload
    hidden = (*ReachFamily.hidden, "joint_offsets", "payload_mass")
    #: rma-online beat multitask and finetune by 55 points on held-out arms at their budget
    #: (bench/RESULTS.md, reach-v1): policies/pretrained/reach-v1-rma-online.pt is this default run
    meta_defaults: ClassVar[dict[str, Any]] = {"algo": "rma-online", "teacher_fraction": 0.85}
    #: reach's PPO recipe was chosen on reach's train split, not on this family's
    algo_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def _build(
        self,
        rng: np.random.Generator,
        n: int,
        lengths: Any = None,
        masses: Any = None,
        gains: Any = None,
        offsets: Any = None,
        payload: float | None = None,
    ) -> ReachV1Task:
        # reach's draws (its one-reversed-joint draw included, though its signs are replaced:
        # dropping it would move every task the shipped policies were trained and measured on)
        base = super()._build(rng, n, lengths, masses, gains)
        signs = self.param("actuator_signs").sample(rng, n)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(ReachTask)}
        fields["actuator_signs"] = signs
        fields["joint_axes"] = ("z",) + ("y",) * (n - 1)  # arms of one kind: base yaw, then pitch joints
        return ReachV1Task(
            **fields,
            joint_offsets=round_params(offsets) if offsets is not None else self.param("joint_offsets").sample(rng, n),
            payload_mass=round_params(payload) if payload is not None else self.param("payload_mass").sample(rng),
        )

    def _sample_ood(self, rng: np.random.Generator) -> ReachV1Task:
        shift = int(rng.integers(6))
        if shift < 4:  # reach's shifts: joint count, link lengths, gains, masses
            base = super()._sample_ood(rng)
            return self._build(rng, base.n_joints, base.link_lengths, base.link_masses, base.actuator_gains)
        n = self.param("n_joints").sample(rng)
        if shift == 4:  # a worse calibration than any in training: a magnitude, then each joint's sign
            magnitude = self.param("joint_offsets", FloatParam).ood[-1]
            offsets = magnitude.sample(rng, n) * rng.choice([-1.0, 1.0], size=n)
            return self._build(rng, n, offsets=offsets)
        return self._build(rng, n, payload=self.param("payload_mass").sample_ood(rng))

    def make_env(self, task: Task, render_mode: str | None = None) -> ReachV1Env:
        return ReachV1Env(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def task_from_urdf(self, path: Path, ee_link: str | None = None, **options: Any) -> ReachTask:
        raise MetarobotError("reach-v1 takes procedural arms only; use --family reach for a URDF arm")


def _rotation(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == "x":
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    if axis == "y":
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def tip_position(task: ReachTask, q: np.ndarray) -> np.ndarray:
    """Tip position (m, world frame) of ``task``'s procedural arm at joint angles ``q`` (rad):
    the forward kinematics of ``serial_arm_urdf`` (joint i sits at the end of link i - 1, the
    first one ``BASE_HEIGHT`` above the base; links point along their +z at zero angles)."""
    rot = np.eye(3)
    pos = np.zeros(3)
    for i in range(task.n_joints):
        pos = pos + rot[:, 2] * (BASE_HEIGHT if i == 0 else task.link_lengths[i - 1])
        rot = rot @ _rotation(task.joint_axes[i], float(q[i]))
    return pos + rot[:, 2] * task.link_lengths[-1]


class ReachV1Env(ReachEnv):
    """Gymnasium env of one reach-v1 task (``metarobot/Reach-v1``)."""

    task_type = ReachV1Task

    def __init__(
        self, task: ReachV1Task | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = ReachV1Family().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        self._payload_key: tuple[Any, ...] | None = None
        super().__init__(task, render_mode)

    def _apply_task(self, task: Task, previous: Task | None) -> None:
        assert isinstance(task, ReachV1Task)
        rebuilt = task.body_key() != self._body_key
        super()._apply_task(task, previous)
        self._offsets = np.asarray(task.joint_offsets, dtype=np.float64)
        if rebuilt or self._payload_key != (task.body_key(), task.payload_mass):
            mass, inertia = self._tip_dynamics(task)  # no rebuild needed
            p.changeDynamics(
                self.robot, self._ee, mass=mass, localInertiaDiagonal=inertia, physicsClientId=self.sim.client
            )
            self._payload_key = (task.body_key(), task.payload_mass)

    def _tip_dynamics(self, task: ReachV1Task) -> tuple[float, list[float]]:
        """Mass (kg) and inertia diagonal of the end-effector link carrying ``task``'s payload:
        here a point mass on the (massless) procedural tip link."""
        m = max(task.payload_mass, 1e-6)
        return m, [1e-6 * max(m, 1.0)] * 3

    def _read_angles(self, q: np.ndarray) -> np.ndarray:
        """What the encoders read: ``q + offset``."""
        return q + self._offsets

    def _believe(self, obs: np.ndarray, q_read: np.ndarray, tip: tuple[float, float, float]) -> None:
        """Write the encoders' belief into ``obs``: the tip as the forward kinematics of the read
        angles, and goal - that tip (the true ``tip`` only judges success)."""
        believed = tip_position(self.task, q_read)  # type: ignore[arg-type]
        obs[28:31] = believed
        obs[34:37] = (np.asarray(self._goal_t) - believed) / ERROR_SCALE
