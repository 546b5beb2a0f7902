"""The ``grasp-v2`` family: ``grasp`` with objects of the sizes and shapes people bring, and the
object's size in the observation.

Measured on the shipped ``grasp`` policies (bench/RESULTS.md, "Real objects on grasp"): the
multitask policy lifts the duck URDF (85%) and the mug mesh (84%), and fails on the teddy (61%)
and the bare duck mesh (50%). Traced step by step (``bench/grasp_object_diagnose.py``): the
fingers close while the gripper descends, timed for ``grasp``'s objects (3-6 cm wide, square or
round), so on an object 8 cm wide with arms and a head they land on its top (contact normals
60-90% vertical), squeeze it against the table and never lift it. ``grasp``'s policy cannot see
how wide an object is, and no training object was as wide, as long, as tall or as lumpy as these.

Everything of ``grasp`` (``metarobot/Grasp-v0``) holds -- procedural grippers on a gantry, 20 Hz
control, the 5 action values, 100-step episodes, reward and success (held 5 cm up for 0.5 s), the
hidden parameters (finger geometry, grip force, pad friction, object mass and friction) -- except:

* **objects of real sizes**: 3-9 cm across at their narrow side (``grasp``: 3-6 cm), up to 1.6
  times that along the other (``object_depth``), 3-12 cm tall, 30-500 g, friction 0.4-1.0, held
  by grippers that open 8.5-14 cm (two-finger hands of real arms open 8-14 cm) with fingers 5-9
  cm long. An object is at least 1.5 cm narrower than its gripper's opening. The gripper starts
  5 cm higher than in ``grasp`` (palm 25 cm up), above the tallest object;
* **lumpy shapes**: besides ``grasp``'s box (now of any footprint), cylinder, sphere and capsule,
  a ``blob`` (a superellipsoid with random bumps and a flat base; it collides as its convex
  hull) and a
  ``compound`` (a box or cylinder body with one to three lumps -- heads, arms, handles -- fused
  on, its centre of mass where the parts put it), both drawn from ``shape_variation``;
* **the object's size is observed** (3 more floats, 24 in all): its half-extents along its own
  horizontal axes and the height of its top above its centre of mass, at rest (units of 5 cm).
  A robot sees an object's size with its camera before it touches it; what it cannot see (mass,
  friction, its own fingers' strength and geometry) stays hidden. A user's object (URDF or bare
  mesh) is measured the same way when it loads.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pybullet as p
from metarobot.envs.grasp import (
    OBS_BOUND,
    OBS_DIM,
    SHAPES,
    GraspEnv,
    GraspFamily,
    GraspTask,
    object_task_from_mesh,
    object_task_from_urdf,
)

from metarobot.family import FloatParam, Param, Range, Task, replace_param, revise

SHAPES_V2 = (*SHAPES, "blob", "compound")
#: observed extents: x and y half-extents in the object's frame, top above the centre of mass
EXTENT_DIM = 3
OBS_DIM_V2 = OBS_DIM + EXTENT_DIM
EXTENT_UNIT = 0.05  # m per observed unit (as the object's position)
#: the palm's height at reset (m): fingers up to 9 cm long clear objects up to 12 cm tall
START_HEIGHT_V2 = 0.25
#: an object is at least this much narrower than its gripper opens (m)
FIT_MARGIN = 0.015


@dataclasses.dataclass(frozen=True)
class GraspV2Task(GraspTask):
    """A ``grasp`` gripper and object, the object's second horizontal extent and the draw of a
    lumpy shape."""

    family: ClassVar[str] = "grasp-v2"
    params: ClassVar[tuple[Param, ...]] = revise(
        GraspTask.params,
        replace_param(
            GraspTask.params, "object_shape", choices=SHAPES_V2,
            doc="the object's shape (blob: bumpy convex solid; compound: a body with lumps fused on)",
        ),
        replace_param(GraspTask.params, "max_opening", train=Range(0.085, 0.14)),
        replace_param(GraspTask.params, "finger_length", train=Range(0.05, 0.09)),
        replace_param(
            GraspTask.params, "object_size", train=Range(0.015, 0.045), ood=(Range(0.047, 0.055),),
            sampling=f"at most half of (the gripper's opening - {FIT_MARGIN * 100:g} cm)",
        ),
        replace_param(GraspTask.params, "object_height", train=Range(0.03, 0.12)),
        replace_param(GraspTask.params, "object_mass", train=Range(0.03, 0.5), ood=(Range(0.6, 1.0),)),
        replace_param(GraspTask.params, "object_friction", train=Range(0.4, 1.0), ood=(Range(0.25, 0.35),)),
        FloatParam(
            name="object_depth", doc="the other horizontal half-extent as a multiple of object_size (box, blob, "
            "compound)", bounds=(1.0, 5.0), train=Range(1.0, 1.6),
        ),
        FloatParam(
            name="shape_variation", doc="draws a blob's bumps and a compound's parts", bounds=(0.0, 1.0),
            train=Range(0.0, 1.0),
        ),
    )  # fmt: skip

    object_depth: float = 1.0
    shape_variation: float = 0.0


def _rng(task: GraspV2Task) -> np.random.Generator:
    return np.random.default_rng(int(round(task.shape_variation * 1_000_000)))


def blob_mesh(task: GraspV2Task) -> tuple[np.ndarray, np.ndarray]:
    """A ``blob``'s vertices (m, its bounding box centred on the origin: ``2 object_size`` by
    ``2 object_size object_depth`` wide -- the long side along x -- and ``object_height`` tall)
    and triangles: a superellipsoid (roundness drawn per axis pair) whose radius carries up to
    three low-frequency bumps, its bottom cut flat to stand on. It collides as its convex hull."""
    rng = _rng(task)
    e_lat, e_lon = rng.uniform(0.35, 1.2, size=2)  # < 1: boxy, 1: ellipsoid, > 1: pinched
    n_lat, n_lon = 9, 16
    lat = np.linspace(-math.pi / 2, math.pi / 2, n_lat)[1:-1]
    lon = np.linspace(-math.pi, math.pi, n_lon, endpoint=False)
    th, ph = np.meshgrid(lat, lon, indexing="ij")

    def pw(v: np.ndarray, e: float) -> np.ndarray:
        return np.sign(v) * np.abs(v) ** e

    bump = np.ones_like(th)
    for _ in range(int(rng.integers(0, 4))):
        m, k = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        bump += rng.uniform(0.03, 0.12) * np.cos(m * ph + rng.uniform(0, 2 * math.pi)) * np.cos(k * th)
    x = pw(np.cos(th), e_lat) * pw(np.cos(ph), e_lon) * bump
    y = pw(np.cos(th), e_lat) * pw(np.sin(ph), e_lon) * bump
    z = pw(np.sin(th), e_lat) * bump
    ring = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    vertices = np.concatenate([ring, [[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]])
    # a flat base to stand on (a round one rolls away before it is touched)
    vertices[:, 2] = np.maximum(vertices[:, 2], vertices[:, 2].min() + rng.uniform(0.3, 0.6))
    size = np.array([task.object_size * task.object_depth, task.object_size, task.object_height / 2])
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    vertices = (vertices - (lo + hi) / 2) / ((hi - lo) / 2) * size
    faces = []
    rows, south, north = len(lat), len(vertices) - 2, len(vertices) - 1
    for i in range(rows - 1):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            faces += [(a, b, d), (a, d, c)]
    for j in range(n_lon):
        faces.append((south, (j + 1) % n_lon, j))
        top = (rows - 1) * n_lon
        faces.append((north, top + j, top + (j + 1) % n_lon))
    return vertices, np.asarray(faces, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class Part:
    """One primitive of a ``compound``: ``kind`` box (``dims`` half-extents), cylinder (radius,
    half-length) or sphere (radius), centred at ``pos`` (m, the object's frame)."""

    kind: str
    dims: tuple[float, ...]
    pos: tuple[float, float, float]

    @property
    def volume(self) -> float:
        if self.kind == "box":
            return 8.0 * self.dims[0] * self.dims[1] * self.dims[2]
        if self.kind == "cylinder":
            return math.pi * self.dims[0] ** 2 * 2.0 * self.dims[1]
        return 4.0 / 3.0 * math.pi * self.dims[0] ** 3


def compound_parts(task: GraspV2Task) -> list[Part]:
    """A ``compound``'s parts, inside the box ``[-sx, sx] x [-sy, sy] x [0, h]`` (``sx`` the
    long half-extent) and shifted so that their volume-weighted centre is the origin: a box or
    cylinder body standing on the table, then one to three lumps -- a head on its top, arms
    reaching out along x, a handle on one end."""
    rng = _rng(task)
    sx, sy, h = task.object_size * task.object_depth, task.object_size, task.object_height
    bx, by = sx * rng.uniform(0.5, 0.85), sy * rng.uniform(0.6, 1.0)
    bh = h * rng.uniform(0.45, 0.8)
    ox = float(rng.uniform(-(sx - bx), sx - bx))
    parts = [
        Part("box", (bx, by, bh / 2), (ox, 0.0, bh / 2))
        if rng.random() < 0.5
        else Part("cylinder", (min(bx, by), bh / 2), (ox, 0.0, bh / 2))
    ]
    kinds = ["head", "arm", "handle"]
    for _ in range(int(rng.integers(1, 4))):
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "head":  # a sphere resting on the body, reaching up to the full height
            r = max(0.006, min(0.9 * sy, 0.9 * sx, (h - bh) / 2 + 0.25 * bh / 2))
            x = float(rng.uniform(-(sx - r), sx - r))
            parts.append(Part("sphere", (r,), (x, 0.0, h - r)))
        elif kind == "arm":  # a bar from the body out to one end of the long side
            side = 1.0 if rng.random() < 0.5 else -1.0
            inner = ox + side * bx * 0.5
            half_x = abs(side * sx - inner) / 2
            hz = h * rng.uniform(0.06, 0.15)
            z = float(rng.uniform(hz, max(hz, bh - hz)))
            parts.append(Part("box", (half_x, sy * rng.uniform(0.25, 0.6), hz), ((inner + side * sx) / 2, 0.0, z)))
        else:  # a handle: a thin upright plate at one end of the long side
            side = 1.0 if rng.random() < 0.5 else -1.0
            t = min(0.006, sx * 0.2)
            hz = min(bh, h) * rng.uniform(0.3, 0.5)
            parts.append(Part("box", (t, sy * rng.uniform(0.2, 0.5), hz), (side * (sx - t), 0.0, hz + bh * 0.1)))
    volume = sum(q.volume for q in parts)
    cx, cy, cz = (sum(q.pos[i] * q.volume for q in parts) / volume for i in range(3))
    return [dataclasses.replace(q, pos=(q.pos[0] - cx, q.pos[1] - cy, q.pos[2] - cz)) for q in parts]


class GraspV2Family(GraspFamily):
    """``grasp``'s draws over real object sizes and lumpy shapes, each object narrower than its
    gripper's opening by ``FIT_MARGIN``; ``ood`` has a heavier, wider or more slippery object or
    shorter fingers."""

    name = "grasp-v2"
    env_id = "metarobot/Grasp-v2"
    task_type = GraspV2Task
    summary = "grasp with objects of real sizes and lumpy shapes (blobs, bodies with heads and arms), size observed"
    #: rl2 measured better than the multitask policy on the train split (94-97% against 87-88%
    #: before any adaptation, the same 94-95% after three blocks; bench/RESULTS.md, "rl2 on
    #: grasp-v2"); the other methods' budget stays the multitask run's 1.5M env steps
    meta_defaults: ClassVar[dict[str, Any]] = {**GraspFamily.meta_defaults, "algo": "rl2", "iterations": 150}
    #: rl2's trial is the evaluation protocol's (4 blocks of 5 episodes), at the same 1.5M env steps
    algo_defaults: ClassVar[dict[str, dict[str, Any]]] = {"rl2": {"inner_steps": 3, "iterations": 75}}
    file_hint = ""

    def _fits(self, task: GraspTask) -> GraspTask:
        """``task`` with its object narrowed where it would not fit between the open fingers."""
        widest = (task.max_opening - FIT_MARGIN) / 2
        if task.object_size <= widest:
            return task
        return dataclasses.replace(task, object_size=round(widest, 4))

    def _sample_in_range(self, rng: np.random.Generator) -> Task:
        return self._fits(super()._sample_in_range(rng))  # type: ignore[arg-type]

    def _sample_ood(self, rng: np.random.Generator) -> Task:
        task = super()._sample_ood(rng)
        assert isinstance(task, GraspTask)
        if task.object_size > self.param("object_size", FloatParam).train_range.high:
            # a wider object than any in training: on a gripper that opens wide enough for it
            opening = min(0.3, max(task.max_opening, 2 * task.object_size + FIT_MARGIN))
            return dataclasses.replace(task, max_opening=round(opening, 4))
        return self._fits(task)

    def make_env(self, task: Task, render_mode: str | None = None) -> GraspV2Env:
        return GraspV2Env(task=task, render_mode=render_mode)  # type: ignore[arg-type]

    def describe(self, task: Task) -> dict[str, Any]:
        """``grasp``'s description of a user's object, and the extents the policy is shown."""
        out = super().describe(task)
        env = self.make_env(task)
        try:
            x, y, top = (round(float(v), 4) for v in env.object_extents)
        finally:
            env.close()
        out["observed_extents_m"] = {"half_x": x, "half_y": y, "top_above_centre_of_mass": top}
        return out

    def task_from_object_urdf(self, path: Path) -> GraspTask:
        return object_task_from_urdf(path, gripper_from=self.heldout_tasks("test", 1)[0])  # type: ignore[arg-type]

    def task_from_object_mesh(self, path: Path, **options: Any) -> GraspTask:
        return object_task_from_mesh(path, gripper_from=self.heldout_tasks("test", 1)[0], **options)  # type: ignore[arg-type]


class GraspV2Env(GraspEnv):
    """Gymnasium env of one grasp-v2 task (``metarobot/Grasp-v2``): ``grasp``'s observation and
    the object's extents."""

    task_type = GraspV2Task
    obs_dim = OBS_DIM_V2
    #: fingertips 16-20 cm up at reset (``grasp``: 12-16.5 cm), above objects up to 12 cm tall
    start_height = START_HEIGHT_V2

    def __init__(
        self, task: GraspV2Task | None = None, render_mode: str | None = None, task_seed: int | None = None
    ) -> None:
        if task is None:
            task = GraspV2Family().sample_tasks(1, "train", np.random.default_rng(task_seed))[0]  # type: ignore[assignment]
        self._extents = np.zeros(EXTENT_DIM)
        super().__init__(task, render_mode)

    def _make_object(self, task: GraspTask) -> int:
        assert isinstance(task, GraspV2Task)
        if task.from_file or task.object_shape not in ("box", "blob", "compound"):
            return super()._make_object(task)
        c = self.sim.client
        rgba = {"box": [0.85, 0.2, 0.2, 1], "blob": [0.95, 0.6, 0.15, 1], "compound": [0.55, 0.35, 0.2, 1]}
        color = rgba[task.object_shape]
        if task.object_shape == "box":
            ext = [task.object_size * task.object_depth, task.object_size, task.object_height / 2]
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=ext, physicsClientId=c)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=ext, rgbaColor=color, physicsClientId=c)
        elif task.object_shape == "blob":
            vertices, faces = blob_mesh(task)
            col = p.createCollisionShape(p.GEOM_MESH, vertices=vertices.tolist(), physicsClientId=c)
            vis = p.createVisualShape(
                p.GEOM_MESH, vertices=vertices.tolist(), indices=faces.reshape(-1).tolist(), rgbaColor=color,
                physicsClientId=c,
            )  # fmt: skip
        else:
            parts = compound_parts(task)
            kinds = {"box": p.GEOM_BOX, "cylinder": p.GEOM_CYLINDER, "sphere": p.GEOM_SPHERE}
            shape = {
                "shapeTypes": [kinds[q.kind] for q in parts],
                "radii": [q.dims[0] if q.kind != "box" else 0.0 for q in parts],
                "halfExtents": [list(q.dims) if q.kind == "box" else [0.0, 0.0, 0.0] for q in parts],
                "lengths": [2 * q.dims[1] if q.kind == "cylinder" else 0.0 for q in parts],
            }
            positions = [list(q.pos) for q in parts]
            col = p.createCollisionShapeArray(**shape, collisionFramePositions=positions, physicsClientId=c)
            vis = p.createVisualShapeArray(
                **shape, visualFramePositions=positions, rgbaColors=[color] * len(parts), physicsClientId=c
            )
        return int(
            p.createMultiBody(
                baseMass=task.object_mass, baseCollisionShapeIndex=col, baseVisualShapeIndex=vis, physicsClientId=c
            )
        )

    def _apply_task(self, task: Task, previous: Task | None) -> None:
        super()._apply_task(task, previous)
        assert isinstance(task, GraspTask) and self.object is not None
        # the object at rest, unrotated about z: its half-extents along its own x and y and its
        # top above its centre of mass (the body's base position)
        c = self.sim.client
        upright = p.getQuaternionFromEuler([0.0, math.pi / 2 if task.object_shape == "capsule" else 0.0, 0.0])
        p.resetBasePositionAndOrientation(self.object, [0, 0, 1.0], upright, physicsClientId=c)
        lo, hi = p.getAABB(self.object, -1, physicsClientId=c)
        self._extents = np.array([(hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2, hi[2] - 1.0])
        self._rest_z = self._place_object(task)

    @property
    def object_extents(self) -> np.ndarray:
        """What the observation's last 3 values show, in m."""
        return self._extents.copy()

    def _obs(self) -> tuple[np.ndarray, dict[str, Any]]:
        base, info = super()._obs()
        obs = np.empty(OBS_DIM_V2, dtype=np.float32)
        obs[:OBS_DIM] = base
        obs[OBS_DIM:] = np.clip(self._extents / EXTENT_UNIT, -OBS_BOUND, OBS_BOUND)
        return obs, info
