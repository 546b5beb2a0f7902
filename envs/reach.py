"""The ``reach`` family: procedurally generated serial arms that must bring their tip to a goal.

Robot (hidden from the policy): 2-7 revolute joints, link lengths, joint axes, link masses,
joint damping and limits, and per-joint actuators with a gain (rad/s per unit action) and a
direction (+1, or -1 for a joint wired reversed).

Control: 30 Hz (8 physics steps of 1/240 s). Action: one value per joint in [-1, 1] (padded
to 7), the commanded joint velocity as a fraction of that actuator's gain; values outside
[-1, 1] are clipped. Commands to padded joints are ignored.

Observation (37 floats): per joint (padded to 7, zeros where masked) sin q, cos q,
q_dot / 3 rad/s, and the mask (1 = joint exists); then the tip position and the goal
position in metres, and goal - tip in units of 10 cm (clipped to +/-20), all in the world frame.

Reward per step: ``-d + 0.5 * [d < success_distance] - 0.01 * |a|^2`` with ``d`` the
tip-goal distance in metres. Episode: 60 steps (2 s). Success (``info["is_success"]``): ``d < success_distance``
(5 cm by default) at the end of the episode.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet as p
from metarobot.envs.base import MetaRobotEnv
from metarobot.envs.sim import give_inertia_to_empty_links, pybullet_output_to_log, shared_urdf
from metarobot.envs.urdf_builder import AXES, UrdfJoint, UrdfModel, rigid_copy, serial_arm_urdf

from metarobot.errors import MetarobotError
from metarobot.family import (
    FILE_ONLY,
    SB3_STEP_RECIPE,
    ChoiceParam,
    FloatParam,
    IntParam,
    Param,
    Range,
    SignParam,
    Task,
    TaskFamily,
    round_params,
)
from metarobot.validation import URDF_MAX_LINKS, number_list

MAX_JOINTS = 7
ARM_JOINTS = 6  # revolute joints in a row that only an arm has (a leg of four limbs, a finger: 3-5)
CONTROL_SUBSTEPS = 8  # 240 Hz physics / 8 = 30 Hz control
EPISODE_STEPS = 60
OBS_DIM = 4 * MAX_JOINTS + 9
VEL_SCALE = 3.0  # rad/s, divides joint velocities in the observation
BASE_HEIGHT = 0.05
MAX_EFFORT = 60.0  # N*m per joint
ERROR_SCALE = 0.1  # m: goal - tip is observed in units of 10 cm, so small errors still show
FLOOR_CLEARANCE = 0.01  # m: a file's arm keeps its links this far off the floor at goal and start
HOLD_POSES = 64  # poses of the goals' draw over which a file's arm's gravity torques are taken
SUCCESS_BONUS = 0.5  # reward per step spent within the success distance
OBS_BOUND = 20.0  # |observation| never exceeds this (positions in m, scaled velocities)
#: a generated arm's first joint turns about z; each later one about y or x with these odds
LATER_AXES: dict[str, float] = {"y": 0.7, "x": 0.3}


@dataclasses.dataclass(frozen=True)
class ReachTask(Task):
    """One serial arm and its goal distribution. Lengths in m, masses in kg, damping in
    N*m*s/rad, limits in rad (symmetric), gains in rad/s per unit action.

    Goals are tip positions of joint configurations drawn uniformly within ``goal_spread``
    times each joint's limit, so every goal is reachable. With ``urdf_path`` set, the body
    comes from that file and the geometric fields describe it (read from the file).
    """

    family: ClassVar[str] = "reach"
    params: ClassVar[tuple[Param, ...]] = (
        IntParam(
            name="n_joints", doc="revolute joints of the arm", bounds=(1, MAX_JOINTS), train=(3, 4, 5),
            ood=(2, 6, 7),
        ),
        FloatParam(
            name="link_lengths", unit="m", doc="length of each link", vector=True, bounds=(0.01, 2.0),
            # a file's arm may have coincident joint origins (a spherical wrist): length 0
            file_bounds=(0.0, 2.0), train=Range(0.12, 0.25), ood=(Range(0.07, 0.11), Range(0.27, 0.35)),
        ),
        ChoiceParam(
            name="joint_axes", doc="axis of each joint", vector=True, choices=tuple(AXES),
            sampling="first z, then " + " or ".join(f"{axis} ({odds:.0%})" for axis, odds in LATER_AXES.items()),
        ),
        FloatParam(
            name="link_masses", unit="kg", doc="mass of each link", vector=True, bounds=(0.0, 50.0),
            train=Range(0.2, 1.0), ood=(Range(1.2, 2.0),),
        ),
        FloatParam(
            name="joint_damping", unit="N*m*s/rad", doc="damping of each joint", vector=True, bounds=(0.0, 10.0),
            train=Range(0.05, 0.3),
        ),
        FloatParam(
            name="joint_limits", unit="rad", doc="each joint's range is +/- this", vector=True,
            bounds=(0.05, 2 * math.pi), train=Range(2.0, 2.8),
        ),
        FloatParam(
            name="actuator_gains", unit="rad/s", doc="joint speed at command +1, per joint", vector=True,
            bounds=(0.05, 20.0), train=Range(1.0, 2.0), ood=(Range(0.5, 0.9), Range(2.2, 3.0)),
        ),
        SignParam(
            name="actuator_signs", doc="direction of each joint's motor (-1: wired reversed)", vector=True,
            reversed_probability=0.5, sampling="for one joint chosen uniformly, else all +1",
        ),
        FloatParam(name="goal_spread", doc="goals lie within this fraction of each joint's range", bounds=(0.05, 1.0)),
        FloatParam(
            name="success_distance", unit="m", doc="success: the tip this close to the goal", bounds=(0.005, 0.5)
        ),
        FloatParam(
            name="joint_centres", unit="rad", doc="centre of each joint's range", vector=True,
            bounds=(-2 * math.pi, 2 * math.pi),
        ),
        FloatParam(
            name="joint_efforts", unit="N*m", doc="effort limit of each joint", vector=True, bounds=(0.01, 1e5)
        ),
    )  # fmt: skip

    n_joints: int
    link_lengths: tuple[float, ...]
    joint_axes: tuple[str, ...]
    link_masses: tuple[float, ...]
    joint_damping: tuple[float, ...]
    joint_limits: tuple[float, ...]
    actuator_gains: tuple[float, ...]
    actuator_signs: tuple[int, ...]
    goal_spread: float = 0.5
    success_distance: float = 0.05
    urdf_path: str | None = None
    ee_link: str | None = None
    #: a file's arm: the chain's joint names, the centre of each joint's range (rad; goals and
    #: starts are drawn around it) and its effort limit (N*m)
    joint_names: tuple[str, ...] = dataclasses.field(default=(), metadata=FILE_ONLY)
    joint_centres: tuple[float, ...] = dataclasses.field(default=(), metadata=FILE_ONLY)
    joint_efforts: tuple[float, ...] = dataclasses.field(default=(), metadata=FILE_ONLY)

    def validate(self) -> None:
        """The spec's bounds (``Task.validate``), then one entry per joint in every per-joint
        field; the fields only a file's arm has need ``urdf_path``."""
        super().validate()
        n = self.n_joints
        file_only = {f.name for f in dataclasses.fields(self) if f.metadata.get("omit_default")}
        for name in [param.name for param in self.params if param.vector] + ["joint_names"]:
            values = getattr(self, name)
            if name in file_only:
                if values and (self.urdf_path is None or not isinstance(values, tuple) or len(values) != n):
                    raise MetarobotError(f"{self.family} task {name} needs urdf_path and {n} entries, got {values!r}")
            elif not isinstance(values, tuple) or len(values) != n:
                raise MetarobotError(f"{self.family} task {name} must have {n} entries, got {values!r}")

    def body_key(self) -> tuple[Any, ...]:
        """What the robot's body depends on (a change of anything else needs no rebuild)."""
        return (
            self.link_lengths,
            self.joint_axes,
            self.link_masses,
            self.joint_damping,
            self.joint_limits,
            self.urdf_path,
            self.ee_link,
            self.joint_names,
        )

    @property
    def reach(self) -> float:
        """Upper bound of the tip's distance from the first joint (m)."""
        return float(sum(self.link_lengths))


class ReachFamily(TaskFamily):
    """Arms drawn from the spec (``ReachTask.params``): a joint count, then per joint its values;
    an ``ood`` arm has a joint count, link lengths, gains or masses outside the training ones."""

    name = "reach"
    env_id = "metarobot/Reach-v0"
    task_type = ReachTask
    summary = "procedural serial arms (2-7 revolute joints) reaching goals in their workspace"
    success = "tip within 0.05 m of the goal at the end of a 60-step (2 s) episode"
    file_hint = (
        "adapt and render run a file's arm as reach-v2, which follows the arm's own kinematics and "
        "identifies its wiring online (81-100% of goals on 36 of 37 public arm files before any update; "
        "this family's policies reached 0-37% on them; bench/RESULTS.md)"
    )
    #: reach-v2 reached 81-100% of goals on 36 of 37 public arm files before any update, reach's
    #: shipped policies 0-37% (bench/RESULTS.md, "Real robot files from PyPI", "Held-out robot
    #: files, a second batch" and "Real robot files")
    file_family = "reach-v2"
    episode_steps = EPISODE_STEPS
    action_mask_slice = (3 * MAX_JOINTS, 4 * MAX_JOINTS)
    #: per joint (padded to 7), in blocks of 7: link length, axis code (x -1, y +1, z 0), link
    #: mass, damping, limit and actuator gain (each mapped from its training range to [-1, 1])
    #: and the actuator sign (+1/-1)
    hidden: ClassVar[tuple[str, ...]] = (
        "link_lengths", "joint_axes", "link_masses", "joint_damping", "joint_limits", "actuator_gains",
        "actuator_signs",
    )  # fmt: skip
    max_joints = MAX_JOINTS
    #: rma adapted best of metarobot's methods on held-out arms (bench/RESULTS.md, reach): the
    #: shipped policies/pretrained/reach-rma.pt is this default run
    meta_defaults: ClassVar[dict[str, Any]] = {"algo": "rma"}
    #: navigate's PPO recipe (10 minibatches, a policy that starts wider) for the policies PPO
    #: trains: on reach's train split it lifted the oracle from 60% to 86% and rma with it
    #: (bench/RESULTS.md, "reach (v0) with the recipe"); the variants set their own
    algo_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        algo: dict(SB3_STEP_RECIPE) for algo in ("multitask", "oracle", "rma")
    }

    def _build(
        self, rng: np.random.Generator, n: int, lengths: Any = None, masses: Any = None, gains: Any = None
    ) -> ReachTask:
        later, odds = list(LATER_AXES), list(LATER_AXES.values())
        axes = ("z",) + tuple(str(rng.choice(later, p=odds)) for _ in range(n - 1))
        p_reversed = self.param("actuator_signs", SignParam).reversed_probability
        reversed_joint = int(rng.integers(n)) if rng.random() < p_reversed else -1
        signs = tuple(-1 if i == reversed_joint else 1 for i in range(n))
        return ReachTask(
            n_joints=n,
            link_lengths=round_params(lengths) if lengths is not None else self.param("link_lengths").sample(rng, n),
            joint_axes=axes,
            link_masses=round_params(masses) if masses is not None else self.param("link_masses").sample(rng, n),
            joint_damping=self.param("joint_damping").sample(rng, n),
            joint_limits=self.param("joint_limits").sample(rng, n),
            actuator_gains=round_params(gains) if gains is not None else self.param("actuator_gains").sample(rng, n),
            actuator_signs=signs,
        )

    def _sample_in_range(self, rng: np.random.Generator) -> ReachTask:
        return self._build(rng, self.param("n_joints").sample(rng))

    def _sample_ood(self, rng: np.random.Generator) -> ReachTask:
        shift = int(rng.integers(4))
        n = self.param("n_joints").sample_ood(rng) if shift == 0 else self.param("n_joints").sample(rng)
        lengths = masses = gains = None
        if shift == 1:
            lengths = self.param("link_lengths").sample_ood(rng, n)
        elif shift == 2:
            gains = self.param("actuator_gains").sample_ood(rng, n)
        elif shift == 3:
            masses = self.param("link_masses").sample_ood(rng, n)
        return self._build(rng, n, lengths, masses, gains)

    def describe(self, task: Task) -> dict[str, Any]:
        """What was read from the user's file behind ``task`` (``metarobot inspect``)."""
        return describe_arm(task)  # type: ignore[arg-type]

    def make_env(self, task: Task, render_mode: str | None = None) -> ReachEnv:
        return ReachEnv(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def _hidden_value(self, param: Param, task: Task) -> Any:
        if param.name == "joint_axes":
            return [axis_code(a) for a in task.joint_axes]  # type: ignore[attr-defined]
        return super()._hidden_value(param, task)

    def task_from_urdf(self, path: Path, ee_link: str | None = None, **options: Any) -> ReachTask:
        return arm_task_from_urdf(path, ee_link=ee_link, **options)


def axis_code(axis: str) -> float:
    """A joint axis as one number for the privileged observation: x -1, y +1, z 0 (a URDF
    axis vector ``"ax ay az"`` counts as its dominant component)."""
    if axis in AXES:
        vec = AXES[axis]
    else:
        vec = tuple(abs(v) for v in number_list(axis))  # type: ignore[assignment]
    return (-1.0, 1.0, 0.0)[int(np.argmax(vec))]


# ---------------------------------------------------------------------------------------------
# A user's own arm


def _arm_start(model: UrdfModel, revolute: list[UrdfJoint]) -> int:
    """How many of a chain's first revolute joints are a torso, not the arm: none for a chain
    of at most ``MAX_JOINTS``; for a longer one (a humanoid's: waist, then arm), the fewest up to
    a branch point -- a link between two of them from which another limb (movable joints) hangs
    -- that leave at most ``MAX_JOINTS``. Where there is no such point (ARMAR's 8-joint arms,
    ARMAR-4's waist and shoulder), the joints nearest the root beyond the last ``MAX_JOINTS``."""
    if len(revolute) <= MAX_JOINTS:
        return 0
    on_chain = {j.name for j in model.chain(revolute[-1].child)}
    for i in range(len(revolute) - MAX_JOINTS, len(revolute)):
        segment = model.chain(revolute[i].parent)[len(model.chain(revolute[i - 1].child)) :]
        links = [revolute[i - 1].child] + [j.child for j in segment]
        for link in links:
            for other in model.children(link):
                if other.name in on_chain or other.name == revolute[i].name:
                    continue
                if other.movable or model.joints_below(other.child):
                    return i
    return len(revolute) - MAX_JOINTS


def _arm_links(model: UrdfModel) -> dict[str, tuple[int, str | None, bool, int]]:
    """Per link: the number of revolute/continuous joints of the arm between the root and it
    (after a torso's, ``_arm_start``), the reason it cannot be an end effector (``None`` when
    it can), whether its chain holds only arm joints (no prismatic, mimic or mimicked joint),
    however many, and how many revolute joints of its chain are a torso, held still."""
    mimicked = {j.mimic for j in model.joints if j.mimic}
    out: dict[str, tuple[int, str | None, bool, int]] = {}
    for link in model.links:
        chain = model.chain(link)
        revolute = [j for j in chain if j.revolute]
        reason = None
        # a prismatic joint before the arm's first joint is a torso lift (TIAGo's, ARMAR-6's),
        # held still with the rest of the torso; one within the arm is not an arm's joint
        start = _arm_start(model, revolute)
        first = chain.index(revolute[start]) if revolute else len(chain)
        other = [
            j for i, j in enumerate(chain) if j.movable and not j.revolute and (i >= first or j.kind != "prismatic")
        ]
        mimics = [j for j in revolute if j.mimic]
        drivers = [j for j in revolute if j.name in mimicked]
        if other:
            reason = (
                f"joint {other[0].name!r} on its chain is {other[0].kind}; a reach arm's chain takes "
                "revolute, continuous and fixed joints only"
            )
        elif mimics:
            reason = f"joint {mimics[0].name!r} on its chain mimics {mimics[0].mimic!r} (not driven on its own)"
        elif drivers:
            reason = f"joint {drivers[0].name!r} on its chain drives mimic joints (a gripper's actuator)"
        elif start >= ARM_JOINTS:  # TIAGo's index finger: 7 joints after the arm's 7
            reason = f"its first {start} revolute joints would be held still: a finger after an arm, not an arm"
        arm_joints_only = reason is None
        start = start if reason is None else 0
        if reason is None and not revolute:
            reason = "no revolute joint lies between the root and it"
        out[link] = (len(revolute) - start, reason, arm_joints_only, start)
    return out


def default_ee_link(model: UrdfModel) -> str:
    """The deepest link of the longest revolute chain that is an arm's (at most 7 joints after
    a torso's): chains with a prismatic joint after the torso, a mimic joint or a joint others
    mimic (a gripper's) are passed over, as are a hand's fingers after an arm (ties: the most
    links, then file order).
    ``MetarobotError`` with the reason when no chain is an arm's (the longest one's reason)."""
    info = _arm_links(model)
    depth = {lk: len(model.chain(lk)) for lk in model.links}
    arms = [lk for lk in model.links if info[lk][0] and info[lk][2]]
    best = max(arms or model.links, key=lambda lk: (info[lk][0], depth[lk]))
    if info[best][1] is not None:
        raise MetarobotError(f"URDF {model.path}: no serial arm from the root to {best!r}: {info[best][1]}")
    return best


def _check_ee_link(model: UrdfModel, ee_link: str) -> None:
    info = _arm_links(model)
    ok = [lk for lk in model.links if info[lk][1] is None]
    listing = f"links on candidate chains: {', '.join(ok)}" if ok else "no link ends a usable chain"
    if ee_link not in info:
        raise MetarobotError(f"URDF {model.path}: end-effector link {ee_link!r} is not a link of the file; {listing}")
    if info[ee_link][1] is not None:
        raise MetarobotError(
            f"URDF {model.path}: end-effector link {ee_link!r} cannot be used: {info[ee_link][1]}; {listing}"
        )


def _looks_wheeled(model: UrdfModel) -> list[str]:
    """Names of wheel joints if ``model`` looks like a wheeled base, else an empty list."""
    from metarobot.envs.navigate import find_wheels

    try:
        left, right = find_wheels(model.path, model)
    except MetarobotError:
        return []
    return list(left + right)


def _limbs(model: UrdfModel) -> list[str]:
    """The joints on the robot's body (its root and the links fixed to it) that carry further
    joints: a quadruped has four (its hips), an arm one, a dual-arm robot two."""
    body = set(model.body_links(travel=0.0))
    out = []
    for j in model.joints:
        if j.parent in body and j.movable and j.mimic is None and model.joints_below(j.child):
            out.append(j.name)
    return out


def _arm_of_a_base(model: UrdfModel) -> str | None:
    """The default end effector of a mobile manipulator's arm (TIAGo, Fetch, PR2, a Husky with a
    UR5 on top): its base parked, wheels held; None for a base whose longest chain is no arm's
    (fewer than ``ARM_JOINTS`` joints after a torso)."""
    try:
        ee = default_ee_link(model)
    except MetarobotError:
        return None
    return ee if _arm_links(model)[ee][0] >= ARM_JOINTS else None


def _legs_or_fingers(model: UrdfModel) -> list[str]:
    """The limbs of a legged robot or a hand, empty for anything else: four or more limbs from
    the body, none with an arm's ``ARM_JOINTS`` revolute joints in a row. A humanoid rooted at
    its chest (head, two arms, waist) and a wheeled humanoid (three steered wheels and a torso)
    have four limbs too, but arms among them."""
    limbs = _limbs(model)
    longest = max((sum(j.revolute for j in model.chain(lk)) for lk in model.links), default=0)
    return limbs if len(limbs) >= 4 and longest < ARM_JOINTS else []


def arm_task_from_urdf(
    path: Path | str,
    ee_link: str | None = None,
    actuator_gains: float | tuple[float, ...] = 1.5,
    actuator_signs: tuple[int, ...] | None = None,
) -> ReachTask:
    """A reach task whose body is the serial chain of ``path`` from the root to ``ee_link``
    (default: ``default_ee_link``): 1-7 revolute/continuous joints, fixed joints allowed in
    between. Everything else in the file (grippers, tool frames, sensors) stays on the robot
    as rigid geometry, its joints held still (mimic joints follow their joint). The task's
    fields are read from the file: lengths between successive joint origins (m), axes as
    written, moved masses (kg), damping, the joints' ranges (half range and centre, rad) and
    efforts (N*m)."""
    path = Path(path)
    model = UrdfModel.read(path)
    if ee_link is None:
        wheels = _looks_wheeled(model)
        arm = _arm_of_a_base(model) if wheels else None
        if wheels and arm is None:
            raise MetarobotError(
                f"URDF {path} looks like a wheeled base (wheel joints {wheels}), not an arm: "
                "use --family navigate (or name the arm's tip with --ee-link)"
            )
        limbs = _legs_or_fingers(model)
        if limbs:
            raise MetarobotError(
                f"URDF {path} looks like a legged robot or a hand ({len(limbs)} limbs from its body: {limbs}), "
                "not an arm; name the tip of the limb to reach with --ee-link"
            )
        ee_link = arm or default_ee_link(model)
    else:
        _check_ee_link(model, ee_link)
    chain = model.chain(ee_link)
    movable = [j for j in chain if j.revolute]
    movable = movable[_arm_links(model)[ee_link][3] :]  # a humanoid's waist is held still, not the arm
    n = len(movable)
    axes, limits, centres, damping, efforts, masses, lengths = [], [], [], [], [], [], []

    def clamp(name: str, value: float) -> float:  # a file's value kept within what a task may hold
        return ReachTask.param(name, FloatParam).clamp(value, from_file=True)

    origins = [model.pose_in_root(j.child)[0] for j in movable] + [model.pose_in_root(ee_link)[0]]
    for i, j in enumerate(movable):
        axes.append(" ".join(f"{v:g}" for v in j.axis(path)))
        unbounded = j.lower is None or j.upper is None or not (math.isfinite(j.lower) and math.isfinite(j.upper))
        if j.kind == "continuous" or unbounded or j.upper <= j.lower:  # type: ignore[operator]
            if j.kind == "revolute" and j.lower is not None and j.upper is not None and j.upper <= j.lower:
                why = (
                    " (an exporter's placeholder? PyBullet holds such a joint still: write its real "
                    "<limit lower upper>, or make it continuous)"
                    if j.lower == j.upper == 0
                    else ""
                )
                raise MetarobotError(f"URDF {path}: joint {j.name!r} has an empty range [{j.lower}, {j.upper}]{why}")
            half, centre = math.pi, 0.0
        else:
            half, centre = (j.upper - j.lower) / 2, (j.upper + j.lower) / 2  # type: ignore[operator]
        centre = max(-math.pi, min(math.pi, centre))
        limits.append(min(round(max(half, 0.05), 4), 6.2831))  # rounded, still within 2 pi
        centres.append(round(centre, 4))
        damping.append(round(clamp("joint_damping", j.damping), 4))
        # a file's "no limit" (Gazebo habit: effort="1e9") is the most a task holds
        efforts.append(round(clamp("joint_efforts", j.effort) if j.effort and j.effort > 0 else MAX_EFFORT, 4))
        # the mass this joint moves before the next chain joint: its child's rigid part and branches
        below = set(model.subtree(j.child))
        if i + 1 < n:
            below -= set(model.subtree(movable[i + 1].child))
        masses.append(round(clamp("link_masses", sum(model.masses[lk] for lk in below)), 4))
        lengths.append(round(clamp("link_lengths", float(np.linalg.norm(origins[i + 1] - origins[i]))), 4))
    gains = (float(actuator_gains),) * n if isinstance(actuator_gains, int | float) else tuple(actuator_gains)
    task = ReachTask(
        n_joints=n,
        link_lengths=tuple(lengths),
        joint_axes=tuple(axes),
        link_masses=tuple(masses),
        joint_damping=tuple(damping),
        joint_limits=tuple(limits),
        actuator_gains=gains,
        actuator_signs=tuple(actuator_signs or (1,) * n),
        urdf_path=str(path.resolve()),
        ee_link=ee_link,
        joint_names=tuple(j.name for j in movable),
        joint_centres=tuple(centres),
        joint_efforts=tuple(efforts),
    )
    # PyBullet must load it too (meshes, inertias): fail here, with the reason, not mid-run
    env = ReachEnv(task)
    env.close()
    return task


ARMATURE_RADIUS = 0.06  # m: a file arm's moving link has at least mass x this^2 of inertia


def _with_armature(body: int, link: int, client: int) -> None:
    """A file arm's link given at least ``mass * ARMATURE_RADIUS**2`` of inertia about each
    principal axis. A geared motor's rotor adds its inertia times the gear ratio squared at the
    joint (MuJoCo's ``armature``), which URDF files leave out; on an iCub's arm (0.03-0.3 kg
    links of 1e-5 kg*m^2) PyBullet's velocity motors then turned a shoulder at 2.3 rad/s where
    1.5 was commanded, and identification failed (4% reached; 100% with this floor, 10 tasks).
    Generated arms are untouched."""
    mass, _, inertia, *_ = p.getDynamicsInfo(body, link, physicsClientId=client)
    floor = mass * ARMATURE_RADIUS**2
    if mass > 0 and min(inertia) < floor:
        p.changeDynamics(body, link, localInertiaDiagonal=[max(v, floor) for v in inertia], physicsClientId=client)


# ---------------------------------------------------------------------------------------------
# The env


class ReachEnv(MetaRobotEnv):
    """Gymnasium env of one reach task (``metarobot/Reach-v0``)."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}
    task_type = ReachTask
    max_episode_steps = EPISODE_STEPS
    #: observation length (a later version may append to reach's layout)
    obs_dim: ClassVar[int] = OBS_DIM

    def __init__(
        self, task: ReachTask | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = ReachFamily().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (self.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (MAX_JOINTS,), np.float32)
        self._body_key: tuple[Any, ...] | None = None
        self._goal = np.zeros(3)
        self._goal_t = (0.0, 0.0, 0.0)
        super().__init__(task, render_mode)  # type: ignore[arg-type]

    def _apply_task(self, task: Task, previous: Task | None) -> None:
        assert isinstance(task, ReachTask)
        if task.body_key() != self._body_key:
            self._build_scene(task)
            self._body_key = task.body_key()
        n = task.n_joints
        self._n = n
        self._gain = np.asarray(task.actuator_gains) * np.asarray(task.actuator_signs)
        self._mask = np.zeros(MAX_JOINTS, dtype=np.float32)
        self._mask[:n] = 1.0
        self._limits = np.asarray(task.joint_limits)
        self._forces = list(task.joint_efforts) or [MAX_EFFORT] * n
        self._centres = np.asarray(task.joint_centres) if task.joint_centres else None
        self._success_distance = task.success_distance
        self._obs_template = np.zeros(self.obs_dim, dtype=np.float32)
        self._obs_template[21:28] = self._mask
        self._set_goal(self._goal)

    def _build_scene(self, task: ReachTask) -> None:
        sim = self.sim
        sim.reset_world()
        c = sim.client
        self._ground = sim.load_urdf_file(shared_urdf("ground.urdf"))
        self._moving_links: list[int] = []
        self._floor_links: list[int] | None = None
        self._floor_z = 0.0
        self._hold: np.ndarray | None = None
        self._hold_key: tuple[Any, ...] | None = None
        if task.urdf_path is None:
            text = serial_arm_urdf(
                task.link_lengths,
                task.joint_axes,
                task.link_masses,
                task.joint_damping,
                task.joint_limits,
                (MAX_EFFORT,) * task.n_joints,
                base_height=BASE_HEIGHT,
            )
            self.robot = sim.load_urdf_text(text)
            ee_name = "ee"
        else:
            self.robot = self._load_file_arm(task)
            self._joints, self._ee = self._hold_all_but_the_chain(task)
            parents = [
                p.getJointInfo(self.robot, i, physicsClientId=c)[16]
                for i in range(p.getNumJoints(self.robot, physicsClientId=c))
            ]
            moving = {self._joints[0]}  # the links the arm's joints move (children come after parents)
            for i, parent in enumerate(parents):
                if parent in moving:
                    moving.add(i)
            self._moving_links = sorted(moving)
            for i in self._moving_links:
                _with_armature(self.robot, i, c)
            # the floor goes under the robot: a pedestal (Baxter's) or an arm file rooted at its
            # shoulder (TALOS's) reaches below the origin, where the floor would cut through it
            n = p.getNumJoints(self.robot, physicsClientId=c)
            lowest = min(p.getAABB(self.robot, i, physicsClientId=c)[0][2] for i in range(-1, n))
            if lowest < -FLOOR_CLEARANCE:
                self._floor_z = lowest - FLOOR_CLEARANCE
                p.resetBasePositionAndOrientation(self._ground, [0, 0, self._floor_z], [0, 0, 0, 1], physicsClientId=c)
            self._add_goal_marker(task)
            return
        movable, ee_index = [], -1
        for i in range(p.getNumJoints(self.robot, physicsClientId=c)):
            info = p.getJointInfo(self.robot, i, physicsClientId=c)
            if info[2] == p.JOINT_REVOLUTE:
                movable.append(i)
            if info[12].decode() == ee_name:
                ee_index = i
        if len(movable) != task.n_joints:
            raise MetarobotError(f"robot has {len(movable)} revolute joints, task says {task.n_joints}")
        if ee_index < 0:
            raise MetarobotError(f"robot has no link named {ee_name!r}")
        self._joints = movable
        self._ee = ee_index
        # disable the default velocity motors' friction before our own velocity commands
        p.setJointMotorControlArray(
            self.robot,
            movable,
            p.VELOCITY_CONTROL,
            targetVelocities=[0.0] * len(movable),
            forces=[MAX_EFFORT] * len(movable),
            physicsClientId=c,
        )
        self._add_goal_marker(task)

    def _add_goal_marker(self, task: ReachTask) -> None:
        self._goal_marker = self.sim.add_marker(max(0.035, task.success_distance * 0.7), rgba=(0.1, 0.85, 0.1, 1.0))

    def _load_file_arm(self, task: ReachTask) -> int:
        """The file's robot as it is, or, where it has more links than PyBullet can answer for,
        a copy without its bare frames (the task's chain and tip kept)."""
        model = UrdfModel.read(task.urdf_path)  # type: ignore[arg-type]
        if len(model.links) <= URDF_MAX_LINKS:
            return self.sim.load_urdf_file(task.urdf_path, base_position=(0, 0, 0))  # type: ignore[arg-type]
        keep = [task.ee_link or "", *(j.child for j in model.chain(task.ee_link or ""))]
        return self.sim.load_urdf_text(rigid_copy(model.path, {}, keep=keep))

    def _hold_all_but_the_chain(self, task: ReachTask) -> tuple[list[int], int]:
        """Joint indices of the task's chain and the end-effector link's index in a file's
        robot; every other joint (fingers, tool changers) is held at 0 clamped into its range,
        a mimic joint at ``multiplier * held + offset`` of the joint it mimics."""
        c = self.sim.client
        model = UrdfModel.read(task.urdf_path)  # type: ignore[arg-type]
        give_inertia_to_empty_links(self.robot, model.masses, model.root, c, fixed_base=True)
        index: dict[str, int] = {}
        link_index: dict[str, int] = {}
        for i in range(p.getNumJoints(self.robot, physicsClientId=c)):
            info = p.getJointInfo(self.robot, i, physicsClientId=c)
            index[info[1].decode()] = i
            link_index[info[12].decode()] = i
        # a task saved before joint_names existed: the revolute joints of the chain to its tip
        names = task.joint_names or tuple(j.name for j in model.chain(task.ee_link or "") if j.revolute)
        missing = [name for name in names if name not in index]
        if missing or task.ee_link not in link_index:
            raise MetarobotError(
                f"URDF {task.urdf_path} has no joint(s) {missing} or no link {task.ee_link!r} (the task's arm)"
            )
        for name, q in model.held_positions(names).items():
            if name not in index:
                continue  # a joint PyBullet merged away
            p.resetJointState(self.robot, index[name], q, 0.0, physicsClientId=c)
            effort = model.joint(name).effort or MAX_EFFORT
            p.setJointMotorControl2(
                self.robot, index[name], p.POSITION_CONTROL, targetPosition=q, force=max(effort, MAX_EFFORT),
                physicsClientId=c,
            )  # fmt: skip
        joints = [index[name] for name in names]
        p.setJointMotorControlArray(
            self.robot, joints, p.VELOCITY_CONTROL, targetVelocities=[0.0] * len(joints),
            forces=list(task.joint_efforts) or [MAX_EFFORT] * len(joints), physicsClientId=c,
        )  # fmt: skip
        return joints, link_index[task.ee_link]  # type: ignore[index]

    # -- kinematics -------------------------------------------------------------------------
    def _set_joints(self, q: np.ndarray) -> None:
        c = self.sim.client
        for j, qi in zip(self._joints, q):
            p.resetJointState(self.robot, j, float(qi), 0.0, physicsClientId=c)

    def _tip(self) -> np.ndarray:
        state = p.getLinkState(self.robot, self._ee, computeForwardKinematics=True, physicsClientId=self.sim.client)
        return np.asarray(state[4])

    def _joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        states = p.getJointStates(self.robot, self._joints, physicsClientId=self.sim.client)
        q = np.fromiter((s[0] for s in states), float, self._n)
        qd = np.fromiter((s[1] for s in states), float, self._n)
        return q, qd

    def _obs(self, fresh_kinematics: bool = False) -> tuple[np.ndarray, tuple[float, float, float], bool]:
        """Observation, tip position (m), and whether the state is sane (finite, not exploded).

        Kept lean: this runs every control step, and physics should be most of a step."""
        c = self.sim.client
        states = p.getJointStates(self.robot, self._joints, physicsClientId=c)
        # link frames are current after stepSimulation; only a reset needs forward kinematics
        tip = p.getLinkState(self.robot, self._ee, computeForwardKinematics=fresh_kinematics, physicsClientId=c)[4]
        n = self._n
        q = self._read_angles(np.array([s[0] for s in states]))
        qd = [s[1] for s in states]
        obs = self._obs_template.copy()
        obs[0:n] = np.sin(q)
        obs[7 : 7 + n] = np.cos(q)
        obs[14 : 14 + n] = qd
        obs[14 : 14 + n] *= 1.0 / VEL_SCALE
        self._believe(obs, q, tip)
        check = sum(qd) + tip[0] + tip[1] + tip[2]
        sane = math.isfinite(check) and max(abs(tip[0]), abs(tip[1]), abs(tip[2])) < OBS_BOUND
        np.clip(obs, -OBS_BOUND, OBS_BOUND, out=obs)
        return obs, tip, sane

    def _read_angles(self, q: np.ndarray) -> np.ndarray:
        """The joint angles the observation shows for the true ``q`` (rad): here ``q`` itself."""
        return q

    def _believe(self, obs: np.ndarray, q: np.ndarray, tip: tuple[float, float, float]) -> None:
        """Write the tip and goal - tip into ``obs`` (here the true ``tip``; a later version writes
        what the robot believes from the read angles ``q``)."""
        obs[28:31] = tip
        gx, gy, gz = self._goal_t
        obs[34:37] = ((gx - tip[0]) / ERROR_SCALE, (gy - tip[1]) / ERROR_SCALE, (gz - tip[2]) / ERROR_SCALE)

    # -- gym API ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        task: ReachTask = self.task  # type: ignore[assignment]
        half = self._limits
        if task.urdf_path is not None:  # a file's +-2 pi joint (UR's) draws within one turn
            half = np.minimum(half, math.pi)
        spread = task.goal_spread * half
        start_spread = 0.1 * half
        centre = self._centres if self._centres is not None else 0.0  # a file's arm: its ranges' centres
        if self._floor_links is None:  # the moving links clear of the floor at the ranges' centres
            self._set_joints(centre + np.zeros(self._n))
            self._floor_links = [i for i in self._moving_links if self._clear_of_floor([i])]
        if task.urdf_path is not None:
            effort = np.asarray(list(task.joint_efforts) or [MAX_EFFORT] * self._n)
            self._forces = list(effort + self._gravity_hold(task, centre, spread))
        for _ in range(50 if task.urdf_path is None else 200):
            # goals reachable (a tip pose of the arm), above the floor, not at the start; a file's
            # arm also keeps its links off the floor at the goal's pose and at the start
            self._set_joints(centre + rng.uniform(-spread, spread))
            goal = self._tip()
            clear = self._clear_of_floor(self._floor_links)
            q0 = centre + rng.uniform(-start_spread, start_spread)
            self._set_joints(q0)
            tip0 = self._tip()
            far = np.linalg.norm(goal - tip0) > 2 * task.success_distance
            if goal[2] > self._floor_z + 0.03 and far and clear and self._clear_of_floor(self._floor_links):
                break
        self._set_goal(goal)
        self._steps = 0
        obs, tip, _ = self._obs(fresh_kinematics=True)
        dist = math.dist(self._goal_t, tip)
        return obs, {"is_success": dist < task.success_distance, "distance": dist}

    def _gravity_hold(self, task: ReachTask, centre: Any, spread: np.ndarray) -> np.ndarray:
        """Per chain joint of a file's arm, the largest torque (N*m) gravity puts on it, payload
        included, over ``HOLD_POSES`` poses of the goals' draw: a real arm's controller
        compensates gravity, so each motor gets this on top of the file's effort. Without it,
        Baxter's shoulder (gravity 0.78-1.09 of its effort; the real one has springs the URDF
        does not describe) and TALOS's moved at a tenth of their commanded speed."""
        key = (self._body_key, getattr(task, "payload_mass", 0.0))
        if self._hold is not None and self._hold_key == key:
            return self._hold
        c = self.sim.client
        n_all = p.getNumJoints(self.robot, physicsClientId=c)
        movable = [i for i in range(n_all) if p.getJointInfo(self.robot, i, physicsClientId=c)[2] != p.JOINT_FIXED]
        q_all = [p.getJointState(self.robot, i, physicsClientId=c)[0] for i in movable]
        dof = [movable.index(j) for j in self._joints]
        rng = np.random.default_rng(0)  # the same poses every time: not the episode's draw
        hold = np.zeros(self._n)
        # Bullet's inverse dynamics prints a warning per joint whose file axis is not of unit
        # length (an iCub's): to the log, never to a command's stdout
        with pybullet_output_to_log("computing gravity torques"):
            for _ in range(HOLD_POSES):
                q = list(q_all)
                for d, qi in zip(dof, centre + rng.uniform(-spread, spread)):
                    q[d] = float(qi)
                tau = p.calculateInverseDynamics(self.robot, q, [0.0] * len(q), [0.0] * len(q), physicsClientId=c)
                hold = np.maximum(hold, np.abs(np.asarray(tau)[dof]))
        self._hold, self._hold_key = hold, key
        return hold

    def _clear_of_floor(self, links: list[int]) -> bool:
        """Whether each of ``links`` is at least ``FLOOR_CLEARANCE`` above the floor. A file's
        arm checks the links its joints move that are clear at its ranges' centres (a generated
        arm checks none: its goals are drawn as they always were). A UR arm's range centres lay
        it along the floor, so a start drawn around them put it inside the floor, jammed."""
        c = self.sim.client
        return not any(
            p.getClosestPoints(self.robot, self._ground, FLOOR_CLEARANCE, i, -1, physicsClientId=c) for i in links
        )

    def _set_goal(self, goal: np.ndarray) -> None:
        self._goal = np.asarray(goal, dtype=np.float64)
        x, y, z = (float(v) for v in self._goal)
        self._goal_t = (x, y, z)
        self._obs_template[31:34] = self._goal
        self.sim.move_body(self._goal_marker, self._goal_t)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)[: self._n]
        a = np.minimum(np.maximum(a, -1.0), 1.0)
        c = self.sim.client
        p.setJointMotorControlArray(
            self.robot,
            self._joints,
            p.VELOCITY_CONTROL,
            targetVelocities=(self._gain * a).tolist(),
            forces=self._forces,
            physicsClientId=c,
        )
        self.sim.step(CONTROL_SUBSTEPS)
        self._steps += 1
        obs, tip, sane = self._obs()
        if not sane:
            # physics blow-up: end the episode with a flag, keep the observation finite
            info = {"physics_error": True, "is_success": False, "distance": float("nan")}
            return np.zeros(self.obs_dim, np.float32), -10.0, True, False, info
        dist = math.dist(self._goal_t, tip)
        success = dist < self._success_distance
        reward = -dist + SUCCESS_BONUS * success - 0.01 * float(a @ a)
        truncated = self._steps >= EPISODE_STEPS
        return obs, reward, False, truncated, {"is_success": success, "distance": dist}

    def camera(self) -> dict[str, Any]:
        reach = self.task.reach + BASE_HEIGHT  # type: ignore[attr-defined]
        # a sphere of radius ~reach around the base fills a 60-degree view from ~1.7 reach away
        return {"target": (0.0, 0.0, 0.4 * reach), "distance": 0.25 + 1.7 * reach, "yaw": 50.0, "pitch": -20.0}


def describe_arm(task: ReachTask) -> dict[str, Any]:
    """What metarobot read from a file's arm (for ``metarobot inspect`` and ``adapt``):
    the chain root -> end effector with each joint's type, axis, range (rad), effort (N*m),
    the length to the next joint (m) and the mass it moves (kg), and the joints held still."""
    if task.urdf_path is None:
        raise MetarobotError("this reach task has no URDF file to describe")
    model = UrdfModel.read(task.urdf_path)
    names = task.joint_names or tuple(j.name for j in model.chain(task.ee_link or "") if j.revolute)
    chain = []
    for i, name in enumerate(names):
        j = model.joint(name)
        lo, hi = task.joint_centres[i] - task.joint_limits[i], task.joint_centres[i] + task.joint_limits[i]
        chain.append(
            {
                "joint": name,
                "type": j.kind,
                "axis": task.joint_axes[i],
                "range_rad": [round(lo, 4), round(hi, 4)] if j.kind == "revolute" else "continuous",
                "effort_Nm": task.joint_efforts[i] if task.joint_efforts else MAX_EFFORT,
                "length_to_next_m": task.link_lengths[i],
                "mass_moved_kg": task.link_masses[i],
            }
        )
    held = [
        j.name + (f" (mimics {j.mimic})" if j.mimic else "") for j in model.joints if j.movable and j.name not in names
    ]
    return {
        "file": task.urdf_path,
        "robot": model.name,
        "root_link": model.root,
        "ee_link": task.ee_link,
        "joints": task.n_joints,
        "chain": chain,
        "held_still": held,
        "reach_m": round(task.reach, 4),
        "goals": f"tip poses of joint angles within {task.goal_spread:g} of each joint's half range around its centre",
    }
