"""A thin PyBullet wrapper that owns one physics client (one per env, panda-gym style)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pybullet as p
from metarobot.envs.urdf_builder import EMPTY_INERTIA, EMPTY_MASS

from metarobot.errors import MetarobotError

_URDF_DIR: Path | None = None

log = logging.getLogger("metarobot.pybullet")
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None)
except OSError:  # pragma: no cover - no C library to flush (not seen on Linux/macOS)
    _LIBC = None


def _flush_c_stdout() -> None:
    if _LIBC is not None:
        _LIBC.fflush(None)


@contextlib.contextmanager
def pybullet_output_to_log(what: str, captured: list[str] | None = None) -> Iterator[None]:
    """Route what PyBullet's C code prints on file descriptor 1 (``b3Warning ... No inertial
    data`` and the like, ~70 lines for a ROS base) into the ``metarobot.pybullet`` log (shown
    with ``metarobot --debug``), so it never mixes into a command's results on stdout."""
    try:
        sys.stdout.flush()
        _flush_c_stdout()
        saved = os.dup(1)
    except (OSError, ValueError):  # no usable fd 1 (closed stdout): nothing to protect
        saved = -1
    if saved < 0:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            _flush_c_stdout()
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                log.debug("PyBullet output while %s:\n%s", what, text)
                if captured is not None:
                    captured.append(text)


def _urdf_cache_dir() -> Path:
    """A private folder of this process for generated URDF files (removed at exit)."""
    global _URDF_DIR
    if _URDF_DIR is None or not _URDF_DIR.exists():
        _URDF_DIR = Path(tempfile.mkdtemp(prefix="metarobot-urdf-"))
        atexit.register(shutil.rmtree, str(_URDF_DIR), True)
    return _URDF_DIR


def shared_urdf(name: str) -> str:
    """Path of a URDF shipped in the ``metarobot.urdf`` package data."""
    ref = resources.files("metarobot.urdf").joinpath(name)
    with resources.as_file(ref) as path:
        return str(path)


class BulletSim:
    """One DIRECT-mode PyBullet client with the settings our tasks use.

    ``timestep`` is in seconds (PyBullet's default 1/240 s); ``solver_iterations`` trades
    constraint accuracy for speed (PyBullet's default is 50; motors and joint limits of
    our arms track well with 10).
    """

    def __init__(
        self,
        timestep: float = 1.0 / 240.0,
        solver_iterations: int = 10,
        gravity: float = -9.81,
    ) -> None:
        self.timestep = timestep
        self.solver_iterations = solver_iterations
        self.gravity = gravity
        with pybullet_output_to_log("connecting"):
            self.client = p.connect(p.DIRECT)
        if self.client < 0:
            raise MetarobotError("could not start a PyBullet physics client")
        self._configure()

    def _configure(self) -> None:
        c = self.client
        p.setTimeStep(self.timestep, physicsClientId=c)
        p.setPhysicsEngineParameter(
            numSolverIterations=self.solver_iterations,
            deterministicOverlappingPairs=1,
            physicsClientId=c,
        )
        p.setGravity(0.0, 0.0, self.gravity, physicsClientId=c)

    def reset_world(self) -> None:
        """Remove every body and restore the physics settings."""
        p.resetSimulation(physicsClientId=self.client)
        self._configure()

    def step(self, n: int = 1) -> None:
        c = self.client
        for _ in range(n):
            p.stepSimulation(physicsClientId=c)

    def load_urdf_text(
        self,
        text: str,
        base_position: Sequence[float] = (0.0, 0.0, 0.0),
        fixed_base: bool = True,
        flags: int = 0,
    ) -> int:
        """Load a URDF given as a string (written once to this process's cache folder)."""
        digest = hashlib.sha1(text.encode()).hexdigest()
        path = _urdf_cache_dir() / f"{digest}.urdf"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        return self.load_urdf_file(str(path), base_position, fixed_base, flags)

    def load_urdf_file(
        self,
        path: str,
        base_position: Sequence[float] = (0.0, 0.0, 0.0),
        fixed_base: bool = True,
        flags: int = 0,
    ) -> int:
        captured: list[str] = []
        try:
            with pybullet_output_to_log(f"loading {path}", captured):
                body = p.loadURDF(
                    path,
                    basePosition=list(base_position),
                    useFixedBase=fixed_base,
                    flags=flags,
                    physicsClientId=self.client,
                )
            return int(body)
        except p.error as exc:
            # PyBullet says why only in its printed output: name a missing mesh file
            said = "".join(captured)
            missing = re.findall(r"cannot find '([^']*)'", said)
            formats = re.findall(r"invalid mesh filename extension '([^']*)'", said)
            why = f" (missing mesh file(s): {', '.join(sorted(set(missing)))})" if missing else ""
            if formats:  # glTF (.glb) and such: PyBullet reads .obj, .stl and .dae only
                unread = ", ".join(sorted(set(formats)))
                why += f" (mesh format(s) PyBullet cannot read: {unread}; it reads .obj, .stl, .dae)"
            raise MetarobotError(f"PyBullet cannot load URDF {path}: {exc}{why}") from None

    def load_mesh_body(
        self,
        collision_file: Path,
        visual_file: Path,
        scale: float,
        mass: float,
        rgba: Sequence[float],
        centre_of_mass: Sequence[float] = (0.0, 0.0, 0.0),
    ) -> int:
        """A free body from mesh files (OBJ parts become one convex hull each; STL one hull),
        scaled by ``scale`` (file units to metres), of ``mass`` kg with its centre of mass at
        ``centre_of_mass`` (m, mesh frame); its inertia is PyBullet's estimate from the
        collision shape."""
        c = self.client
        size = [scale] * 3
        try:
            with pybullet_output_to_log(f"loading mesh {collision_file}"):
                col = p.createCollisionShape(
                    p.GEOM_MESH, fileName=str(collision_file), meshScale=size, physicsClientId=c
                )
                vis = p.createVisualShape(
                    p.GEOM_MESH, fileName=str(visual_file), meshScale=size, rgbaColor=list(rgba), physicsClientId=c
                )
        except p.error as exc:
            raise MetarobotError(f"PyBullet cannot load mesh {collision_file}: {exc}") from None
        body = p.createMultiBody(
            baseMass=mass,
            baseCollisionShapeIndex=col,
            baseVisualShapeIndex=vis,
            baseInertialFramePosition=list(centre_of_mass),
            physicsClientId=c,
        )
        return int(body)

    def add_marker(self, radius: float, rgba: Sequence[float] = (0.1, 0.8, 0.1, 0.8)) -> int:
        """A visual-only sphere (no collision, no mass): goals and targets."""
        c = self.client
        vis = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=list(rgba), physicsClientId=c)
        return int(p.createMultiBody(baseMass=0.0, baseVisualShapeIndex=vis, physicsClientId=c))

    def move_body(self, body: int, position: Sequence[float]) -> None:
        p.resetBasePositionAndOrientation(body, list(position), [0, 0, 0, 1], physicsClientId=self.client)

    def render(
        self,
        width: int,
        height: int,
        target: Sequence[float],
        distance: float,
        yaw: float = 45.0,
        pitch: float = -25.0,
        fov: float = 60.0,
    ) -> np.ndarray:
        """An RGB frame (height, width, 3, uint8) from PyBullet's TinyRenderer (no GL needed)."""
        c = self.client
        view = p.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=list(target),
            distance=distance,
            yaw=yaw,
            pitch=pitch,
            roll=0.0,
            upAxisIndex=2,
            physicsClientId=c,
        )
        proj = p.computeProjectionMatrixFOV(
            fov=fov, aspect=width / height, nearVal=0.02, farVal=50.0, physicsClientId=c
        )
        _, _, rgba, _, _ = p.getCameraImage(
            width,
            height,
            viewMatrix=view,
            projectionMatrix=proj,
            renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=c,
        )
        frame = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
        return frame[:, :, :3].copy()

    def close(self) -> None:
        if self.client >= 0:
            try:
                p.disconnect(physicsClientId=self.client)
            except p.error:
                pass
            self.client = -1

    def __del__(self) -> None:
        self.close()


def give_inertia_to_empty_links(body: int, masses: dict[str, float], root: str, client: int, fixed_base: bool) -> None:
    """Links a file gives no mass (frames such as ``base_footprint``, tool or sensor frames):
    PyBullet makes each one 1 kg with a 1 kg*m^2 inertia, which would add kilograms to a wrist
    and slow a small base's turns; make them 1 g with a negligible inertia instead."""
    index = {root: -1}
    for i in range(p.getNumJoints(body, physicsClientId=client)):
        index[p.getJointInfo(body, i, physicsClientId=client)[12].decode()] = i
    for name, mass in masses.items():
        if mass <= 0 and name in index and not (fixed_base and index[name] == -1):
            p.changeDynamics(
                body, index[name], mass=EMPTY_MASS, localInertiaDiagonal=[EMPTY_INERTIA] * 3, physicsClientId=client
            )


def cache_dir() -> Path:
    """metarobot's user cache (``$METAROBOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/metarobot``,
    else ``~/.cache/metarobot``): convex decompositions of users' meshes live there, never in
    the installed package. Falls back to this process's temporary folder when not writable."""
    env = os.environ.get("METAROBOT_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "metarobot"
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = base / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return base
    except OSError:
        return _urdf_cache_dir()


def convex_decomposition(obj_path: Path, digest: str) -> Path:
    """V-HACD (PyBullet's ``vhacd``) of an OBJ mesh: an OBJ of convex parts, computed once per
    mesh content (``digest``) and kept in ``cache_dir()/vhacd``. Takes seconds to tens of
    seconds for a mesh of a few thousand triangles."""
    folder = cache_dir() / "vhacd"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{digest}.obj"
    if out.is_file() and out.stat().st_size > 0:
        return out
    tmp = folder / f"{digest}.{os.getpid()}.tmp.obj"
    log_file = folder / f"{digest}.{os.getpid()}.log"
    with pybullet_output_to_log(f"decomposing {obj_path} (V-HACD)"):
        p.vhacd(str(obj_path), str(tmp), str(log_file))
    log_file.unlink(missing_ok=True)
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise MetarobotError(f"V-HACD could not decompose mesh {obj_path} into convex parts")
    os.replace(tmp, out)
    return out
