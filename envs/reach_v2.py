"""The ``reach-v2`` family: ``reach-v1``'s differences between real arms, on arms of any
kinematics -- the procedural ones of training and the 6-7-joint arm files people have.

``reach-v1`` trained on one kind of arm (a base yaw joint and three pitch joints); its policy
had to learn that arm's kinematics, so the arm files users bring (a Franka Panda, a KUKA iiwa,
an xArm: 1 m long, 6-7 joints, alternating axes) were out of its reach. A real arm's
controller is never without its kinematics: it has the robot's URDF and computes the
Jacobian of its tip from its encoders. ``reach-v2`` gives the policy what such a controller
computes and keeps hidden what a URDF does not say:

* **the nominal model's step**: the observation carries, per joint, the damped least-squares
  step ``d = J^T (J J^T + lambda^2 I)^-1 (goal - tip)`` (rad; ``lambda`` = 0.1 m) of the
  *believed* arm (the file's or the procedural arm's kinematics at the *read* angles), scaled
  down as a whole so that no entry exceeds 1 rad (far from the goal the full step is several
  radians, which saturated the policy's first layer and stalled its training). A robot exactly
  as its URDF says reaches its goals by following it (``bench/scripted_arm.py``: 93-100% on the
  Panda, KUKA and xArm files with the true wiring).
* **what differs per robot, hidden** (as in ``reach-v1``): every joint's direction (a motor
  wired reversed, drawn on its own), its gain, the encoders' zero offsets (what is read is
  ``q + offset``, and the believed tip and step are computed from that) and a payload at the
  tip. Following ``d`` with a reversed joint drives the tip away; which joints are reversed and
  how fast each turns is what adaptation must find out.
* **arms of many kinds**: training arms have 4-7 joints with axes drawn per joint (the first
  about z, then y, z or x) and links of 5-30 cm; ``ood`` arms have 2-3 joints, longer links,
  other gains or masses, worse calibrations or heavier payloads. Arm files are taken as they
  are (``--urdf``, as for ``reach``); the oracle sees gains, directions, offsets and payload,
  not the kinematics, which are in everyone's observation.

Observation (44 floats): ``reach-v1``'s 37 (per joint, padded to 7: sin and cos of the read
angle, q_dot / 3 rad/s, the mask; the believed tip, the goal, and goal - believed tip), then the
7 (padded) entries of ``d``. Every entry is bounded by about 1-2: goal - tip is in units of 10 cm
within 10 cm of the goal and a unit vector beyond (``reach``'s unbounded 10-cm units reach 20 on
metre-long arms, and a few such inputs saturate a tanh policy's first layer).

Actions are a **residual on the nominal controller**: joint j is commanded
``clip(nominal_j + 2 * a_j, -1, 1)`` times its (hidden) gain and direction, where ``nominal`` is
``5 d`` scaled down as a whole to at most 1 (``nominal_command``). The zero action is "trust the
URDF"; a robot wired as its file says needs nothing more, and a reversed joint needs the policy
to turn that joint's command around -- which only an estimate of the wiring tells it. (With
plain joint-velocity actions, the oracle stayed at 0-5% training success for 1.2M env steps:
it had to learn the controller as well as the wiring.) Reward, success and episode as ``reach``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pybullet as p
from metarobot.envs.reach import (
    BASE_HEIGHT,
    ERROR_SCALE,
    MAX_JOINTS,
    OBS_DIM,
    VEL_SCALE,
    ReachTask,
    arm_task_from_urdf,
)
from metarobot.envs.reach_v1 import ReachV1Env, ReachV1Family, ReachV1Task
from metarobot.envs.urdf_builder import AXES, UrdfModel, axis_rotation

from metarobot.errors import MetarobotError
from metarobot.family import IntParam, Param, Range, Task, replace_param, revise, round_params

OBS_DIM_V2 = OBS_DIM + MAX_JOINTS
DLS_DAMPING = 0.1  # m: lambda of the damped least-squares step (keeps it finite at singularities)
FOLLOW_GAIN = 5.0  # the nominal controller's command per rad of (bounded) step
RESIDUAL_SCALE = 2.0  # the policy's action moves each joint's command by up to this much
#: a generated arm's first joint turns about z; each later one about y, z or x with these odds
LATER_AXES_V2: dict[str, float] = {"y": 0.5, "z": 0.3, "x": 0.2}


@dataclasses.dataclass(frozen=True)
class ReachV2Task(ReachV1Task):
    """A ``reach-v1`` arm of any kinematics (a procedural arm or a file's); the hidden
    differences are ``reach-v1``'s: directions, gains, zero offsets and payload."""

    family: ClassVar[str] = "reach-v2"
    params: ClassVar[tuple[Param, ...]] = revise(
        ReachV1Task.params,
        IntParam(
            name="n_joints", doc="revolute joints of the arm", bounds=(1, MAX_JOINTS), train=(4, 5, 6, 7), ood=(2, 3),
        ),
        replace_param(
            ReachV1Task.params, "link_lengths", train=Range(0.05, 0.30), ood=(Range(0.32, 0.45),),
        ),
        replace_param(
            ReachV1Task.params, "joint_axes",
            sampling="first z, then " + " or ".join(f"{a} ({o:.0%})" for a, o in LATER_AXES_V2.items()),
        ),
        replace_param(
            ReachV1Task.params, "joint_offsets", train=Range(-0.01, 0.01),
            ood=(Range(-0.03, -0.012), Range(0.012, 0.03)),
        ),
        replace_param(ReachV1Task.params, "payload_mass", train=Range(0.0, 1.0), ood=(Range(1.5, 2.5),)),
    )  # fmt: skip

    def validate(self) -> None:
        ReachTask.validate(self)  # a file's arm is welcome (reach-v1 refuses it)


class ReachV2Family(ReachV1Family):
    """Arms with 4-7 joints of drawn axes, every joint's direction on its own, gains, offsets and
    payload from the spec; ``ood`` as ``reach-v1``'s shifts with this family's ranges."""

    name = "reach-v2"
    env_id = "metarobot/Reach-v2"
    task_type = ReachV2Task
    summary = (
        "arms of any kinematics (files too), given their nominal model's step; direction, gain, offset, payload hidden"
    )
    #: per joint (padded to 7): gain (training range -> [-1, 1]), direction (+1/-1), zero offset;
    #: then the payload. The kinematics are not hidden: the observation carries the model's step.
    hidden = ("actuator_gains", "actuator_signs", "joint_offsets", "payload_mass")
    #: the oracle and the learned adapters did not learn reach-v2 within 2M env steps, while
    #: identification reaches 83-100% of real arm files' goals (bench/RESULTS.md, reach-v2)
    meta_defaults: ClassVar[dict[str, Any]] = {"algo": "identify"}
    file_hint = ""

    def _build(
        self,
        rng: np.random.Generator,
        n: int,
        lengths: Any = None,
        masses: Any = None,
        gains: Any = None,
        offsets: Any = None,
        payload: float | None = None,
    ) -> ReachV2Task:
        later, odds = list(LATER_AXES_V2), list(LATER_AXES_V2.values())
        return ReachV2Task(
            n_joints=n,
            link_lengths=round_params(lengths) if lengths is not None else self.param("link_lengths").sample(rng, n),
            joint_axes=("z",) + tuple(str(rng.choice(later, p=odds)) for _ in range(n - 1)),
            link_masses=round_params(masses) if masses is not None else self.param("link_masses").sample(rng, n),
            joint_damping=self.param("joint_damping").sample(rng, n),
            joint_limits=self.param("joint_limits").sample(rng, n),
            actuator_gains=round_params(gains) if gains is not None else self.param("actuator_gains").sample(rng, n),
            actuator_signs=self.param("actuator_signs").sample(rng, n),
            joint_offsets=round_params(offsets) if offsets is not None else self.param("joint_offsets").sample(rng, n),
            payload_mass=round_params(payload) if payload is not None else self.param("payload_mass").sample(rng),
        )

    def identification(self) -> ArmIdentification:
        return ArmIdentification()

    def make_env(self, task: Task, render_mode: str | None = None) -> ReachV2Env:
        return ReachV2Env(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def task_from_urdf(
        self, path: Path, ee_link: str | None = None, variation_seed: int | None = None, **options: Any
    ) -> ReachV2Task:
        """The arm of ``path`` (read as ``reach`` reads it). By default the robot is as its file
        says: every joint wired forward, gain 1.5 rad/s, no zero offset, no payload. With
        ``variation_seed``, those hidden values are drawn from the training ranges with
        ``numpy.random.default_rng(variation_seed)`` instead: the file's arm as one robot of
        its model, miswired and miscalibrated as a real one may be (how ``bench`` measures
        adaptation on arm files)."""
        if options:  # reach-v2 reads an arm: wheel options and the like do not apply
            raise TypeError(f"unexpected options {sorted(options)}")
        base = arm_task_from_urdf(path, ee_link)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(ReachTask)}
        n = base.n_joints
        if variation_seed is None:
            return ReachV2Task(**fields, joint_offsets=(0.0,) * n)
        rng = np.random.default_rng(variation_seed)
        fields["actuator_gains"] = self.param("actuator_gains").sample(rng, n)
        fields["actuator_signs"] = self.param("actuator_signs").sample(rng, n)
        return ReachV2Task(
            **fields,
            joint_offsets=self.param("joint_offsets").sample(rng, n),
            payload_mass=self.param("payload_mass").sample(rng),
        )


# ---------------------------------------------------------------------------------------------
# The nominal model: forward kinematics and the tip's Jacobian, from the task or the file


def _homogeneous(rot: np.ndarray, pos: Any) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = pos
    return out


@dataclasses.dataclass(frozen=True)
class ArmKinematics:
    """A serial chain: before each revolute joint a fixed transform (from the previous joint's
    rotated frame, or the root, to this joint's frame), the joint's unit axis in its frame, and
    the fixed transform from the last joint to the end-effector link's frame. The root is at the
    world origin, as the envs load every arm."""

    before: tuple[np.ndarray, ...]
    axes: tuple[np.ndarray, ...]
    to_ee: np.ndarray

    @classmethod
    def of(cls, task: ReachTask) -> ArmKinematics:
        if task.urdf_path is None:  # serial_arm_urdf's layout: links along +z at zero angles
            before = tuple(
                _homogeneous(np.eye(3), (0.0, 0.0, BASE_HEIGHT if i == 0 else task.link_lengths[i - 1]))
                for i in range(task.n_joints)
            )
            axes = tuple(np.asarray(AXES[a], dtype=float) for a in task.joint_axes)
            return cls(before, axes, _homogeneous(np.eye(3), (0.0, 0.0, task.link_lengths[-1])))
        model = UrdfModel.read(task.urdf_path)
        names = set(task.joint_names)
        chain = model.chain(task.ee_link or "")
        arm = [j.name for j in chain if j.revolute and (not names or j.name in names)]
        held = model.held_positions(arm)  # a torso's joints, where the env holds them
        transforms, axes_list, pending = [], [], np.eye(4)
        for joint in chain:
            xyz, rot = joint.origin(model.path)
            pending = pending @ _homogeneous(rot, xyz)
            if joint.name in arm:
                transforms.append(pending)
                axes_list.append(joint.axis(model.path))
                pending = np.eye(4)
            elif joint.name in held:
                pending = pending @ _homogeneous(*joint.motion(model.path, held[joint.name])[::-1])
        if len(transforms) != task.n_joints:
            raise MetarobotError(f"URDF {task.urdf_path}: the chain to {task.ee_link!r} is not the task's arm")
        return cls(tuple(transforms), tuple(axes_list), pending)

    def tip_and_jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tip position (m) at joint angles ``q`` (rad) and the 3 x n Jacobian of the tip's
        position with respect to ``q`` (m/rad). (Kept to small rotations and one vectorised
        cross product: it runs every control step, beside 8 physics steps.)"""
        n = len(self.axes)
        rot, pos = np.eye(3), np.zeros(3)
        origins, axes = np.empty((n, 3)), np.empty((n, 3))
        for i in range(n):
            before, axis = self.before[i], self.axes[i]
            pos = pos + rot @ before[:3, 3]
            rot = rot @ before[:3, :3]
            origins[i] = pos
            axes[i] = rot @ axis
            rot = rot @ axis_rotation(axis, float(q[i]))
        tip = pos + rot @ self.to_ee[:3, 3]
        r = tip - origins
        jac = np.array(
            [
                axes[:, 1] * r[:, 2] - axes[:, 2] * r[:, 1],
                axes[:, 2] * r[:, 0] - axes[:, 0] * r[:, 2],
                axes[:, 0] * r[:, 1] - axes[:, 1] * r[:, 0],
            ]
        )  # column i: axis_i x (tip - origin_i)
        return tip, jac


_EYE3 = np.eye(3)


def damped_step(jac: np.ndarray, error: np.ndarray, damping: float = DLS_DAMPING) -> np.ndarray:
    """The damped least-squares joint step ``J^T (J J^T + damping^2 I)^-1 error`` (rad)."""
    return jac.T @ np.linalg.solve(jac @ jac.T + (damping * damping) * _EYE3, error)


def bounded_step(step: np.ndarray) -> np.ndarray:
    """``step`` scaled down as a whole so that no entry exceeds 1 rad: its direction far from
    the goal (where the full step would be several radians and saturate a policy's inputs),
    itself near it."""
    return step / max(1.0, float(np.abs(step).max(initial=0.0)))


def nominal_command(step: np.ndarray) -> np.ndarray:
    """The nominal controller's joint commands in [-1, 1] for an observed (bounded) step: the
    step times ``FOLLOW_GAIN``, scaled down as a whole so that no command exceeds 1 (the
    direction at full speed far from the goal, proportional near it). ``step`` may be a batch
    of rows (the last axis is the joints)."""
    command = FOLLOW_GAIN * np.asarray(step, dtype=np.float64)
    return command / np.maximum(1.0, np.abs(command).max(axis=-1, initial=0.0, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Classic online identification: each joint's signed gain from its speed after a command

#: rad/s per unit command that a joint is taken to turn at before it has moved: the file's word
FILE_GAIN = 1.5
#: the identified controller commands ``IDENTIFY_FOLLOW * d / g`` (rad/s per rad of step over the
#: joint's estimated signed gain ``g``: a command that turns the joint at 10 d rad/s), scaled
#: down as a whole so that no command exceeds 1
IDENTIFY_FOLLOW = 10.0
#: an estimate of smaller magnitude is not trusted (a joint at its limit barely moves)
MIN_GAIN = 0.05
_VEL = slice(2 * MAX_JOINTS, 3 * MAX_JOINTS)
_MASK = slice(*ReachV1Family.action_mask_slice)
_STEP = slice(OBS_DIM, OBS_DIM_V2)


class ArmIdentification:
    """reach-v2's identification model (``metarobot.online.Identification``).

    A joint's signed gain ``g`` (direction times rad/s per unit command) is the least-squares
    ratio of its observed speed to the command it was sent the step before, over every
    transition seen: ``sum(speed * command) / sum(command^2)``. The statistics are those two
    products per joint; the command is recomputed from the transition as the env computes it
    (the nominal command of the observed step plus the residual action). Until a joint has been
    pushed, or where the ratio is under ``MIN_GAIN``, the file's word (``FILE_GAIN``) stands in.

    The controller follows the model's step at ``IDENTIFY_FOLLOW * d / g``, scaled down as a whole
    to commands of at most 1, sent as the residual on the nominal controller. It is the
    ``identified online`` reference of ``bench/scripted_arm.py``."""

    dim = MAX_JOINTS
    stats_dim = 2 * MAX_JOINTS

    def statistics(self, transitions: np.ndarray) -> np.ndarray:
        obs = transitions[:, :OBS_DIM_V2]
        action = np.clip(transitions[:, OBS_DIM_V2 : OBS_DIM_V2 + MAX_JOINTS], -1.0, 1.0)
        delta = transitions[:, OBS_DIM_V2 + MAX_JOINTS + 1 :]
        command = np.clip(nominal_command(obs[:, _STEP]) + RESIDUAL_SCALE * action, -1.0, 1.0) * obs[:, _MASK]
        speed = (obs[:, _VEL] + delta[:, _VEL]) * VEL_SCALE
        return np.concatenate([speed * command, command * command], axis=1)

    def estimate(self, sums: np.ndarray) -> np.ndarray:
        moved, pushed = sums[:, :MAX_JOINTS], sums[:, MAX_JOINTS:]
        ratio = np.where(pushed > 1e-3, moved / np.maximum(pushed, 1e-9), FILE_GAIN)
        return np.where(np.abs(ratio) > MIN_GAIN, ratio, FILE_GAIN).astype(np.float32)

    def action(self, obs: Any, estimate: Any) -> Any:
        import torch

        step, mask = obs[..., _STEP], obs[..., _MASK]
        gain = torch.where(estimate.abs() > MIN_GAIN, estimate, torch.full_like(estimate, FILE_GAIN))
        want = IDENTIFY_FOLLOW * step * mask / gain
        want = want / want.abs().amax(-1, keepdim=True).clamp(min=1.0)
        nominal = FOLLOW_GAIN * step
        nominal = nominal / nominal.abs().amax(-1, keepdim=True).clamp(min=1.0)
        return (want - nominal) / RESIDUAL_SCALE


class ReachV2Env(ReachV1Env):
    """Gymnasium env of one reach-v2 task (``metarobot/Reach-v2``)."""

    task_type = ReachV2Task
    obs_dim = OBS_DIM_V2  # reach's 37 floats, then the step's 7

    def __init__(
        self, task: ReachV2Task | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = ReachV2Family().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        self._kinematics_key: tuple[Any, ...] | None = None
        super().__init__(task, render_mode)

    def _build_scene(self, task: ReachTask) -> None:
        super()._build_scene(task)
        # a file's end-effector link may be a real link (a flange, a gripper): what it weighs
        info = p.getDynamicsInfo(self.robot, self._ee, physicsClientId=self.sim.client)
        self._ee_dynamics = (float(info[0]), tuple(float(v) for v in info[2]))

    def _tip_dynamics(self, task: ReachV1Task) -> tuple[float, list[float]]:
        mass, inertia = self._ee_dynamics
        if task.urdf_path is not None and mass > 0:
            # the payload rides on the link, which keeps its own mass and inertia (reach-v1's
            # procedural tip is massless, and a near-zero inertia on a real link is unstable)
            return mass + task.payload_mass, list(inertia)
        return super()._tip_dynamics(task)

    def _apply_task(self, task: Task, previous: Task | None) -> None:
        assert isinstance(task, ReachV2Task)
        super()._apply_task(task, previous)
        if self._kinematics_key != task.body_key():
            self._kinematics = ArmKinematics.of(task)
            self._kinematics_key = task.body_key()

    def _believe(self, obs: np.ndarray, q_read: np.ndarray, tip: tuple[float, float, float]) -> None:
        """The belief from the nominal model: the believed tip, goal - it (bounded: see the module
        doc) and the model's step at the read angles, from which the nominal command follows."""
        n = self._n
        believed, jac = self._kinematics.tip_and_jacobian(q_read)
        error = np.asarray(self._goal_t) - believed
        obs[28:31] = believed
        obs[34:37] = error / max(ERROR_SCALE, float(np.linalg.norm(error)))
        step = bounded_step(damped_step(jac, error))
        obs[OBS_DIM : OBS_DIM + n] = step
        self._nominal = nominal_command(step)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """``action`` is a residual on the nominal controller: joint j is commanded
        ``clip(nominal_j + RESIDUAL_SCALE * action_j, -1, 1)`` (times its hidden gain and
        direction, as in ``reach``)."""
        n = self._n
        a = np.minimum(np.maximum(np.asarray(action, dtype=np.float64).reshape(-1)[:n], -1.0), 1.0)
        command = np.zeros(MAX_JOINTS)
        command[:n] = np.minimum(np.maximum(self._nominal + RESIDUAL_SCALE * a, -1.0), 1.0)
        return super().step(command)
