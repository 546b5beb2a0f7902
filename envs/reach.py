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
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet as p
from metarobot.envs.base import MetaRobotEnv
from metarobot.envs.sim import shared_urdf
from metarobot.envs.urdf_builder import AXES, read_urdf, serial_arm_urdf, urdf_floats

from metarobot.errors import MetarobotError
from metarobot.family import Range, Task, TaskFamily, round_params

MAX_JOINTS = 7
CONTROL_SUBSTEPS = 8  # 240 Hz physics / 8 = 30 Hz control
EPISODE_STEPS = 60
OBS_DIM = 4 * MAX_JOINTS + 9
VEL_SCALE = 3.0  # rad/s, divides joint velocities in the observation
BASE_HEIGHT = 0.05
MAX_EFFORT = 60.0  # N*m per joint
ERROR_SCALE = 0.1  # m: goal - tip is observed in units of 10 cm, so small errors still show
SUCCESS_BONUS = 0.5  # reward per step spent within the success distance
OBS_BOUND = 20.0  # |observation| never exceeds this (positions in m, scaled velocities)


@dataclasses.dataclass(frozen=True)
class ReachTask(Task):
    """One serial arm and its goal distribution. Lengths in m, masses in kg, damping in
    N*m*s/rad, limits in rad (symmetric), gains in rad/s per unit action.

    Goals are tip positions of joint configurations drawn uniformly within ``goal_spread``
    times each joint's limit, so every goal is reachable. With ``urdf_path`` set, the body
    comes from that file and the geometric fields describe it (read from the file).
    """

    family: ClassVar[str] = "reach"

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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        n = self.n_joints
        if not isinstance(n, int) or not 1 <= n <= MAX_JOINTS:
            raise MetarobotError(f"reach task n_joints={n!r} is out of range (1..{MAX_JOINTS})")
        for name in (
            "link_lengths",
            "joint_axes",
            "link_masses",
            "joint_damping",
            "joint_limits",
            "actuator_gains",
            "actuator_signs",
        ):
            values = getattr(self, name)
            if not isinstance(values, tuple) or len(values) != n:
                raise MetarobotError(f"reach task {name} must have {n} entries, got {values!r}")
        checks = (
            ("link_lengths", 0.01, 2.0),
            ("link_masses", 0.0, 50.0),
            ("joint_damping", 0.0, 10.0),
            ("joint_limits", 0.05, 2 * math.pi),
            ("actuator_gains", 0.05, 20.0),
        )
        for name, low, high in checks:
            for v in getattr(self, name):
                if not (isinstance(v, int | float) and low <= v <= high):
                    raise MetarobotError(f"reach task {name} value {v!r} is out of range [{low}, {high}]")
        for a in self.joint_axes:
            if a not in AXES and self.urdf_path is None:
                raise MetarobotError(f"reach task joint axis {a!r} is not one of x, y, z")
        for s in self.actuator_signs:
            if s not in (1, -1):
                raise MetarobotError(f"reach task actuator sign {s!r} must be +1 or -1")
        if not 0.05 <= self.goal_spread <= 1.0:
            raise MetarobotError(f"reach task goal_spread {self.goal_spread!r} is out of range [0.05, 1]")
        if not 0.005 <= self.success_distance <= 0.5:
            raise MetarobotError(f"reach task success_distance {self.success_distance!r} is out of range [0.005, 0.5]")

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
        )

    @property
    def reach(self) -> float:
        """Upper bound of the tip's distance from the first joint (m)."""
        return float(sum(self.link_lengths))


@dataclasses.dataclass(frozen=True)
class ReachSpace:
    """Training ranges of the ``reach`` family (and the ``ood`` shifts outside them)."""

    n_joints: tuple[int, ...] = (3, 4, 5)
    link_length: Range = Range(0.12, 0.25, "m")
    link_mass: Range = Range(0.2, 1.0, "kg")
    joint_damping: Range = Range(0.05, 0.3, "N*m*s/rad")
    joint_limit: Range = Range(2.0, 2.8, "rad")
    actuator_gain: Range = Range(1.0, 2.0, "rad/s")
    #: probability that one joint (chosen uniformly) is wired reversed
    reversed_probability: float = 0.5
    # ood: joint counts never seen in training, and values outside the ranges above
    ood_n_joints: tuple[int, ...] = (2, 6, 7)
    ood_link_length_short: Range = Range(0.07, 0.11, "m")
    ood_link_length_long: Range = Range(0.27, 0.35, "m")
    ood_link_mass: Range = Range(1.2, 2.0, "kg")
    ood_actuator_gain_low: Range = Range(0.5, 0.9, "rad/s")
    ood_actuator_gain_high: Range = Range(2.2, 3.0, "rad/s")


class ReachFamily(TaskFamily):
    name = "reach"
    env_id = "metarobot/Reach-v0"
    task_type = ReachTask
    summary = "procedural serial arms (2-7 revolute joints) reaching goals in their workspace"
    episode_steps = EPISODE_STEPS
    action_mask_slice = (3 * MAX_JOINTS, 4 * MAX_JOINTS)

    def __init__(self, space: ReachSpace | None = None) -> None:
        self.space = space or ReachSpace()

    def _build(
        self, rng: np.random.Generator, n: int, lengths: Any = None, masses: Any = None, gains: Any = None
    ) -> ReachTask:
        s = self.space
        axes = ("z",) + tuple(str(rng.choice(["y", "x"], p=[0.7, 0.3])) for _ in range(n - 1))
        reversed_joint = int(rng.integers(n)) if rng.random() < s.reversed_probability else -1
        signs = tuple(-1 if i == reversed_joint else 1 for i in range(n))
        return ReachTask(
            n_joints=n,
            link_lengths=round_params(lengths if lengths is not None else s.link_length.sample(rng, n)),
            joint_axes=axes,
            link_masses=round_params(masses if masses is not None else s.link_mass.sample(rng, n)),
            joint_damping=round_params(s.joint_damping.sample(rng, n)),
            joint_limits=round_params(s.joint_limit.sample(rng, n)),
            actuator_gains=round_params(gains if gains is not None else s.actuator_gain.sample(rng, n)),
            actuator_signs=signs,
        )

    def _sample_in_range(self, rng: np.random.Generator) -> ReachTask:
        n = int(rng.choice(self.space.n_joints))
        return self._build(rng, n)

    def _sample_ood(self, rng: np.random.Generator) -> ReachTask:
        s = self.space
        shift = int(rng.integers(4))
        n = int(rng.choice(s.ood_n_joints)) if shift == 0 else int(rng.choice(s.n_joints))
        lengths = masses = gains = None
        if shift == 1:
            lengths = (s.ood_link_length_long if rng.random() < 0.5 else s.ood_link_length_short).sample(rng, n)
        elif shift == 2:
            gains = (s.ood_actuator_gain_high if rng.random() < 0.5 else s.ood_actuator_gain_low).sample(rng, n)
        elif shift == 3:
            masses = s.ood_link_mass.sample(rng, n)
        return self._build(rng, n, lengths, masses, gains)

    def make_env(self, task: Task, render_mode: str | None = None) -> ReachEnv:
        return ReachEnv(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def ranges(self) -> dict[str, str]:
        s = self.space
        return {
            "n_joints": f"{list(s.n_joints)} (ood: {list(s.ood_n_joints)})",
            "link_length": f"{s.link_length} (ood: {s.ood_link_length_short} or {s.ood_link_length_long})",
            "joint_axes": "first z, then y (70%) or x (30%)",
            "link_mass": f"{s.link_mass} (ood: {s.ood_link_mass})",
            "joint_damping": str(s.joint_damping),
            "joint_limit": f"+/- {s.joint_limit}",
            "actuator_gain": f"{s.actuator_gain} (ood: {s.ood_actuator_gain_low} or {s.ood_actuator_gain_high})",
            "actuator_sign": f"one joint wired reversed (-1) with probability {s.reversed_probability}, else all +1",
            "success": "tip within 0.05 m of the goal at the end of a 60-step (2 s) episode",
        }

    def task_from_urdf(self, path: Path, ee_link: str | None = None, **options: Any) -> ReachTask:
        return arm_task_from_urdf(path, ee_link=ee_link, **options)


# ---------------------------------------------------------------------------------------------
# A user's own arm


def arm_task_from_urdf(
    path: Path | str,
    ee_link: str | None = None,
    actuator_gains: float | tuple[float, ...] = 1.5,
    actuator_signs: tuple[int, ...] | None = None,
) -> ReachTask:
    """A reach task whose body is the serial arm in ``path``: up to 7 revolute/continuous joints,
    fixed joints allowed in between; the tip is ``ee_link`` or the last link of the chain."""
    path = Path(path)
    root = read_urdf(path)
    links = [lk.get("name") for lk in root.findall("link")]
    if not links:
        raise MetarobotError(f"URDF {path} has no links")
    joints = root.findall("joint")
    children: dict[str, list[ET.Element]] = {}
    child_links = set()
    for j in joints:
        parent_el, child_el = j.find("parent"), j.find("child")
        if parent_el is None or child_el is None:
            raise MetarobotError(f"URDF {path}: joint {j.get('name')!r} lacks a parent or child")
        children.setdefault(parent_el.get("link", ""), []).append(j)
        child_links.add(child_el.get("link"))
    roots = [lk for lk in links if lk not in child_links]
    if len(roots) != 1:
        raise MetarobotError(f"URDF {path} is not a single tree (root links: {roots})")
    chain: list[ET.Element] = []
    link = roots[0]
    while link in children:
        if len(children[link]) > 1:
            names = [j.get("name") for j in children[link]]
            raise MetarobotError(
                f"URDF {path} is not a serial arm: link {link!r} has {len(names)} child joints {names}"
            )
        j = children[link][0]
        chain.append(j)
        link = j.find("child").get("link")  # type: ignore[union-attr]
    chain_links = [roots[0]] + [j.find("child").get("link") for j in chain]  # type: ignore[union-attr]
    movable = []
    for j in chain:
        kind = j.get("type")
        if kind in ("revolute", "continuous"):
            movable.append(j)
        elif kind != "fixed":
            raise MetarobotError(
                f"URDF {path}: joint {j.get('name')!r} is {kind}; a reach arm takes revolute, "
                "continuous and fixed joints only"
            )
    if not movable:
        raise MetarobotError(f"URDF {path} has no revolute joint")
    if len(movable) > MAX_JOINTS:
        raise MetarobotError(f"URDF {path} has {len(movable)} revolute joints; at most {MAX_JOINTS} are supported")
    if ee_link is None:
        ee_link = chain_links[-1]
    elif ee_link not in chain_links:
        raise MetarobotError(f"URDF {path}: end-effector link {ee_link!r} is not on the arm's chain")
    ee_pos = chain_links.index(ee_link)
    last_movable = chain.index(movable[-1])
    if ee_pos <= last_movable:
        raise MetarobotError(f"URDF {path}: end-effector link {ee_link!r} is not after the last revolute joint")

    axes, limits, damping, masses, lengths = [], [], [], [], []
    mass_of = {}
    for lk in root.findall("link"):
        m = lk.find("inertial/mass")
        mass_of[lk.get("name")] = float(m.get("value", "0")) if m is not None else 0.0
    for j in movable:
        axis = urdf_floats(j.find("axis").get("xyz") if j.find("axis") is not None else None, "1 0 0")
        if len(axis) != 3 or not any(axis):
            raise MetarobotError(f"URDF {path}: joint {j.get('name')!r} has a bad axis {axis}")
        axes.append(" ".join(f"{v:g}" for v in axis))
        lim = j.find("limit")
        if j.get("type") == "continuous" or lim is None:
            limits.append(round(math.pi, 4))
        else:
            lo, hi = float(lim.get("lower", "0")), float(lim.get("upper", "0"))
            half = min(abs(lo), abs(hi)) if lo < 0 < hi else (hi - lo) / 2
            if not half > 0:
                raise MetarobotError(f"URDF {path}: joint {j.get('name')!r} has an empty range [{lo}, {hi}]")
            limits.append(math.floor(min(half, 2 * math.pi) * 1e4) / 1e4)  # rounded down: 2*pi stays in range
        dyn = j.find("dynamics")
        damping.append(round(float(dyn.get("damping", "0")) if dyn is not None else 0.0, 4))
        masses.append(round(mass_of.get(j.find("child").get("link"), 0.0), 4))  # type: ignore[union-attr]
    # link lengths: distance between successive joint origins along the chain (for framing)
    origins = []
    for j in chain[:ee_pos]:
        o = j.find("origin")
        origins.append(np.linalg.norm(urdf_floats(o.get("xyz") if o is not None else None, "0 0 0")))
    seg = [float(v) for v in origins[1:]] + [0.0]
    per_joint, acc, k = [], 0.0, 0
    for idx, j in enumerate(chain[:ee_pos]):
        acc += seg[idx] if idx < len(seg) else 0.0
        if j in movable:
            k += 1
        nxt = chain[idx + 1] if idx + 1 < len(chain[:ee_pos]) else None
        if nxt is None or nxt in movable:
            if k:
                per_joint.append(max(round(acc, 4), 0.01))
                acc = 0.0
    while len(per_joint) < len(movable):
        per_joint.append(0.05)
    lengths = [min(max(v, 0.01), 2.0) for v in per_joint[: len(movable)]]
    n = len(movable)
    gains = (float(actuator_gains),) * n if isinstance(actuator_gains, int | float) else tuple(actuator_gains)
    signs = actuator_signs or (1,) * n
    task = ReachTask(
        n_joints=n,
        link_lengths=tuple(lengths),
        joint_axes=tuple(axes),
        link_masses=tuple(min(m, 50.0) for m in masses),
        joint_damping=tuple(min(d, 10.0) for d in damping),
        joint_limits=tuple(limits),
        actuator_gains=gains,
        actuator_signs=tuple(signs),
        urdf_path=str(path.resolve()),
        ee_link=ee_link,
    )
    # PyBullet must load it too (meshes, inertias): fail here, with the reason, not mid-run
    env = ReachEnv(task)
    env.close()
    return task


# ---------------------------------------------------------------------------------------------
# The env


class ReachEnv(MetaRobotEnv):
    """Gymnasium env of one reach task (``metarobot/Reach-v0``)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}
    task_type = ReachTask
    max_episode_steps = EPISODE_STEPS

    def __init__(
        self, task: ReachTask | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = ReachFamily().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (OBS_DIM,), np.float32)
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
        self._forces = [MAX_EFFORT] * n
        self._success_distance = task.success_distance
        self._obs_template = np.zeros(OBS_DIM, dtype=np.float32)
        self._obs_template[21:28] = self._mask
        self._set_goal(self._goal)

    def _build_scene(self, task: ReachTask) -> None:
        sim = self.sim
        sim.reset_world()
        c = sim.client
        sim.load_urdf_file(shared_urdf("ground.urdf"))
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
            self.robot = sim.load_urdf_file(task.urdf_path, base_position=(0, 0, 0))
            ee_name = task.ee_link or ""
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
        self._goal_marker = sim.add_marker(max(0.035, task.success_distance * 0.7), rgba=(0.1, 0.85, 0.1, 1.0))

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
        q = np.array([s[0] for s in states])
        qd = [s[1] for s in states]
        obs = self._obs_template.copy()
        obs[0:n] = np.sin(q)
        obs[7 : 7 + n] = np.cos(q)
        obs[14 : 14 + n] = qd
        obs[14 : 14 + n] *= 1.0 / VEL_SCALE
        obs[28:31] = tip
        gx, gy, gz = self._goal_t
        obs[34:37] = ((gx - tip[0]) / ERROR_SCALE, (gy - tip[1]) / ERROR_SCALE, (gz - tip[2]) / ERROR_SCALE)
        check = sum(qd) + tip[0] + tip[1] + tip[2]
        sane = math.isfinite(check) and max(abs(tip[0]), abs(tip[1]), abs(tip[2])) < OBS_BOUND
        np.clip(obs, -OBS_BOUND, OBS_BOUND, out=obs)
        return obs, tip, sane

    # -- gym API ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        task: ReachTask = self.task  # type: ignore[assignment]
        spread = task.goal_spread * self._limits
        start_spread = 0.1 * self._limits
        for _ in range(50):  # goals reachable (a tip pose of the arm), above the floor, not at the start
            self._set_joints(rng.uniform(-spread, spread))
            goal = self._tip()
            q0 = rng.uniform(-start_spread, start_spread)
            self._set_joints(q0)
            tip0 = self._tip()
            if goal[2] > 0.03 and np.linalg.norm(goal - tip0) > 2 * task.success_distance:
                break
        self._set_goal(goal)
        self._steps = 0
        obs, tip, _ = self._obs(fresh_kinematics=True)
        dist = math.dist(self._goal_t, tip)
        return obs, {"is_success": dist < task.success_distance, "distance": dist}

    def _set_goal(self, goal: np.ndarray) -> None:
        self._goal = np.asarray(goal, dtype=np.float64)
        self._goal_t = tuple(float(v) for v in goal)
        self._obs_template[31:34] = self._goal
        self.sim.move_body(self._goal_marker, self._goal)

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
            return np.zeros(OBS_DIM, np.float32), -10.0, True, False, info
        dist = math.dist(self._goal_t, tip)
        success = dist < self._success_distance
        reward = -dist + SUCCESS_BONUS * success - 0.01 * float(a @ a)
        truncated = self._steps >= EPISODE_STEPS
        return obs, reward, False, truncated, {"is_success": success, "distance": dist}

    def camera(self) -> dict[str, Any]:
        reach = self.task.reach + BASE_HEIGHT  # type: ignore[attr-defined]
        # a sphere of radius ~reach around the base fills a 60-degree view from ~1.7 reach away
        return {"target": (0.0, 0.0, 0.4 * reach), "distance": 0.25 + 1.7 * reach, "yaw": 50.0, "pitch": -20.0}
