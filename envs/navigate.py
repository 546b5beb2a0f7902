"""The ``navigate`` family: procedural differential-drive robots that must drive to a goal
through a procedural map of obstacles.

Robot (hidden from the policy): chassis length and mass, wheel radius, track width (wheel
centre to wheel centre), and per wheel a motor gain (fraction of the commanded speed it
delivers) and a direction (+1, or -1 for a motor wired reversed); maximum wheel speed, wheel
and floor friction. Two frictionless ball casters (front and rear) keep the chassis level.
The family samples both motors normal or both reversed (p = 0.5: the robot drives mirrored,
which no fixed policy can handle both ways); a task may set each motor's direction on its own.

Map (per task): the robot starts at the origin facing ``start_yaw``; the goal lies at
``goal_x, goal_y``; 0-3 obstacles (boxes and cylinders, 0.3 m tall) are placed mostly between
start and goal, never covering the start or the goal, and always leave a path for the robot
(checked on an occupancy grid inflated by the robot's radius).

Control: 20 Hz (6 physics steps of 1/120 s). Action: 2 values in [-1, 1] (clipped): the left
and right wheel speed commands as a fraction of ``max_wheel_speed`` (rad/s). The motor turns
the wheel at ``sign * gain * command * max_wheel_speed`` with at most ``WHEEL_TORQUE`` N*m.

Observation (24 floats), all in the robot's frame (x forward, y left):
  0-1   goal position (m) / 2
  2     goal distance (m) / 2
  3-4   cos and sin of the goal bearing
  5-6   chassis velocity (m/s)
  7     yaw rate (rad/s) / 5
  8-23  a ring of 16 range readings (``rayTestBatch`` from the robot's centre, 0.16 m above
        the floor, every 22.5 degrees starting straight ahead, counter-clockwise), in units of
        the sensor range (1.5 m; 1 = nothing in range)
No task parameter (wheel radius, track, gains, directions, friction) appears in it.

Reward per step: ``5 * (d_prev - d) - 0.05 * [touching an obstacle] - 0.005 * |a|^2`` with ``d``
the distance from the robot's centre to the goal (m); ``+1`` and the end of the episode when
``d < success_distance`` (0.15 m). A flipped robot ends the episode. Episode: 100 steps (5 s).
Success (``info["is_success"]``): the goal was reached. ``info`` also reports ``collision``
(touching an obstacle this step), ``flipped`` and ``physics_error``.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet as p
from metarobot.envs.base import MetaRobotEnv
from metarobot.envs.sim import give_inertia_to_empty_links, shared_urdf
from metarobot.envs.urdf_builder import WHEEL_WIDTH, UrdfModel, diff_drive_urdf, rigid_copy

from metarobot.errors import MetarobotError
from metarobot.family import (
    FILE_ONLY,
    SB3_STEP_RECIPE,
    FloatParam,
    IntParam,
    Param,
    Range,
    SignParam,
    Task,
    TaskFamily,
    round_params,
)
from metarobot.validation import URDF_MAX_LINKS

TIMESTEP = 1.0 / 120.0
CONTROL_SUBSTEPS = 6  # 120 Hz physics / 6 = 20 Hz control
EPISODE_STEPS = 100
N_RAYS = 16
SENSOR_RANGE = 1.5  # m
SENSOR_HEIGHT = 0.16  # m above the floor (obstacles are OBSTACLE_HEIGHT tall)
OBSTACLE_HEIGHT = 0.3  # m
WHEEL_TORQUE = 2.0  # N*m per wheel motor
OBS_DIM = 8 + N_RAYS
OBS_BOUND = 10.0
PROGRESS_SCALE = 5.0  # reward per metre of progress toward the goal
COLLISION_PENALTY = 0.05
SUCCESS_BONUS = 1.0
#: identification: the controller turns toward the goal at this gain on its bearing (rad), in
#: units of full wheel speed (``bench/scripted_base.py``'s reference controller)
TURN_GAIN = 2.0
#: identification: a wheel whose estimated forward effect is under this (m/s per unit command)
#: is taken at ``PRIOR_GAIN`` (the estimate of a wheel not yet seen to move the robot)
MIN_WHEEL_GAIN = 0.02
PRIOR_GAIN = 0.5  # m/s of forward speed per unit command of one wheel: a wheel wired as labelled
#: identification: pseudo-transitions of the prior (ridge weight toward ``PRIOR_GAIN``)
PRIOR_WEIGHT = 0.5
ARENA = 2.8  # m: obstacles and goals stay within +/- this (the floor is 6 m x 6 m)
GRID = 0.04  # m: cell of the path check's occupancy grid
BOX, CYLINDER = 0, 1
OBSTACLE_KINDS = ("box", "cylinder")
IN_THE_WAY = 0.7  # share of generated obstacles placed near the straight line from start to goal


def footprint_radius(chassis_length: float, track_width: float) -> float:
    """Radius (m) of the circle around a generated robot's centre that holds its footprint."""
    return math.hypot(chassis_length / 2, track_width / 2 + WHEEL_WIDTH / 2)


@dataclasses.dataclass(frozen=True)
class NavigateTask(Task):
    """One wheeled robot and its map. Lengths in m, masses in kg, speeds in rad/s, angles in rad.

    Obstacles are flat tuples, one entry per obstacle: ``obstacle_kinds`` (0 box, 1 cylinder),
    ``obstacle_xy`` (x0, y0, x1, y1, ...), ``obstacle_sizes`` (box half side or cylinder
    radius) and ``obstacle_yaws``. With ``urdf_path`` set, the robot's body comes from that file
    (its wheels are the joints in ``left_wheels`` and ``right_wheels``) and the geometric
    fields are not used.
    """

    family: ClassVar[str] = "navigate"
    params: ClassVar[tuple[Param, ...]] = (
        # a file's robot may be bigger than any generated one (``file_bounds``)
        FloatParam(
            name="chassis_length", unit="m", doc="chassis length", bounds=(0.08, 1.0), file_bounds=(0.08, 3.0),
            train=Range(0.18, 0.30), ood=(Range(0.12, 0.16), Range(0.34, 0.42)),
            sampling="(ood together with track width and wheel radius: a smaller or a bigger robot)",
        ),
        FloatParam(
            name="track_width", unit="m", doc="wheel centre to wheel centre", bounds=(0.08, 1.0),
            file_bounds=(0.05, 3.0), train=Range(0.18, 0.30), ood=(Range(0.12, 0.16), Range(0.34, 0.42)),
        ),
        FloatParam(
            name="chassis_mass", unit="kg", doc="chassis mass", bounds=(0.1, 50.0), file_bounds=(0.1, 500.0),
            train=Range(1.0, 3.0),
        ),
        FloatParam(
            name="wheel_radius", unit="m", doc="wheel radius", bounds=(0.01, 0.3), file_bounds=(0.005, 0.5),
            train=Range(0.035, 0.05), ood=(Range(0.025, 0.032), Range(0.055, 0.07)),
        ),
        FloatParam(
            name="max_wheel_speed", unit="rad/s", doc="wheel speed at command +1", bounds=(0.5, 100.0),
            train=Range(15.0, 22.0),
        ),
        FloatParam(
            name="left_gain", doc="fraction of the commanded speed the left motor delivers", bounds=(0.05, 2.0),
            train=Range(0.7, 1.0), ood=(Range(0.4, 0.6),), sampling="(ood for one motor at a time)",
        ),
        FloatParam(
            name="right_gain", doc="fraction of the commanded speed the right motor delivers", bounds=(0.05, 2.0),
            train=Range(0.7, 1.0), ood=(Range(0.4, 0.6),), sampling="(ood for one motor at a time)",
        ),
        SignParam(
            name="left_sign", doc="left motor's direction (-1: wired reversed)", reversed_probability=0.5,
            sampling="for both motors together (the robot drives mirrored)",
        ),
        SignParam(
            name="right_sign", doc="right motor's direction (-1: wired reversed)", reversed_probability=0.5,
            sampling="for both motors together (the robot drives mirrored)",
        ),
        FloatParam(name="wheel_friction", doc="wheels' friction", bounds=(0.05, 3.0), train=Range(0.8, 1.2)),
        FloatParam(name="floor_friction", doc="floor's friction", bounds=(0.05, 3.0), train=Range(0.6, 1.0)),
        FloatParam(
            name="goal_distance", unit="m", doc="start to goal", field=False, train=Range(0.7, 1.2),
            sampling="at a uniform bearing",
        ),
        FloatParam(
            name="start_yaw", unit="rad", doc="the robot's heading at the start", bounds=(-4.0, 4.0),
            train=Range(-math.pi, math.pi),
        ),
        FloatParam(
            name="goal_x", unit="m", doc="goal position", bounds=(-ARENA, ARENA), sampling="from goal_distance"
        ),
        FloatParam(
            name="goal_y", unit="m", doc="goal position", bounds=(-ARENA, ARENA), sampling="from goal_distance"
        ),
        IntParam(
            name="obstacles", doc="boxes and cylinders, 0.3 m tall", field=False, train=(0, 1, 2, 3), ood=(5, 6, 7),
            sampling="mostly between start and goal, always leaving a path",
        ),
        IntParam(
            name="obstacle_kinds", doc="0 box, 1 cylinder", vector=True, bounds=(BOX, CYLINDER),
            sampling="either, with probability 1/2",
        ),
        FloatParam(
            name="obstacle_xy", unit="m", doc="obstacle centres (x0, y0, x1, y1, ...)", vector=True,
            bounds=(-ARENA, ARENA), sampling=f"{IN_THE_WAY:.0%} near the line from start to goal, clear of both",
        ),
        FloatParam(
            name="obstacle_sizes", unit="m", doc="box half side or cylinder radius", vector=True,
            bounds=(0.02, 1.0), train=Range(0.06, 0.15),
        ),
        FloatParam(
            name="obstacle_yaws", unit="rad", doc="obstacle headings", vector=True, train=Range(0.0, math.pi / 2)
        ),
        FloatParam(
            name="success_distance", unit="m", doc="success: the robot's centre this close to the goal",
            bounds=(0.02, 1.0),
        ),
        FloatParam(name="wheel_radii", unit="m", doc="each wheel's radius", vector=True, bounds=(0.005, 0.5)),
        FloatParam(name="wheel_torque", unit="N*m", doc="the motors' torque limit", bounds=(0.0, 1e4)),
        FloatParam(
            name="wheel_ramp", unit="s", bounds=(0.0, 10.0),
            doc="time the drive takes from rest to full wheel speed (0: as fast as the torque allows)",
        ),
        FloatParam(
            name="heading_offset", unit="rad", doc="the robot's forward from its root frame's x axis",
            bounds=(-4.0, 4.0),
        ),
    )  # fmt: skip

    chassis_length: float
    track_width: float
    chassis_mass: float
    wheel_radius: float
    max_wheel_speed: float
    left_gain: float
    right_gain: float
    left_sign: int
    right_sign: int
    wheel_friction: float
    floor_friction: float
    start_yaw: float
    goal_x: float
    goal_y: float
    obstacle_kinds: tuple[int, ...] = ()
    obstacle_xy: tuple[float, ...] = ()
    obstacle_sizes: tuple[float, ...] = ()
    obstacle_yaws: tuple[float, ...] = ()
    success_distance: float = 0.15
    urdf_path: str | None = None
    left_wheels: tuple[str, ...] = ()
    right_wheels: tuple[str, ...] = ()
    #: a file's base: each wheel's radius (m, left wheels then right, from its collision
    #: geometry; each wheel is driven at the same rim speed), the motors' torque limit (N*m)
    #: and the angle (rad) of the robot's forward from its root frame's x axis
    wheel_radii: tuple[float, ...] = dataclasses.field(default=(), metadata=FILE_ONLY)
    wheel_torque: float = dataclasses.field(default=0.0, metadata=FILE_ONLY)
    wheel_ramp: float = dataclasses.field(default=0.0, metadata=FILE_ONLY)
    heading_offset: float = dataclasses.field(default=0.0, metadata=FILE_ONLY)

    def validate(self) -> None:
        """The spec's bounds (``Task.validate``), then what they cannot say: as many sizes, yaws
        and coordinate pairs as obstacles, a radius per wheel of a file's robot, room for a
        generated chassis between its wheels."""
        super().validate()
        n = len(self.obstacle_kinds)
        if len(self.obstacle_xy) != 2 * n or len(self.obstacle_sizes) != n or len(self.obstacle_yaws) != n:
            raise MetarobotError(
                f"navigate task has {n} obstacle kinds but {len(self.obstacle_xy)} coordinates, "
                f"{len(self.obstacle_sizes)} sizes and {len(self.obstacle_yaws)} yaws (want {2 * n}, {n}, {n})"
            )
        if self.wheel_radii and len(self.wheel_radii) != len(self.left_wheels) + len(self.right_wheels):
            raise MetarobotError(f"navigate task wheel_radii {self.wheel_radii} must give one radius per wheel")
        if self.urdf_path is None and self.track_width <= WHEEL_WIDTH + 0.04:
            raise MetarobotError(f"navigate task track_width={self.track_width} leaves no room for the chassis")
        if self.urdf_path is not None and not (self.left_wheels and self.right_wheels):
            raise MetarobotError("a navigate task with urdf_path needs left_wheels and right_wheels")

    def body_key(self) -> tuple[Any, ...]:
        return (
            self.chassis_length,
            self.track_width,
            self.chassis_mass,
            self.wheel_radius,
            self.urdf_path,
            self.left_wheels,
            self.right_wheels,
        )

    def map_key(self) -> tuple[Any, ...]:
        return (self.obstacle_kinds, self.obstacle_xy, self.obstacle_sizes, self.obstacle_yaws)

    @property
    def radius(self) -> float:
        """Radius (m) of the circle around the generated robot's centre that holds its footprint."""
        return footprint_radius(self.chassis_length, self.track_width)

    def obstacles(self) -> list[tuple[int, float, float, float, float]]:
        """``(kind, x, y, size, yaw)`` per obstacle."""
        xy = self.obstacle_xy
        return [
            (self.obstacle_kinds[i], xy[2 * i], xy[2 * i + 1], self.obstacle_sizes[i], self.obstacle_yaws[i])
            for i in range(len(self.obstacle_kinds))
        ]


def path_exists(task: NavigateTask, inflate: float | None = None) -> bool:
    """Whether a disc of radius ``inflate`` (default: the robot's radius + 2 cm) can move from
    the start to the goal without touching an obstacle: A* on a 4-connected grid of 4 cm cells
    over the arena, a cell being free when its centre is farther than ``inflate`` from every
    obstacle (cells are tested as the search reaches them)."""
    inflate = task.radius + 0.02 if inflate is None else inflate
    shapes = []
    for kind, ox, oy, size, yaw in task.obstacles():
        shapes.append((kind == CYLINDER, ox, oy, size, math.cos(yaw), math.sin(yaw)))
    n = int(round(2 * ARENA / GRID)) + 1
    memo: dict[tuple[int, int], bool] = {}

    def free(cell: tuple[int, int]) -> bool:
        if cell not in memo:
            x, y = cell[0] * GRID - ARENA, cell[1] * GRID - ARENA
            ok = True
            for is_cylinder, ox, oy, size, c, s in shapes:
                dx, dy = x - ox, y - oy
                if is_cylinder:
                    dist = math.hypot(dx, dy) - size
                else:
                    lx, ly = abs(c * dx + s * dy) - size, abs(-s * dx + c * dy) - size
                    dist = math.hypot(max(lx, 0.0), max(ly, 0.0)) if max(lx, ly) > 0 else max(lx, ly)
                if dist <= inflate:
                    ok = False
                    break
            memo[cell] = ok
        return memo[cell]

    def cell_of(x: float, y: float) -> tuple[int, int]:
        return int(round((x + ARENA) / GRID)), int(round((y + ARENA) / GRID))

    start, goal = cell_of(0.0, 0.0), cell_of(task.goal_x, task.goal_y)
    if not (free(start) and free(goal)):
        return False
    gi, gj = goal
    best = {start: 0}
    heap = [(abs(start[0] - gi) + abs(start[1] - gj), 0, start)]
    while heap:
        _, cost, (i, j) = heapq.heappop(heap)
        if (i, j) == goal:
            return True
        if cost > best[(i, j)]:
            continue
        for nxt in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if 0 <= nxt[0] < n and 0 <= nxt[1] < n and cost + 1 < best.get(nxt, 1 << 30) and free(nxt):
                best[nxt] = cost + 1
                heapq.heappush(heap, (cost + 1 + abs(nxt[0] - gi) + abs(nxt[1] - gj), cost + 1, nxt))
    return False


class NavigateFamily(TaskFamily):
    """Robots drawn from the spec (``NavigateTask.params``), then a map; an ``ood`` task has a
    smaller or bigger robot, one much weaker motor or a denser map."""

    name = "navigate"
    env_id = "metarobot/Navigate-v0"
    task_type = NavigateTask
    summary = "procedural differential-drive robots (size, wheels, motor gains and wiring) in procedural maps"
    success = "robot centre within 0.15 m of the goal within 100 steps (5 s)"
    file_hint = (
        "--family navigate-v1 identifies each wheel's wiring online (80-100% of goals on the Husky, "
        "racecar and R2-D2 files; bench/RESULTS.md)"
    )
    episode_steps = EPISODE_STEPS
    control_hz = 20.0
    #: rl2 (64 trials side by side) measured best of metarobot's methods on the train split:
    #: 88-92% at every k, against 55-73% for rma-online with its fallback; with a fallback it
    #: read the same after adapting and 17 points lower before (bench/RESULTS.md, "navigate:
    #: rl2 at 64 trials"); the variants set their own
    meta_defaults: ClassVar[dict[str, Any]] = {
        "algo": "rl2", "iterations": 120, "meta_batch": 10, "episodes_per_update": 5,
    }  # fmt: skip
    #: a base read from the user's file gets rma-online's shipped policy: on the Husky and the
    #: racecar files (bigger, heavier or steered, unlike any generated robot) it reached 57-80%
    #: where rl2 reached 5-30% (bench/RESULTS.md, same section)
    file_algo = "rma-online"
    #: ``identify`` ships its controller untrained. The PPO of multitask, the oracle and
    #: rma-online's teacher takes SB3's step count (10 minibatches) and a policy that starts
    #: wider (log std 0): on the train split together they lifted multitask from 63% to 69%
    #: and the oracle from 47% to 55%, where either alone did worse (bench/RESULTS.md)
    algo_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "identify": {"iterations": 0},
        **{algo: dict(SB3_STEP_RECIPE) for algo in ("multitask", "oracle", "rma-online")},
        # rl2's trial is the evaluation protocol's (4 blocks of 5 episodes), at the shipped baselines' 2.4M env steps
        "rl2": {"inner_steps": 3, "iterations": 120},
    }
    #: the robot's parameters (the map is sensed): chassis length, track width, chassis mass,
    #: wheel radius, maximum wheel speed, left and right motor gain, wheel and floor friction
    #: (each mapped from its training range to [-1, 1]), left and right motor sign
    hidden: ClassVar[tuple[str, ...]] = (
        "chassis_length", "track_width", "chassis_mass", "wheel_radius", "max_wheel_speed", "left_gain",
        "right_gain", "wheel_friction", "floor_friction", "left_sign", "right_sign",
    )  # fmt: skip

    def _robot(self, rng: np.random.Generator) -> dict[str, Any]:
        sign = self.param("left_sign").sample(rng)  # both motors together
        robot: dict[str, Any] = {"left_sign": sign, "right_sign": sign}
        for name in (
            "chassis_length", "track_width", "chassis_mass", "wheel_radius", "max_wheel_speed", "left_gain",
            "right_gain", "wheel_friction", "floor_friction",
        ):  # fmt: skip
            robot[name] = self.param(name).sample(rng)
        return robot

    def _with_map(self, robot: dict[str, Any], n_range: tuple[int, int], rng: np.random.Generator) -> NavigateTask:
        """Draw goal, start heading and obstacles until the map is free at start and goal and
        has a path (after 50 failed draws, the map has no obstacles)."""
        goal_distance = self.param("goal_distance", FloatParam).train_range
        obstacle_size = self.param("obstacle_sizes", FloatParam).train_range
        obstacle_yaw = self.param("obstacle_yaws", FloatParam).train_range
        for attempt in range(51):
            d, bearing = goal_distance.sample(rng), rng.uniform(-math.pi, math.pi)
            gx, gy = d * math.cos(bearing), d * math.sin(bearing)
            n = int(rng.integers(n_range[0], n_range[1] + 1)) if attempt < 50 else 0
            kinds, xy, sizes, yaws = [], [], [], []
            radius = footprint_radius(robot["chassis_length"], robot["track_width"])
            for _ in range(n):
                for _ in range(100):
                    size = obstacle_size.sample(rng)
                    if rng.random() < IN_THE_WAY:  # near the straight line from start to goal
                        t, off = rng.uniform(0.3, 0.7), rng.uniform(-0.3, 0.3)
                        ox, oy = t * gx - off * math.sin(bearing), t * gy + off * math.cos(bearing)
                    else:
                        ox, oy = rng.uniform(-1.6, 1.6, size=2)
                    clearance = size * math.sqrt(2) + 0.05
                    if math.hypot(ox, oy) > clearance + radius and math.hypot(ox - gx, oy - gy) > clearance + radius:
                        break
                else:
                    continue
                kinds.append(int(rng.integers(2)))
                xy += [ox, oy]
                sizes.append(size)
                yaws.append(obstacle_yaw.sample(rng))
            task = NavigateTask(
                **robot,
                start_yaw=self.param("start_yaw").sample(rng),
                goal_x=round_params(gx),
                goal_y=round_params(gy),
                obstacle_kinds=tuple(kinds),
                obstacle_xy=round_params(xy),
                obstacle_sizes=round_params(sizes),
                obstacle_yaws=round_params(yaws),
            )
            if not task.obstacle_kinds or path_exists(task):
                return task
        raise AssertionError("unreachable")  # pragma: no cover

    def _obstacle_counts(self, ood: bool = False) -> tuple[int, int]:
        """Fewest and most obstacles of a map (training, or ``ood``: denser)."""
        obstacles = self.param("obstacles", IntParam)
        counts = obstacles.ood if ood else obstacles.train
        return min(counts), max(counts)

    def _sample_in_range(self, rng: np.random.Generator) -> NavigateTask:
        return self._with_map(self._robot(rng), self._obstacle_counts(), rng)

    def _sample_ood(self, rng: np.random.Generator) -> NavigateTask:
        robot = self._robot(rng)
        n_range = self._obstacle_counts()
        shift = int(rng.integers(3))
        if shift < 2:
            self._shift_robot(robot, shift, rng)
        else:  # a denser map
            n_range = self._obstacle_counts(ood=True)
        return self._with_map(robot, n_range, rng)

    def _shift_robot(self, robot: dict[str, Any], shift: int, rng: np.random.Generator) -> None:
        """Move ``robot`` out of the training ranges: ``shift`` 0, a robot smaller or bigger than
        any in training (the same ood range of each size); 1, one motor much weaker than the other."""
        if shift == 0:
            bigger = rng.random() < 0.5
            for name in ("chassis_length", "track_width", "wheel_radius"):
                r = self.param(name, FloatParam).ood[1 if bigger else 0]
                robot[name] = round_params(r.sample(rng))
        else:
            side = "left_gain" if rng.random() < 0.5 else "right_gain"
            robot[side] = self.param(side).sample_ood(rng)

    def describe(self, task: Task) -> dict[str, Any]:
        """What was read from the user's file behind ``task`` (``metarobot inspect``)."""
        return describe_base(task)  # type: ignore[arg-type]

    def identification(self) -> BaseIdentification:
        return BaseIdentification()

    def make_env(self, task: Task, render_mode: str | None = None) -> NavigateEnv:
        return NavigateEnv(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def task_from_urdf(
        self,
        path: Path,
        left_wheels: tuple[str, ...] | None = None,
        right_wheels: tuple[str, ...] | None = None,
        **options: Any,
    ) -> NavigateTask:
        return wheeled_task_from_urdf(path, left_wheels=left_wheels, right_wheels=right_wheels, **options)


def goal_wheel_speeds(bearing: Any, turn_gain: float = TURN_GAIN) -> Any:
    """The left and right wheel speeds (last axis; units of full speed, not yet scaled to at most
    1) that drive toward a goal at ``bearing`` (rad, robot frame; a tensor): ``(forward - turn,
    forward + turn)`` with ``forward`` the bearing's cosine and ``turn`` ``turn_gain`` times the
    bearing, clipped to 1. A goal behind the robot is driven to in reverse, the rear turned
    toward it, so no turn is more than a quarter circle (a 1 m skid-steer turns slowly: the
    Husky reached 80% of navigate-v1's goals this way in the 3 s window, 60% driving forward
    only). ``bench/scripted_base.py --reverse`` runs it with the wiring known."""
    import torch

    ahead = torch.cos(bearing) >= 0
    aim = torch.where(ahead, bearing, torch.remainder(bearing, 2 * math.pi) - math.pi)
    turn = (turn_gain * aim).clamp(-1.0, 1.0)
    forward = torch.cos(bearing)
    return torch.stack([forward - turn, forward + turn], dim=-1)


class BaseIdentification:
    """navigate's and navigate-v1's identification model (``metarobot.online.Identification``).

    How a base's hidden wiring shows: each wheel's signed forward effect (``k_L``, ``k_R``: m/s
    of forward speed per unit of its command, negative for a motor wired reversed, smaller for
    a weak motor or a small wheel). It is fitted by least squares over every transition seen,
    with the speed before the step as a third regressor (the momentum a heavy base carries from
    earlier commands): ``v' = a v + k_L u_L + k_R u_R``. A ridge prior of ``PRIOR_WEIGHT``
    transitions pulls toward ``a = 0`` and ``k = PRIOR_GAIN`` for both (a base wired as
    labelled). The statistics are ``z z^T`` and ``v' z`` for ``z = (v, u_L, u_R)``; the estimate
    is ``(k_L, k_R)``. Without the momentum term a base that had been turning looked wired
    backward after a change of command (bench/RESULTS.md: 73% of test goals after one episode
    with it left out, 97% with it).

    The controller wants ``goal_wheel_speeds`` of the goal's bearing and commands each wheel
    that divided by its signed effect, scaled as a whole to commands of at most 1. It ignores
    obstacles (navigate's maps have some; the range readings show them)."""

    dim = 2
    stats_dim = 9  # z z^T (6 unique) and v' z, for z = (v, u_L, u_R)

    def statistics(self, transitions: np.ndarray) -> np.ndarray:
        obs = transitions[:, :OBS_DIM]
        u = np.clip(transitions[:, OBS_DIM : OBS_DIM + 2], -1.0, 1.0)
        delta = transitions[:, OBS_DIM + 3 :]
        v, ul, ur = obs[:, 5], u[:, 0], u[:, 1]
        after = v + delta[:, 5]  # forward speed after the step (m/s)
        return np.stack([v * v, v * ul, v * ur, ul * ul, ul * ur, ur * ur, after * v, after * ul, after * ur], axis=1)

    def estimate(self, sums: np.ndarray) -> np.ndarray:
        sums = np.asarray(sums, np.float64).reshape(-1, self.stats_dim)
        n = len(sums)
        gram = np.empty((n, 3, 3))
        idx = [(0, 0, 0), (1, 0, 1), (2, 0, 2), (3, 1, 1), (4, 1, 2), (5, 2, 2)]
        for k, i, j in idx:
            gram[:, i, j] = gram[:, j, i] = sums[:, k]
        gram += PRIOR_WEIGHT * np.eye(3)
        target = sums[:, 6:9] + PRIOR_WEIGHT * np.array([0.0, PRIOR_GAIN, PRIOR_GAIN])
        coef = np.linalg.solve(gram, target[..., None])[..., 0]
        return coef[:, 1:].astype(np.float32)

    def action(self, obs: Any, estimate: Any) -> Any:
        import torch

        want = goal_wheel_speeds(torch.atan2(obs[..., 4], obs[..., 3]))
        small = estimate.abs() < MIN_WHEEL_GAIN
        gain = torch.where(small, torch.full_like(estimate, PRIOR_GAIN), estimate)
        command = want / gain
        return command / command.abs().amax(-1, keepdim=True).clamp(min=1e-6)


# ---------------------------------------------------------------------------------------------
# A user's own wheeled base


@dataclasses.dataclass(frozen=True)
class WheelLayout:
    """Wheels of a file's base as read from the URDF (root frame, all joints at 0): joint names
    per side, their centres (m), and the axle direction ``axle`` (unit, horizontal, pointing to
    the robot's left); the robot's forward is ``axle x up``."""

    left: tuple[str, ...]
    right: tuple[str, ...]
    centres: dict[str, tuple[float, float, float]]
    axle: tuple[float, float, float]

    @property
    def forward(self) -> np.ndarray:
        return np.cross(np.asarray(self.axle), (0.0, 0.0, 1.0))

    @property
    def heading_offset(self) -> float:
        """Angle (rad) of the robot's forward from the root frame's x axis."""
        f = self.forward
        return float(math.atan2(f[1], f[0]))


def wheel_layout(path: Path | str, model: UrdfModel | None = None) -> WheelLayout:
    """The wheels of a wheeled base: revolute/continuous joints (not mimic) on any link rigidly
    fixed to the root (fixed joints are followed: ROS's ``base_footprint -> base_link``) whose
    axle is horizontal and that carry no further joint (a leg's hip does), all along one axle
    direction (any horizontal axis), split into left and right by which side of their middle
    they sit. Links hung from the body on suspension travel count as fixed to it. Raises
    ``MetarobotError`` naming the reason when that is not clear-cut."""
    model = model or UrdfModel.read(path)
    path = model.path
    candidates, limbs = [], []
    for link in model.body_links():
        joints = [j for j in model.children(link) if j.revolute and j.mimic is None]
        if not joints:
            continue  # (its pose may not even parse: real files carry xacro leftovers in sensor frames)
        pos, rot = model.pose_in_root(link)
        for j in joints:
            xyz, r = j.origin(path)
            axis = rot @ r @ j.axis(path)
            if abs(axis[2]) > 0.1:
                continue  # not a wheel axle (steering, swivel or other joints)
            if any(k.mimic is None for k in model.joints_below(j.child)):
                limbs.append(j.name)  # a hip or shoulder: more joints hang from it, a wheel has none
                continue
            candidates.append((j.name, pos + rot @ xyz, axis / np.linalg.norm(axis[:2])))
    if not candidates:
        why = f"; {limbs} carry further joints (legs or arms?), not wheels" if limbs else ""
        raise MetarobotError(
            f"URDF {path}: found no left wheel (continuous joints with a horizontal axle on the root link or "
            f"links fixed to it){why}; name them with --left-wheels/--right-wheels"
        )
    a = candidates[0][2].copy()
    a[2] = 0.0
    a /= np.linalg.norm(a)
    if (a[1] if abs(a[1]) >= abs(a[0]) else -a[0]) < 0:  # +y (else -x) is the robot's left
        a = -a
    wheels = [(name, centre) for name, centre, axis in candidates if abs(float(axis @ a)) > 0.95]
    side = {name: float(centre @ a) for name, centre in wheels}
    middle = (max(side.values()) + min(side.values())) / 2
    left = tuple(n for n, s in side.items() if s > middle + 0.01)
    right = tuple(n for n, s in side.items() if s < middle - 0.01)
    unsure = [n for n in side if n not in left + right]
    if unsure and (left or right):
        raise MetarobotError(
            f"URDF {path}: cannot tell the side of wheel joint(s) {unsure}; name them with --left-wheels/--right-wheels"
        )
    if not left or not right:
        raise MetarobotError(
            f"URDF {path}: found no {'left' if not left else 'right'} wheel (continuous joints with a horizontal "
            "axle on the root link or links fixed to it); name them with --left-wheels/--right-wheels"
        )
    centres = {n: (float(c[0]), float(c[1]), float(c[2])) for n, c in wheels}
    return WheelLayout(left, right, centres, (float(a[0]), float(a[1]), float(a[2])))


def find_wheels(path: Path | str, model: UrdfModel | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Left and right wheel joints of a wheeled base (see ``wheel_layout``)."""
    layout = wheel_layout(path, model)
    return layout.left, layout.right


HOLD_CLEARANCE = 0.03  # m: a file's joint whose links stay this far above the floor is held still
STAND_TOLERANCE = 0.005  # m: a file's body link this close to the wheels' lowest point is on the floor
REFERENCE_SPEED = 0.75  # m/s: a file's robot's top speed (training robots: 0.5-1.1 m/s)
REFERENCE_FORCE_PER_KG = 2 * WHEEL_TORQUE / 0.0425 / 2.2  # N/kg that generated robots' motors give


def wheeled_task_from_urdf(
    path: Path | str,
    left_wheels: tuple[str, ...] | None = None,
    right_wheels: tuple[str, ...] | None = None,
    max_wheel_speed: float | None = None,
    map_from: NavigateTask | None = None,
) -> NavigateTask:
    """A navigate task whose robot is the wheeled base in ``path`` (a differential drive, or a
    skid-steer base with several wheels per side). Wheels are the named joints, or found from
    the URDF (``wheel_layout``) when none are named. The robot's fields are read from the file
    (measured on the loaded body): length along its forward axis, track width, total mass, each
    wheel's radius from its collision geometry; the wheel speed defaults to ``REFERENCE_SPEED``
    at the rim and the motors' torque to what generated robots have per kg. The map is
    ``map_from``'s (default: the first ``test`` map with a path wide enough for this robot)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise MetarobotError(f"cannot read URDF {path}: {'not a regular file' if path.exists() else 'no such file'}")
    model = UrdfModel.read(path)
    layout = None
    if not left_wheels or not right_wheels:
        layout = wheel_layout(path, model)
        left_wheels, right_wheels = tuple(left_wheels or layout.left), tuple(right_wheels or layout.right)
    left_wheels, right_wheels = tuple(left_wheels), tuple(right_wheels)
    overlap = set(left_wheels) & set(right_wheels)
    if overlap:
        raise MetarobotError(f"URDF {path}: joint(s) {sorted(overlap)} named as both left and right wheels")
    names = {j.name for j in model.joints}
    missing = [n for n in left_wheels + right_wheels if n not in names]
    if missing:
        raise MetarobotError(f"URDF {path} has no joint(s) {missing}; its joints: {sorted(names)}")
    maps = [map_from] if map_from is not None else NavigateFamily().heldout_tasks("test", 20)
    base = maps[0]
    assert isinstance(base, NavigateTask)
    task = dataclasses.replace(
        base, urdf_path=str(path), left_wheels=left_wheels, right_wheels=right_wheels, max_wheel_speed=15.0,
        left_gain=1.0, right_gain=1.0, left_sign=1, right_sign=1,
    )  # fmt: skip
    env = NavigateEnv(task)  # builds the robot: reports bad files, measures what the XML cannot say
    try:
        measured = env.measure_robot()
    finally:
        env.close()
    radii = measured["wheel_radii"]
    mean_radius = float(np.mean(radii))

    def clamp(name: str, value: float) -> float:  # a file's value kept within what a task may hold
        return NavigateTask.param(name, FloatParam).clamp(value, from_file=True)

    speed = max_wheel_speed if max_wheel_speed is not None else clamp("max_wheel_speed", REFERENCE_SPEED / mean_radius)
    mass = sum(model.masses.values())
    # the wheels' friction as the file states it (<contact><lateral_friction>), else the training middle
    stated = [
        model.friction[j.child]
        for j in model.joints
        if j.name in left_wheels + right_wheels and j.child in model.friction
    ]
    friction = float(np.mean(stated)) if stated else 1.0
    torque = REFERENCE_FORCE_PER_KG * max(mass, 0.1) * mean_radius / len(radii)
    robot = {
        "chassis_length": round(clamp("chassis_length", measured["length"]), 4),
        "track_width": round(clamp("track_width", measured["track_width"]), 4),
        "chassis_mass": round(clamp("chassis_mass", mass), 4),
        "wheel_radius": round(mean_radius, 4),
        "wheel_radii": tuple(round(r, 4) for r in radii),
        "wheel_torque": round(torque, 4),
        "max_wheel_speed": round(speed, 4),
        "heading_offset": round(measured["heading_offset"], 4),
        "wheel_friction": round(clamp("wheel_friction", friction), 4),
    }
    robot.update(_upright_limits(dataclasses.replace(task, **robot), path))  # type: ignore[arg-type]
    for candidate in maps:  # the first map whose path is wide enough for this robot
        task = dataclasses.replace(task, **_map_fields(candidate), **robot)  # type: ignore[arg-type]
        if not task.obstacle_kinds or path_exists(task):
            break
    return task


UPRIGHT_TILT = 15.0  # degrees: a base still tilted this much after coming to rest has fallen over
FALLEN_TILT = 75.0  # degrees: a base tilted this much on the way is on its side
#: (ramp s, torque, speed) tried in turn, the torque and speed as fractions of the reference
UPRIGHT_TRIES: tuple[tuple[float, float, float], ...] = (
    (0.0, 1.0, 1.0), (0.25, 1.0, 1.0), (0.5, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 0.5, 1.0), (1.0, 0.25, 1.0),
    (1.0, 0.25, 0.7), (1.0, 0.25, 0.5),
)  # fmt: skip
#: the test drive: full commands from rest, each for 1.5 s, then a reversal at full speed
TEST_DRIVE: tuple[tuple[tuple[float, float], ...], ...] = (
    ((1.0, 1.0),),
    ((-1.0, -1.0),),
    ((1.0, -1.0),),
    ((1.0, 0.3),),
    ((1.0, 1.0), (-1.0, -1.0)),
)


def _upright_limits(task: NavigateTask, path: Path) -> dict[str, float]:
    """The drive at which a file's base stays on its wheels: a tall one (a mobile manipulator's
    torso and arm) falls over at the accelerations and speeds the generated robots take. Each
    try drives the base on an empty floor (``TEST_DRIVE``, each leg followed by 1 s at rest);
    where it falls over (tilted by more than ``FALLEN_TILT`` degrees on the way, or
    ``UPRIGHT_TILT`` at rest), the next of ``UPRIGHT_TRIES`` ramps the commanded wheel speeds
    (as a real drive's acceleration limit does; R2-D2 falls over reversing at full torque),
    then lowers the torque, then the speed. A base that falls over even then is refused."""
    floor = dataclasses.replace(
        task, obstacle_kinds=(), obstacle_xy=(), obstacle_sizes=(), obstacle_yaws=(), goal_x=2.8, goal_y=2.8
    )  # an empty floor, the goal far off
    for ramp, torque, speed in UPRIGHT_TRIES:
        drive = {
            "wheel_ramp": ramp,
            "wheel_torque": round(task.wheel_torque * torque, 4),
            "max_wheel_speed": round(task.max_wheel_speed * speed, 4),
        }
        worst, rest = _test_drive_tilt(
            dataclasses.replace(
                floor,
                wheel_ramp=drive["wheel_ramp"],
                wheel_torque=drive["wheel_torque"],
                max_wheel_speed=drive["max_wheel_speed"],
            )  # fmt: skip
        )
        if worst <= FALLEN_TILT and rest <= UPRIGHT_TILT:
            return drive
    raise MetarobotError(
        f"URDF {path}: the base falls over on a test drive (tilted {worst:.0f} degrees) even at "
        f"{drive['max_wheel_speed'] * task.wheel_radius:.2f} m/s, reached in {ramp:g} s; check its masses and wheels"
    )


def _test_drive_tilt(task: NavigateTask) -> tuple[float, float]:
    """The largest tilt (degrees) of the base's up axis over ``TEST_DRIVE``, and the largest
    at the end of a leg's rest."""
    env = NavigateEnv(task)
    c = env.sim.client

    def tilt(up: np.ndarray) -> float:
        _, orn = p.getBasePositionAndOrientation(env.robot, physicsClientId=c)
        now = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3) @ up
        return math.degrees(math.acos(max(-1.0, min(1.0, float(now[2])))))

    worst = rest = 0.0
    try:
        for legs in TEST_DRIVE:
            env.reset(seed=0)
            _, orn = p.getBasePositionAndOrientation(env.robot, physicsClientId=c)
            up = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3).T[:, 2]  # world z in the base frame
            for action in (*legs, (0.0, 0.0)):
                for _ in range(30 if action != (0.0, 0.0) else 20):
                    env.step(np.asarray(action, dtype=np.float32))
                    worst = max(worst, tilt(up))
            rest = max(rest, tilt(up))
    finally:
        env.close()
    return worst, rest


def _map_fields(task: NavigateTask) -> dict[str, Any]:
    keys = ("start_yaw", "goal_x", "goal_y", "obstacle_kinds", "obstacle_xy", "obstacle_sizes", "obstacle_yaws")
    return {k: getattr(task, k) for k in keys}


# ---------------------------------------------------------------------------------------------


class NavigateEnv(MetaRobotEnv):
    """Gymnasium env of one navigate task (``metarobot/Navigate-v0``)."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}
    task_type = NavigateTask
    max_episode_steps = EPISODE_STEPS

    def __init__(
        self, task: NavigateTask | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = NavigateFamily().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._body_key: tuple[Any, ...] | None = None
        self._map_key: tuple[Any, ...] | None = None
        self._obstacles: list[int] = []
        angles = 2 * math.pi * np.arange(N_RAYS) / N_RAYS
        self._ray_cos, self._ray_sin = np.cos(angles), np.sin(angles)
        super().__init__(task, render_mode)  # type: ignore[arg-type]

    def sim_settings(self) -> dict[str, Any]:
        return {"timestep": TIMESTEP, "solver_iterations": 10}

    # -- scene ------------------------------------------------------------------------------
    def _apply_task(self, task: Task, previous: Task | None) -> None:
        assert isinstance(task, NavigateTask)
        if task.body_key() != self._body_key:
            self._build_robot(task)
            self._body_key = task.body_key()
            self._map_key = None
        if task.map_key() != self._map_key:
            self._build_map(task)
            self._map_key = task.map_key()
        c = self.sim.client
        p.changeDynamics(self._ground, -1, lateralFriction=task.floor_friction, physicsClientId=c)
        for j in self._left + self._right:
            p.changeDynamics(self.robot, j, lateralFriction=task.wheel_friction, physicsClientId=c)
        speed = task.max_wheel_speed
        self._wheel_gain = np.array(
            [task.left_sign * task.left_gain * speed * s for s in self._left_dir]
            + [task.right_sign * task.right_gain * speed * s for s in self._right_dir]
        )
        if task.wheel_radii:  # wheels of unequal radius: the same rim speed for every wheel
            self._wheel_gain *= float(np.mean(task.wheel_radii)) / np.asarray(task.wheel_radii)
        self._forces = [task.wheel_torque or WHEEL_TORQUE] * len(self._joints)
        # a ramped drive moves each wheel's target speed by at most this per control step
        self._ramp_step = (
            np.abs(self._wheel_gain) * CONTROL_SUBSTEPS * self.sim.timestep / task.wheel_ramp
            if task.wheel_ramp
            else None
        )
        self._n_left = len(self._left)
        self._goal = (task.goal_x, task.goal_y)
        self.sim.move_body(self._goal_marker, (task.goal_x, task.goal_y, 0.01))

    def _build_robot(self, task: NavigateTask) -> None:
        sim = self.sim
        sim.reset_world()
        self._obstacles = []  # gone with the world
        c = sim.client
        self._ground = sim.load_urdf_file(shared_urdf("ground.urdf"))
        if task.urdf_path is None:
            text = diff_drive_urdf(task.chassis_length, task.track_width, task.chassis_mass, task.wheel_radius)
            self.robot = sim.load_urdf_text(text, base_position=(0, 0, task.wheel_radius), fixed_base=False)
        else:
            self.robot = self._load_file_robot(task)
        names: dict[str, int] = {}
        for i in range(p.getNumJoints(self.robot, physicsClientId=c)):
            info = p.getJointInfo(self.robot, i, physicsClientId=c)
            names[info[1].decode()] = i
            if info[2] == p.JOINT_FIXED and "caster" in info[12].decode():
                p.changeDynamics(
                    self.robot, i, lateralFriction=0.0, rollingFriction=0.0, spinningFriction=0.0, physicsClientId=c
                )
        if task.urdf_path is None:
            self._left, self._right = [names["left_wheel_joint"]], [names["right_wheel_joint"]]
        else:
            missing = [n for n in task.left_wheels + task.right_wheels if n not in names]
            if missing:
                raise MetarobotError(f"URDF {task.urdf_path} has no joint(s) {missing}; its joints: {sorted(names)}")
            self._left = [names[n] for n in task.left_wheels]
            self._right = [names[n] for n in task.right_wheels]
            for j in self._left + self._right:
                kind = p.getJointInfo(self.robot, j, physicsClientId=c)[2]
                if kind != p.JOINT_REVOLUTE:
                    raise MetarobotError(f"URDF {task.urdf_path}: wheel joint {j} is not continuous/revolute")
        # rest pose: bottom of the robot on the floor; measure the footprint radius and the
        # direction each wheel joint turns the wheel (+1 when a positive speed rolls forward)
        p.resetBasePositionAndOrientation(self.robot, [0, 0, 1.0], [0, 0, 0, 1], physicsClientId=c)
        lo, hi = self._aabb()
        self._base_z = 1.0 - lo[2] + 0.002
        self._radius = float(math.hypot(max(abs(lo[0]), abs(hi[0])), max(abs(lo[1]), abs(hi[1]))))
        self._forward = self._forward_axis() if task.urdf_path is not None else np.array([1.0, 0.0, 0.0])
        # the base's frame in PyBullet is its inertial frame: heading = its yaw + this offset
        self._yaw_offset = math.atan2(self._forward[1], self._forward[0])
        self._left_dir = [self._forward_dir(j) for j in self._left]
        self._right_dir = [self._forward_dir(j) for j in self._right]
        joints = self._left + self._right
        if task.urdf_path is not None:  # other joints (casters, steering, passive wheels) turn freely
            passive = [i for i in range(p.getNumJoints(self.robot, physicsClientId=c)) if i not in joints]
            p.setJointMotorControlArray(
                self.robot, passive, p.VELOCITY_CONTROL, targetVelocities=[0.0] * len(passive),
                forces=[0.0] * len(passive), physicsClientId=c,
            )  # fmt: skip
        # no default motor friction on other joints; ours are driven below
        p.setJointMotorControlArray(
            self.robot, joints, p.VELOCITY_CONTROL, targetVelocities=[0.0] * len(joints),
            forces=[WHEEL_TORQUE] * len(joints), physicsClientId=c,
        )  # fmt: skip
        self._joints = joints
        self._forces = [WHEEL_TORQUE] * len(joints)
        self._goal_marker = self._make_goal_marker(task.success_distance)

    def _load_file_robot(self, task: NavigateTask) -> int:
        """The file's base, loaded from its ``rigid_copy``: the joints whose links stay clear of
        the floor (an arm, a torso lift, a head) are fixed, as the robot's own controllers would
        hold them; those that reach the floor (casters, steering hinges, passive wheels,
        suspension) stay free; a root without mass gets one, so the body's links take contacts;
        wheels that collide as boxes or meshes collide as cylinders."""
        sim, c, path = self.sim, self.sim.client, str(task.urdf_path)
        model = UrdfModel.read(path)
        wheels = set(task.left_wheels + task.right_wheels)
        if len(model.links) > URDF_MAX_LINKS:  # dropping its bare frames, as the copy below does
            body = sim.load_urdf_text(rigid_copy(path, {}, keep=wheels), fixed_base=False)
        else:
            body = sim.load_urdf_file(path, fixed_base=False)
        give_inertia_to_empty_links(body, model.masses, model.root, c, fixed_base=False)
        n = p.getNumJoints(body, physicsClientId=c)
        info = [p.getJointInfo(body, i, physicsClientId=c) for i in range(n)]
        low = [p.getAABB(body, i, physicsClientId=c)[0][2] for i in range(n)]
        bottom = min([p.getAABB(body, -1, physicsClientId=c)[0][2], *low])
        for i in reversed(range(n)):  # the lowest point of each joint's subtree (children come later)
            if info[i][16] >= 0:
                low[info[i][16]] = min(low[info[i][16]], low[i])
        held = [
            info[i][1].decode()
            for i in range(n)
            if info[i][2] != p.JOINT_FIXED and info[i][1].decode() not in wheels and low[i] - bottom > HOLD_CLEARANCE
        ]
        p.removeBody(body, physicsClientId=c)
        body = sim.load_urdf_text(
            rigid_copy(path, dict.fromkeys(held, 0.0), round_wheels=sorted(wheels), keep=wheels), fixed_base=False
        )
        give_inertia_to_empty_links(body, model.masses, model.root, c, fixed_base=False)
        for i in range(n):  # the file's joint damping on a light wheel diverges at our time step
            if info[i][2] != p.JOINT_FIXED:  # (the Stretch's 21.75 N*m*s on 0.0004 kg*m^2 spun it up
                p.changeDynamics(body, i, jointDamping=0.0, physicsClientId=c)  # to 44 rad/s)
        self._stand_on_wheels(body, wheels)
        return body

    def _stand_on_wheels(self, body: int, wheels: set[str]) -> None:
        """A base whose body's collision shape reaches the floor as low as its wheels (PyBullet
        takes a mesh's convex hull, which spans a skirt's or a bumper's underside) would rest on
        its body and never drive. Where the file gives casters to stand on, the body's links
        that low do not touch the floor; obstacles still hit them."""
        c = self.sim.client
        n = p.getNumJoints(body, physicsClientId=c)
        info = [p.getJointInfo(body, i, physicsClientId=c) for i in range(n)]
        wheel_links = [i for i in range(n) if info[i][1].decode() in wheels]
        floor = min(p.getAABB(body, i, physicsClientId=c)[0][2] for i in wheel_links) + STAND_TOLERANCE
        rigid = {-1}  # the root and the links fixed to it
        for i in range(n):
            if info[i][2] == p.JOINT_FIXED and info[i][16] in rigid and "caster" not in info[i][12].decode().lower():
                rigid.add(i)
        low = {i: p.getAABB(body, i, physicsClientId=c)[0][2] for i in range(-1, n)}
        supports = [i for i in range(n) if i not in rigid and i not in wheel_links and low[i] <= floor]
        sunk = [i for i in sorted(rigid) if low[i] <= floor and p.getCollisionShapeData(body, i, physicsClientId=c)]
        if supports and sunk:
            for i in sunk:
                p.setCollisionFilterPair(self._ground, body, -1, i, 0, physicsClientId=c)

    def _aabb(self) -> tuple[np.ndarray, np.ndarray]:
        c = self.sim.client
        lo, hi = (np.array(v) for v in p.getAABB(self.robot, -1, physicsClientId=c))
        for i in range(p.getNumJoints(self.robot, physicsClientId=c)):
            a, b = p.getAABB(self.robot, i, physicsClientId=c)
            lo, hi = np.minimum(lo, a), np.maximum(hi, b)
        return lo, hi

    def _wheel_axis(self, joint: int) -> tuple[np.ndarray, np.ndarray]:
        """World axis and centre (m) of a wheel joint with the body at its rest pose."""
        c = self.sim.client
        info = p.getJointInfo(self.robot, joint, physicsClientId=c)
        state = p.getLinkState(self.robot, joint, computeForwardKinematics=True, physicsClientId=c)
        rot = np.array(p.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        return rot @ np.asarray(info[13]), np.asarray(state[4])

    def _forward_axis(self) -> np.ndarray:
        """The robot's forward (world, at rest): the horizontal perpendicular of the wheels'
        axle that puts the left wheels on its left."""
        axis, _ = self._wheel_axis(self._left[0])
        axle = np.array([axis[0], axis[1], 0.0])
        if not np.linalg.norm(axle) > 0.1:
            raise MetarobotError(f"URDF {self.task.urdf_path}: wheel joints must turn about a horizontal axle")  # type: ignore[attr-defined]
        axle /= np.linalg.norm(axle)
        left = np.mean([self._wheel_axis(j)[1] for j in self._left], axis=0)
        right = np.mean([self._wheel_axis(j)[1] for j in self._right], axis=0)
        if float((left - right) @ axle) < 0:
            axle = -axle
        return np.cross(axle, (0.0, 0.0, 1.0))

    def _forward_dir(self, joint: int) -> float:
        """+1 if spinning ``joint`` positively rolls its wheel toward the robot's forward, else -1."""
        axis, _ = self._wheel_axis(joint)
        # a wheel on the floor rolling about world axis w moves its centre along w x (0, 0, 1)
        forward = float(np.cross(axis, (0.0, 0.0, 1.0)) @ self._forward)
        return 1.0 if forward >= 0 else -1.0

    def measure_robot(self) -> dict[str, Any]:
        """What the loaded body measures at rest: length (m) along its forward axis, track
        width (m) between the left and right wheels' centres, each wheel's radius (m, half its
        collision geometry's height; left wheels then right) and the heading offset (rad)."""
        c = self.sim.client
        p.resetBasePositionAndOrientation(self.robot, [0, 0, 1.0], [0, 0, 0, 1], physicsClientId=c)
        lo, hi = self._aabb()
        f = self._forward
        corners = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])]) @ f[:2]
        task: NavigateTask = self.task  # type: ignore[assignment]
        round_radii = UrdfModel.read(task.urdf_path).round_radii if task.urdf_path else {}
        radii = []
        for j in self._left + self._right:
            link = p.getJointInfo(self.robot, j, physicsClientId=c)[12].decode()
            if link in round_radii:  # a cylinder or sphere in the file: its radius as written
                radii.append(round_radii[link])
            else:  # a mesh: half its height (PyBullet's box around it, less the contact margin)
                a, b = p.getAABB(self.robot, j, physicsClientId=c)
                margin = p.getDynamicsInfo(self.robot, j, physicsClientId=c)[11]
                radii.append(float(b[2] - a[2]) / 2 - margin)
        side = np.cross((0.0, 0.0, 1.0), f)
        left = np.mean([self._wheel_axis(j)[1] @ side for j in self._left])
        right = np.mean([self._wheel_axis(j)[1] @ side for j in self._right])
        return {
            "length": float(corners.max() - corners.min()),
            "track_width": float(abs(left - right)),
            "wheel_radii": radii,
            "heading_offset": self._yaw_offset,
        }

    def _make_goal_marker(self, radius: float) -> int:
        c = self.sim.client
        vis = p.createVisualShape(
            p.GEOM_CYLINDER, radius=radius, length=0.01, rgbaColor=[0.1, 0.85, 0.1, 1.0], physicsClientId=c
        )
        return int(p.createMultiBody(baseMass=0.0, baseVisualShapeIndex=vis, physicsClientId=c))

    def _build_map(self, task: NavigateTask) -> None:
        c = self.sim.client
        for body in self._obstacles:
            p.removeBody(body, physicsClientId=c)
        self._obstacles = []
        h = OBSTACLE_HEIGHT
        for kind, x, y, size, yaw in task.obstacles():
            if kind == BOX:
                col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[size, size, h / 2], physicsClientId=c)
                vis = p.createVisualShape(
                    p.GEOM_BOX, halfExtents=[size, size, h / 2], rgbaColor=[0.9, 0.55, 0.15, 1], physicsClientId=c
                )
            else:
                col = p.createCollisionShape(p.GEOM_CYLINDER, radius=size, height=h, physicsClientId=c)
                vis = p.createVisualShape(
                    p.GEOM_CYLINDER, radius=size, length=h, rgbaColor=[0.55, 0.35, 0.7, 1], physicsClientId=c
                )
            body = p.createMultiBody(
                baseMass=0.0,
                baseCollisionShapeIndex=col,
                baseVisualShapeIndex=vis,
                basePosition=[x, y, h / 2],
                baseOrientation=p.getQuaternionFromEuler([0, 0, yaw]),
                physicsClientId=c,
            )
            self._obstacles.append(int(body))
        self._obstacle_set = frozenset(self._obstacles)

    # -- sensing ----------------------------------------------------------------------------
    def ranges(self, x: float, y: float, yaw: float) -> np.ndarray:
        """Range readings (m) of the ring sensor at ``(x, y)`` facing ``yaw``. Rays start just
        outside the robot's footprint circle, so they never see the robot itself."""
        c, s = math.cos(yaw), math.sin(yaw)
        dx = c * self._ray_cos - s * self._ray_sin
        dy = s * self._ray_cos + c * self._ray_sin
        r0 = self._radius + 0.01
        z = SENSOR_HEIGHT
        starts = np.stack([x + r0 * dx, y + r0 * dy, np.full(N_RAYS, z)], axis=1)
        ends = np.stack([x + SENSOR_RANGE * dx, y + SENSOR_RANGE * dy, np.full(N_RAYS, z)], axis=1)
        hits = p.rayTestBatch(starts.tolist(), ends.tolist(), physicsClientId=self.sim.client)
        frac = np.fromiter((h[2] if h[0] >= 0 else 1.0 for h in hits), float, N_RAYS)
        return r0 + frac * (SENSOR_RANGE - r0)

    def _state(self) -> tuple[float, float, float, float, float, float, float]:
        """x, y (m), yaw, up (z of the body's z axis), forward and lateral speed (m/s), yaw rate."""
        c = self.sim.client
        (x, y, _), (qx, qy, qz, qw) = p.getBasePositionAndOrientation(self.robot, physicsClientId=c)
        (vx, vy, _), (_, _, wz) = p.getBaseVelocity(self.robot, physicsClientId=c)
        yaw = math.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz)) + self._yaw_offset
        up = 1 - 2 * (qx * qx + qy * qy)
        cy, sy = math.cos(yaw), math.sin(yaw)
        return x, y, yaw, up, cy * vx + sy * vy, -sy * vx + cy * vy, wz

    def _obs(self) -> tuple[np.ndarray, float, float, bool]:
        """Observation, goal distance (m), up, and whether the state is sane."""
        x, y, yaw, up, v, vl, wz = self._state()
        gx, gy = self._goal[0] - x, self._goal[1] - y
        cy, sy = math.cos(yaw), math.sin(yaw)
        rx, ry = cy * gx + sy * gy, -sy * gx + cy * gy
        d = math.hypot(gx, gy)
        obs = np.empty(OBS_DIM, dtype=np.float32)
        obs[:8] = (rx / 2, ry / 2, d / 2, rx / d if d > 1e-9 else 1.0, ry / d if d > 1e-9 else 0.0, v, vl, wz / 5)
        sane = math.isfinite(x + y + v + vl + wz + up) and abs(v) + abs(vl) < 20 and abs(wz) < 100
        if sane:
            obs[8:] = self.ranges(x, y, yaw) / SENSOR_RANGE
        else:
            obs[8:] = 1.0
        np.clip(obs, -OBS_BOUND, OBS_BOUND, out=obs)
        return obs, d, up, sane

    def _touching_obstacle(self) -> bool:
        if not self._obstacles:
            return False
        contacts = p.getContactPoints(bodyA=self.robot, physicsClientId=self.sim.client)
        return any(cp[2] in self._obstacle_set for cp in contacts)

    # -- gym API ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        task: NavigateTask = self.task  # type: ignore[assignment]
        rng = self.np_random
        c = self.sim.client
        x0, y0 = rng.uniform(-0.02, 0.02, size=2)
        yaw0 = task.start_yaw + rng.uniform(-0.1, 0.1) - self._yaw_offset
        p.resetBasePositionAndOrientation(
            self.robot, [x0, y0, self._base_z], p.getQuaternionFromEuler([0, 0, yaw0]), physicsClientId=c
        )
        p.resetBaseVelocity(self.robot, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        for j in range(p.getNumJoints(self.robot, physicsClientId=c)):
            p.resetJointState(self.robot, j, 0.0, 0.0, physicsClientId=c)
        self._target = np.zeros(len(self._joints))
        self._steps = 0
        obs, d, _, _ = self._obs()
        self._dist = d
        return obs, {"is_success": False, "distance": d}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)[:2]
        a = np.minimum(np.maximum(a, -1.0), 1.0)
        cmd = np.repeat(a, (self._n_left, len(self._joints) - self._n_left)) * self._wheel_gain
        if self._ramp_step is not None:
            cmd = np.clip(cmd, self._target - self._ramp_step, self._target + self._ramp_step)
        self._target = cmd
        c = self.sim.client
        p.setJointMotorControlArray(
            self.robot, self._joints, p.VELOCITY_CONTROL, targetVelocities=cmd.tolist(), forces=self._forces,
            physicsClientId=c,
        )  # fmt: skip
        self.sim.step(CONTROL_SUBSTEPS)
        self._steps += 1
        obs, d, up, sane = self._obs()
        if not sane:
            info = {"physics_error": True, "is_success": False, "collision": False, "flipped": False, "distance": d}
            return np.zeros(OBS_DIM, np.float32), -1.0, True, False, info
        collision = self._touching_obstacle()
        flipped = up < 0.3
        success = d < self.task.success_distance  # type: ignore[attr-defined]
        reward = PROGRESS_SCALE * (self._dist - d) - COLLISION_PENALTY * collision - 0.005 * float(a @ a)
        reward += SUCCESS_BONUS * success
        self._dist = d
        terminated = success or flipped
        truncated = not terminated and self._steps >= self.max_episode_steps
        info = {"is_success": success, "collision": collision, "flipped": flipped, "distance": d}
        return obs, reward, terminated, truncated, info

    def camera(self) -> dict[str, Any]:
        task: NavigateTask = self.task  # type: ignore[assignment]
        # the robot where it is now (the camera follows it), its goal and the map
        x, y = p.getBasePositionAndOrientation(self.robot, physicsClientId=self.sim.client)[0][:2]
        pts = [(0.0, 0.0), (x, y), (task.goal_x, task.goal_y)] + [(o[1], o[2]) for o in task.obstacles()]
        xs, ys = [q[0] for q in pts], [q[1] for q in pts]
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        span = max(max(xs) - min(xs), max(ys) - min(ys), 0.8) + 0.6 + 2 * max(self._radius - 0.2, 0.0)
        # a view from above at a slant: the map's bounding square fills most of the frame
        return {"target": (cx, cy, 0.0), "distance": 0.2 + 0.9 * span, "yaw": 0.0, "pitch": -60.0}


def describe_base(task: NavigateTask) -> dict[str, Any]:
    """What metarobot read from a file's wheeled base (for ``metarobot inspect`` and ``adapt``)."""
    if task.urdf_path is None:
        raise MetarobotError("this navigate task has no URDF file to describe")
    model = UrdfModel.read(task.urdf_path)
    wheels = task.left_wheels + task.right_wheels
    radii = task.wheel_radii or (task.wheel_radius,) * len(wheels)
    per_side = max(len(task.left_wheels), len(task.right_wheels))
    return {
        "file": task.urdf_path,
        "robot": model.name,
        "root_link": model.root,
        "rigid_with_root": model.body_links(),
        "drive": "differential" if per_side == 1 else f"skid-steer ({per_side} wheels a side)",
        "left_wheels": {n: r for n, r in zip(task.left_wheels, radii)},
        "right_wheels": {n: r for n, r in zip(task.right_wheels, radii[len(task.left_wheels) :])},
        "passive_joints": [j.name for j in model.joints if j.movable and j.name not in wheels],
        "forward_axis_deg": round(math.degrees(task.heading_offset), 1),
        "length_m": task.chassis_length,
        "track_width_m": task.track_width,
        "mass_kg": task.chassis_mass,
        "max_wheel_speed_rad_s": task.max_wheel_speed,
        "top_speed_m_s": round(task.max_wheel_speed * task.wheel_radius, 3),
        "wheel_torque_Nm": task.wheel_torque or WHEEL_TORQUE,
        "wheel_ramp_s": task.wheel_ramp,
        "wheel_friction": task.wheel_friction,
    }
