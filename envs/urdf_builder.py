"""The one place that writes URDF for generated robots (primitive shapes only), and reads the
user's own URDF files (``read_urdf``, ``urdf_floats``, ``UrdfModel``)."""

from __future__ import annotations

import dataclasses
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from metarobot.errors import MetarobotError
from metarobot.validation import URDF_MAX_LINKS, XACRO_NS, bare_frames, number_list, parse_xml

AXES: dict[str, tuple[float, float, float]] = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}

_PALETTE = ("0.20 0.45 0.80 1", "0.90 0.55 0.15 1")


def read_urdf(path: Path) -> ET.Element:
    """The ``<robot>`` element of a URDF file; ``MetarobotError`` naming the reason otherwise."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO or device would block the reader forever
        raise MetarobotError(f"cannot read URDF {path}: not a regular file")
    try:
        root = parse_xml(path.read_bytes())
    except OSError as exc:
        raise MetarobotError(f"cannot read URDF {path}: {exc.strerror or exc}") from None
    except ET.ParseError as exc:
        raise MetarobotError(f"URDF {path} does not parse: {exc}") from None
    if any(el.tag.startswith("{" + XACRO_NS + "}") for el in root.iter()):
        raise MetarobotError(f"{path} is a xacro file, not URDF: expand it first (xacro {path.name} > robot.urdf)")
    if root.tag != "robot":
        raise MetarobotError(f"URDF {path} has no <robot> root element")
    return root


def urdf_floats(text: str | None, default: str) -> list[float]:
    """A URDF attribute's list of numbers (``default`` when the attribute is absent)."""
    try:
        return number_list(text or default)
    except ValueError:
        raise MetarobotError(f"URDF value {text!r} is not a list of numbers") from None


MOVABLE = ("revolute", "continuous", "prismatic", "floating", "planar")
SUSPENSION_TRAVEL = 0.02  # m: a prismatic joint of at most this range is a suspension, not an axis


@dataclasses.dataclass(frozen=True)
class UrdfJoint:
    """One ``<joint>`` as written in the file (origin and axis kept as text, parsed when used:
    real files carry leftovers such as ``$(optenv ...)`` in joints nobody needs)."""

    name: str
    kind: str
    parent: str
    child: str
    xyz: str | None
    rpy: str | None
    axis_text: str | None
    lower: float | None
    upper: float | None
    effort: float | None
    damping: float
    mimic: str | None = None
    multiplier: float = 1.0
    offset: float = 0.0

    @property
    def movable(self) -> bool:
        return self.kind in MOVABLE

    @property
    def revolute(self) -> bool:
        return self.kind in ("revolute", "continuous")

    @property
    def rest(self) -> float:
        """Where metarobot holds this joint when nothing drives it: 0, clamped into its range
        (a continuous joint, or one without a usable range, at 0)."""
        if self.kind not in ("revolute", "prismatic") or self.lower is None or self.upper is None:
            return 0.0
        return min(max(0.0, self.lower), self.upper) if self.upper > self.lower else 0.0

    def motion(self, path: Path | str, q: float) -> tuple[np.ndarray, np.ndarray]:
        """Translation (m) and rotation of the child's frame in the joint frame with the joint
        at ``q`` (rad or m): ``joint_motion``."""
        if q == 0.0 or self.kind not in ("revolute", "continuous", "prismatic"):
            return np.zeros(3), np.eye(3)
        return joint_motion(self.kind, self.axis(path), q)

    def origin(self, path: Path | str) -> tuple[np.ndarray, np.ndarray]:
        """Translation (m) and rotation matrix of the joint frame in the parent link's frame."""
        xyz = urdf_floats(self.xyz, "0 0 0")
        rpy = urdf_floats(self.rpy, "0 0 0")
        if len(xyz) != 3 or len(rpy) != 3:
            raise MetarobotError(f"URDF {path}: joint {self.name!r} has a bad origin {self.xyz!r} {self.rpy!r}")
        return np.asarray(xyz), rpy_matrix(rpy)

    def axis(self, path: Path | str) -> np.ndarray:
        """Unit joint axis in the joint frame (URDF default: x)."""
        axis = np.asarray(urdf_floats(self.axis_text, "1 0 0"), dtype=float)
        if axis.shape != (3,) or not np.linalg.norm(axis) > 0:
            raise MetarobotError(f"URDF {path}: joint {self.name!r} has a bad axis {self.axis_text!r}")
        return axis / np.linalg.norm(axis)


def joint_motion(kind: str, axis: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Translation (m) and rotation a joint of ``kind`` at ``q`` (rad or m) adds after its
    origin: along the unit ``axis`` for a prismatic joint, about it otherwise."""
    if kind == "prismatic":
        return axis * q, np.eye(3)
    return np.zeros(3), axis_rotation(axis, q)


def rpy_matrix(rpy: Sequence[float]) -> np.ndarray:
    """Rotation matrix of URDF roll-pitch-yaw angles (rad): R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p_, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p_), math.sin(p_), math.cos(y), math.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def _number(text: str | None, default: float | None, what: str) -> float | None:
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise MetarobotError(f"URDF value {text!r} of {what} is not a number") from None


@dataclasses.dataclass(frozen=True)
class UrdfModel:
    """The kinematic tree of a URDF file: links, joints, the root, link masses (kg)."""

    path: Path
    name: str
    links: tuple[str, ...]
    joints: tuple[UrdfJoint, ...]
    root: str
    masses: dict[str, float]
    #: per link, the largest radius (m) of its cylinder or sphere collision shapes, if any
    round_radii: dict[str, float] = dataclasses.field(default_factory=dict)
    #: per link, the lateral friction its ``<contact>`` element states, if any
    friction: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def read(cls, path: Path | str) -> UrdfModel:
        """Parse ``path``; refuses files that are not one tree (a link with two parents is a
        closed loop) with the reason."""
        path = Path(path)
        robot = read_urdf(path)
        links = tuple(lk.get("name", "") for lk in robot.findall("link"))
        if not links:
            raise MetarobotError(f"URDF {path} has no links")
        masses = {}
        for lk in robot.findall("link"):
            m = lk.find("inertial/mass")
            masses[lk.get("name", "")] = _number(m.get("value") if m is not None else None, 0.0, "a mass") or 0.0
        round_radii = {}
        for lk in robot.findall("link"):
            shapes = lk.findall("collision/geometry/cylinder") + lk.findall("collision/geometry/sphere")
            values = [_number(g.get("radius"), None, "a radius") for g in shapes]
            if any(v for v in values):
                round_radii[lk.get("name", "")] = max(v for v in values if v)
        friction = {}
        for lk in robot.findall("link"):
            el = lk.find("contact/lateral_friction")
            value = _number(el.get("value") if el is not None else None, None, "a friction")
            if value is not None:
                friction[lk.get("name", "")] = value
        joints: list[UrdfJoint] = []
        parent_of: dict[str, str] = {}
        for j in robot.findall("joint"):
            name = j.get("name", "")
            parent_el, child_el = j.find("parent"), j.find("child")
            if parent_el is None or child_el is None:
                raise MetarobotError(f"URDF {path}: joint {name!r} lacks a parent or child")
            parent, child = parent_el.get("link", ""), child_el.get("link", "")
            for link in (parent, child):
                if link not in masses:
                    raise MetarobotError(f"URDF {path}: joint {name!r} names a link {link!r} that is not defined")
            if child in parent_of:
                raise MetarobotError(
                    f"URDF {path} has a closed loop: link {child!r} is the child of joints "
                    f"{parent_of[child]!r} and {name!r} (a URDF must be a tree)"
                )
            parent_of[child] = name
            origin, axis, limit = j.find("origin"), j.find("axis"), j.find("limit")
            dyn, mimic = j.find("dynamics"), j.find("mimic")
            joints.append(
                UrdfJoint(
                    name=name,
                    kind=j.get("type", ""),
                    parent=parent,
                    child=child,
                    xyz=origin.get("xyz") if origin is not None else None,
                    rpy=origin.get("rpy") if origin is not None else None,
                    axis_text=axis.get("xyz") if axis is not None else None,
                    lower=_number(limit.get("lower"), 0.0, f"joint {name!r}") if limit is not None else None,
                    upper=_number(limit.get("upper"), 0.0, f"joint {name!r}") if limit is not None else None,
                    effort=_number(limit.get("effort"), None, f"joint {name!r}") if limit is not None else None,
                    damping=_number(dyn.get("damping"), 0.0, f"joint {name!r}") or 0.0 if dyn is not None else 0.0,
                    mimic=mimic.get("joint") if mimic is not None else None,
                    multiplier=_number(mimic.get("multiplier"), 1.0, f"joint {name!r}") or 0.0
                    if mimic is not None
                    else 1.0,
                    offset=_number(mimic.get("offset"), 0.0, f"joint {name!r}") or 0.0 if mimic is not None else 0.0,
                )
            )
        roots = [lk for lk in links if lk not in parent_of]
        if len(roots) != 1:
            raise MetarobotError(f"URDF {path} is not a single tree (root links: {roots or 'none: a closed loop'})")
        return cls(path, robot.get("name", ""), links, tuple(joints), roots[0], masses, round_radii, friction)

    def joint(self, name: str) -> UrdfJoint:
        return next(j for j in self.joints if j.name == name)

    def children(self, link: str) -> list[UrdfJoint]:
        return [j for j in self.joints if j.parent == link]

    def chain(self, link: str) -> list[UrdfJoint]:
        """Joints from the root to ``link``, in order."""
        by_child = {j.child: j for j in self.joints}
        out = []
        while link in by_child:
            out.append(by_child[link])
            link = by_child[link].parent
        return out[::-1]

    def subtree(self, link: str) -> list[str]:
        """``link`` and every link below it."""
        out, todo = [], [link]
        while todo:
            lk = todo.pop()
            out.append(lk)
            todo += [j.child for j in self.children(lk)]
        return out

    def joints_below(self, link: str) -> list[UrdfJoint]:
        """The movable joints of ``link``'s subtree (a wheel has none; a hip or a shoulder has)."""
        below = set(self.subtree(link))
        return [j for j in self.joints if j.movable and j.parent in below]

    def body_links(self, travel: float = SUSPENSION_TRAVEL) -> list[str]:
        """The root and the links joined to it through fixed joints or suspension: a prismatic
        joint of at most ``travel`` (m) of range (TIAGo's wheels hang from such +-5 mm joints).
        A wheeled base's wheels are on these links."""
        out, todo = [], [self.root]
        while todo:
            lk = todo.pop()
            out.append(lk)
            todo += [j.child for j in self.children(lk) if j.kind == "fixed" or _suspension(j, travel)]
        return out

    def pose_in_root(self, link: str, at: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Position (m) and rotation of ``link``'s frame in the root's frame, the joints named in
        ``at`` at those positions and every other joint at 0."""
        pos, rot = np.zeros(3), np.eye(3)
        for j in self.chain(link):
            xyz, r = j.origin(self.path)
            pos, rot = pos + rot @ xyz, rot @ r
            if at and j.name in at:
                dxyz, dr = j.motion(self.path, at[j.name])
                pos, rot = pos + rot @ dxyz, rot @ dr
        return pos, rot

    def held_positions(self, driven: Sequence[str] = ()) -> dict[str, float]:
        """Where metarobot holds each movable joint not in ``driven``: its ``rest``, and a mimic
        joint at ``multiplier * held + offset`` of the joint it mimics (0 for a driven one)."""
        held = {j.name: j.rest for j in self.joints if j.movable and j.name not in driven and j.mimic is None}
        for j in self.joints:
            if j.movable and j.name not in driven and j.mimic is not None:
                held[j.name] = j.multiplier * held.get(j.mimic, 0.0) + j.offset
        return held


def _suspension(joint: UrdfJoint, travel: float) -> bool:
    return (
        joint.kind == "prismatic"
        and joint.lower is not None
        and joint.upper is not None
        and 0 <= joint.upper - joint.lower <= travel
    )


def _file_reference(name: str, folder: Path) -> str:
    """``name`` (a mesh or texture reference in a URDF in ``folder``) as an absolute path where
    the file is found: relative to ``folder``; ``file://``; ``package://PKG/REST`` looked up as
    PyBullet does (REST, then REST less its leading folders, in ``folder`` and the folders above
    it), and in ``$ROS_PACKAGE_PATH``'s PKG. Unchanged when not found."""
    if name.startswith("file://"):
        name = name[len("file://") :]
    if name.startswith("package://"):
        pkg, _, rest = name[len("package://") :].partition("/")
        for root in filter(None, os.environ.get("ROS_PACKAGE_PATH", "").split(os.pathsep)):
            if (Path(root) / pkg / rest).is_file():
                return str((Path(root) / pkg / rest).resolve())
        parts = Path(pkg, rest).parts
        for k in range(len(parts)):
            for base in (folder, *list(folder.parents)[:8]):
                if (base.joinpath(*parts[k:])).is_file():
                    return str(base.joinpath(*parts[k:]).resolve())
        return name
    if "://" in name or not name:
        return name
    return str((folder / name).resolve()) if not Path(name).is_absolute() else name


EMPTY_MASS = 1e-3  # kg: what a link the file gives no mass weighs in PyBullet (a frame)
EMPTY_INERTIA = 1e-7  # kg*m^2, each axis


def _wheel_cylinder(link: ET.Element, axis: np.ndarray) -> ET.Element | None:
    """A ``<collision>`` cylinder about ``axis`` (the wheel joint's, in the link's frame) that
    spans the link's collision boxes and meshes, or None where one of its shapes is round
    already or a mesh cannot be read (only OBJ and STL are). Its radius is the mean half-extent
    across the axle, its length the extent along it."""
    points = []
    for col in link.findall("collision"):
        origin = col.find("origin")
        xyz = np.asarray(urdf_floats(origin.get("xyz") if origin is not None else None, "0 0 0"))
        rot = rpy_matrix(urdf_floats(origin.get("rpy") if origin is not None else None, "0 0 0"))
        box, mesh = col.find("geometry/box"), col.find("geometry/mesh")
        if box is not None:
            half = np.asarray(urdf_floats(box.get("size"), "0 0 0")) / 2
            local = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * half
        elif mesh is not None:
            try:
                local = read_mesh(mesh.get("filename", ""))[0] * np.asarray(urdf_floats(mesh.get("scale"), "1 1 1"))
            except MetarobotError:
                return None
        else:
            return None  # a cylinder or sphere: round as written
        points.append(local @ rot.T + xyz)
    if not points:
        return None
    pts = np.concatenate(points)
    u = np.cross(axis, (1.0, 0.0, 0.0) if abs(axis[0]) < 0.9 else (0.0, 1.0, 0.0))
    u /= np.linalg.norm(u)
    w = np.cross(axis, u)
    along, across_u, across_w = pts @ axis, pts @ u, pts @ w
    radius = float(np.ptp(across_u) + np.ptp(across_w)) / 4
    centre = (
        axis * (along.max() + along.min()) / 2 + u * (across_u.max() + across_u.min()) / 2
        + w * (across_w.max() + across_w.min()) / 2
    )  # fmt: skip
    z = np.array([0.0, 0.0, 1.0])
    turn = np.cross(z, axis)
    rot = (
        axis_rotation(turn / np.linalg.norm(turn), math.acos(max(-1.0, min(1.0, float(axis @ z)))))
        if np.linalg.norm(turn) > 1e-9
        else (np.eye(3) if axis[2] > 0 else rpy_matrix((math.pi, 0.0, 0.0)))
    )
    col = ET.Element("collision")
    ET.SubElement(
        col, "origin", xyz=" ".join(f"{v:.9g}" for v in centre), rpy=" ".join(f"{v:.9g}" for v in matrix_rpy(rot))
    )
    ET.SubElement(
        ET.SubElement(col, "geometry"),
        "cylinder",
        radius=f"{radius:.6g}",
        length=f"{max(float(np.ptp(along)), 0.005):.6g}",
    )
    return col


def _unit_axis(joint: ET.Element) -> np.ndarray:
    """A ``<joint>`` element's unit axis (URDF default: x)."""
    axis = joint.find("axis")
    xyz = np.asarray(urdf_floats(axis.get("xyz") if axis is not None else None, "1 0 0"))
    return xyz / np.linalg.norm(xyz)


def drop_frames(robot: ET.Element, keep: Collection[str] = ()) -> None:
    """Remove a parsed URDF's ``bare_frames`` (but ``keep``) and their joints where it has more
    than ``URDF_MAX_LINKS`` links: PyBullet answers nothing about the links of a larger body.
    A frame has no mass in the file, so the dynamics lose 1 g each (``EMPTY_MASS``)."""
    if len(robot.findall("link")) <= URDF_MAX_LINKS:
        return
    frames = bare_frames(robot, keep)
    for link in robot.findall("link"):
        if link.get("name") in frames:
            robot.remove(link)
    for j in robot.findall("joint"):
        child = j.find("child")
        if child is not None and child.get("link") in frames:
            robot.remove(j)


def rigid_copy(
    path: Path | str, held: Mapping[str, float], round_wheels: Sequence[str] = (), keep: Collection[str] = ()
) -> str:
    """The text of a copy of the URDF ``path`` for a floating base: each joint of ``held`` (name
    -> angle in rad, or m) is a fixed joint at that position, a root link without mass (ROS's
    ``base_footprint``) weighs ``EMPTY_MASS``, and file references are absolute, so the copy
    loads from anywhere.

    * A joint the robot's controllers hold still is rigid in PyBullet this way: a motor holding
      a hand of gram-light finger links shakes a floating base apart (TIAGo's hand did).
    * PyBullet builds a body whose root has no mass as a fixed base, and the links fixed to that
      root then take no push from a contact with a static body, even after the root is given a
      mass: TIAGo's casters and body sank through the floor, and a chassis would pass through
      the obstacles.
    * Each joint of ``round_wheels`` whose link collides as boxes or meshes collides as the
      cylinder that spans them (``_wheel_cylinder``): the Stretch's wheels are boxes in its
      file, and PyBullet takes a mesh as its convex hull, so they hopped instead of rolling.
    * A file of more than ``URDF_MAX_LINKS`` links loses its ``bare_frames`` but those in
      ``keep`` (a full iCub's sensor and DH frames), so that PyBullet can load it."""
    path = Path(path)
    robot = read_urdf(path)
    drop_frames(robot, keep)
    folder = path.resolve().parent
    children = {child.get("link") for child in robot.findall("joint/child")}
    for link in robot.findall("link"):
        if link.get("name") in children:
            continue
        inertial = link.find("inertial")
        mass = inertial.find("mass") if inertial is not None else None
        if mass is not None and _number(mass.get("value"), 0.0, "a mass"):
            continue
        if inertial is not None:
            link.remove(inertial)
        inertial = ET.SubElement(link, "inertial")
        ET.SubElement(inertial, "mass", value=f"{EMPTY_MASS:g}")
        ET.SubElement(
            inertial, "inertia", ixx=f"{EMPTY_INERTIA:g}", iyy=f"{EMPTY_INERTIA:g}", izz=f"{EMPTY_INERTIA:g}",
            ixy="0", ixz="0", iyz="0",
        )  # fmt: skip
    for el in robot.iter():
        name = el.get("filename")
        if name is not None:
            el.set("filename", _file_reference(name, folder))
    links = {lk.get("name"): lk for lk in robot.findall("link")}
    for j in robot.findall("joint"):
        child = j.find("child")
        if j.get("name") not in round_wheels or child is None or child.get("link") not in links:
            continue
        link = links[child.get("link")]
        cylinder = _wheel_cylinder(link, _unit_axis(j))
        if cylinder is not None:
            for col in link.findall("collision"):
                link.remove(col)
            link.append(cylinder)
    for j in robot.findall("joint"):
        name = j.get("name", "")
        if name not in held or j.get("type") not in MOVABLE:
            continue
        kind, q = j.get("type"), float(held[name])
        j.set("type", "fixed")
        if q == 0.0 or kind not in ("revolute", "continuous", "prismatic"):
            continue
        origin = j.find("origin")
        if origin is None:
            origin = ET.SubElement(j, "origin")
        xyz = np.asarray(urdf_floats(origin.get("xyz"), "0 0 0"))
        rot = rpy_matrix(urdf_floats(origin.get("rpy"), "0 0 0"))
        dxyz, drot = joint_motion(kind, _unit_axis(j), q)
        xyz, rot = xyz + rot @ dxyz, rot @ drot
        origin.set("xyz", " ".join(f"{v:.9g}" for v in xyz))
        origin.set("rpy", " ".join(f"{v:.9g}" for v in matrix_rpy(rot)))
    return ET.tostring(robot, encoding="unicode")


def axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation by ``angle`` (rad) about the unit vector ``axis`` (Rodrigues). Written out:
    reach-v2's nominal model calls it for every joint at every control step."""
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    t = 1.0 - c
    return np.array(
        [
            [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
            [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
            [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
        ]
    )


def matrix_rpy(rot: np.ndarray) -> tuple[float, float, float]:
    """URDF roll-pitch-yaw (rad) of a rotation matrix (the inverse of ``rpy_matrix``)."""
    pitch = math.asin(max(-1.0, min(1.0, -float(rot[2, 0]))))
    if abs(math.cos(pitch)) > 1e-9:
        return math.atan2(rot[2, 1], rot[2, 2]), pitch, math.atan2(rot[1, 0], rot[0, 0])
    return math.atan2(-rot[1, 2], rot[1, 1]), pitch, 0.0


def _inertial(mass: float, com: tuple[float, float, float], ixx: float, iyy: float, izz: float) -> str:
    return (
        f'<inertial><origin xyz="{com[0]:.6g} {com[1]:.6g} {com[2]:.6g}"/><mass value="{mass:.6g}"/>'
        f'<inertia ixx="{ixx:.6g}" ixy="0" ixz="0" iyy="{iyy:.6g}" iyz="0" izz="{izz:.6g}"/></inertial>'
    )


def _cylinder_z(length: float, radius: float, rgba: str, collision: bool) -> str:
    geom = f'<geometry><cylinder radius="{radius:.6g}" length="{length:.6g}"/></geometry>'
    origin = f'<origin xyz="0 0 {length / 2:.6g}"/>'
    out = f'<visual>{origin}{geom}<material name="m{rgba}"><color rgba="{rgba}"/></material></visual>'
    if collision:
        out += f"<collision>{origin}{geom}</collision>"
    return out


def serial_arm_urdf(
    link_lengths: Sequence[float],
    joint_axes: Sequence[str],
    link_masses: Sequence[float],
    joint_damping: Sequence[float],
    joint_limits: Sequence[float],
    max_efforts: Sequence[float],
    link_radius: float = 0.025,
    base_height: float = 0.05,
) -> str:
    """A fixed-base serial arm: a base plate, one revolute joint and one cylinder link per entry
    (links point along +z at zero angles), and a massless ``ee`` link at the tip (fixed joint).

    Lengths in metres, masses in kg, damping in N*m*s/rad, limits in rad (symmetric), efforts
    in N*m.
    """
    n = len(link_lengths)
    parts = ['<?xml version="1.0"?>', '<robot name="metarobot_arm">']
    parts.append(
        '<link name="base">'
        + _inertial(0.0, (0, 0, 0), 0, 0, 0)
        + f'<visual><origin xyz="0 0 {base_height / 2:.6g}"/><geometry><cylinder radius="0.06" '
        f'length="{base_height:.6g}"/></geometry><material name="base"><color rgba="0.3 0.3 0.3 1"/>'
        "</material></visual></link>"
    )
    parent = "base"
    for i in range(n):
        length, mass, r = float(link_lengths[i]), float(link_masses[i]), link_radius
        ixx = mass * (3 * r * r + length * length) / 12.0
        izz = mass * r * r / 2.0
        parts.append(
            f'<link name="link{i}">'
            + _inertial(mass, (0, 0, length / 2), ixx, ixx, izz)
            + _cylinder_z(length, r, _PALETTE[i % 2], collision=True)
            + "</link>"
        )
        offset = base_height if i == 0 else float(link_lengths[i - 1])
        ax = AXES[joint_axes[i]]
        lim = float(joint_limits[i])
        parts.append(
            f'<joint name="joint{i}" type="revolute"><parent link="{parent}"/><child link="link{i}"/>'
            f'<origin xyz="0 0 {offset:.6g}"/><axis xyz="{ax[0]} {ax[1]} {ax[2]}"/>'
            f'<limit lower="{-lim:.6g}" upper="{lim:.6g}" effort="{float(max_efforts[i]):.6g}" '
            f'velocity="10"/><dynamics damping="{float(joint_damping[i]):.6g}" friction="0"/></joint>'
        )
        parent = f"link{i}"
    parts.append(
        '<link name="ee">'
        + _inertial(0.0, (0, 0, 0), 0, 0, 0)
        + '<visual><geometry><sphere radius="0.03"/></geometry><material name="ee">'
        '<color rgba="0.8 0.1 0.1 1"/></material></visual></link>'
    )
    parts.append(
        f'<joint name="ee_joint" type="fixed"><parent link="{parent}"/><child link="ee"/>'
        f'<origin xyz="0 0 {float(link_lengths[-1]):.6g}"/></joint>'
    )
    parts.append("</robot>")
    return "\n".join(parts)


def cartpole_urdf(pole_length: float, pole_mass: float, cart_mass: float) -> str:
    """A cart on a frictionless rail (prismatic joint ``slider`` along x) carrying a pole on a
    frictionless hinge (``hinge`` about y). Pole length in metres, masses in kg."""
    r = 0.02
    pole_ixx = pole_mass * (3 * r * r + pole_length**2) / 12.0
    cart = (0.4, 0.25, 0.15)
    cart_i = [
        cart_mass * (cart[1] ** 2 + cart[2] ** 2) / 12,
        cart_mass * (cart[0] ** 2 + cart[2] ** 2) / 12,
        cart_mass * (cart[0] ** 2 + cart[1] ** 2) / 12,
    ]
    return "\n".join(
        [
            '<?xml version="1.0"?>',
            '<robot name="metarobot_cartpole">',
            '<link name="rail">'
            + _inertial(0.0, (0, 0, 0), 0, 0, 0)
            + '<visual><origin xyz="0 0 0.05"/><geometry><box size="5.0 0.05 0.05"/></geometry>'
            '<material name="rail"><color rgba="0.4 0.4 0.4 1"/></material></visual></link>',
            '<link name="cart">'
            + _inertial(cart_mass, (0, 0, 0), *cart_i)
            + f'<visual><geometry><box size="{cart[0]} {cart[1]} {cart[2]}"/></geometry>'
            '<material name="cart"><color rgba="0.20 0.45 0.80 1"/></material></visual></link>',
            '<joint name="slider" type="prismatic"><parent link="rail"/><child link="cart"/>'
            '<origin xyz="0 0 0.15"/><axis xyz="1 0 0"/>'
            '<limit lower="-10" upper="10" effort="1000" velocity="100"/>'
            '<dynamics damping="0" friction="0"/></joint>',
            '<link name="pole">'
            + _inertial(pole_mass, (0, 0, pole_length / 2), pole_ixx, pole_ixx, pole_mass * r * r / 2)
            + _cylinder_z(pole_length, r, "0.90 0.55 0.15 1", collision=False)
            + "</link>",
            '<joint name="hinge" type="continuous"><parent link="cart"/><child link="pole"/>'
            f'<origin xyz="0 0 {cart[2] / 2:.6g}"/><axis xyz="0 1 0"/>'
            '<dynamics damping="0" friction="0"/></joint>',
            "</robot>",
        ]
    )


WHEEL_WIDTH = 0.02  # m
CHASSIS_HEIGHT = 0.04  # m
CHASSIS_LIFT = 0.01  # m: the chassis box's centre sits this far above the wheel axles


def diff_drive_urdf(
    chassis_length: float,
    track_width: float,
    chassis_mass: float,
    wheel_radius: float,
    wheel_mass: float = 0.1,
) -> str:
    """A differential-drive base: a box chassis (the base link, origin on the wheel axle),
    ``left_wheel`` (+y) and ``right_wheel`` (-y) on continuous joints about +y, ``track_width``
    apart (wheel centre to wheel centre), and two ball casters (front and rear) on fixed joints
    that touch the ground together with the wheels. Lengths in metres, masses in kg."""
    r = wheel_radius
    body_w = track_width - WHEEL_WIDTH - 0.01
    h, lift = CHASSIS_HEIGHT, CHASSIS_LIFT
    rc = 0.4 * r
    caster_x = chassis_length / 2 - rc - 0.005
    m = chassis_mass
    box_i = (m * (body_w**2 + h**2) / 12, m * (chassis_length**2 + h**2) / 12, m * (chassis_length**2 + body_w**2) / 12)
    wheel_ixx = wheel_mass * (3 * r * r + WHEEL_WIDTH**2) / 12
    wheel_iyy = wheel_mass * r * r / 2
    caster_m = 0.02
    caster_i = 2 * caster_m * rc * rc / 5
    parts = ['<?xml version="1.0"?>', '<robot name="metarobot_diff_drive">']
    parts.append(
        '<link name="chassis">'
        + _inertial(m, (0, 0, lift), *box_i)
        + f'<visual><origin xyz="0 0 {lift:.6g}"/><geometry><box size="{chassis_length:.6g} {body_w:.6g} {h:.6g}"/>'
        '</geometry><material name="chassis"><color rgba="0.20 0.45 0.80 1"/></material></visual>'
        f'<visual><origin xyz="{chassis_length / 2 - 0.02:.6g} 0 {lift + h / 2 + 0.005:.6g}"/>'
        '<geometry><box size="0.03 0.05 0.01"/></geometry><material name="nose"><color rgba="0.95 0.95 0.2 1"/>'
        "</material></visual>"
        f'<collision><origin xyz="0 0 {lift:.6g}"/><geometry><box size="{chassis_length:.6g} {body_w:.6g} {h:.6g}"/>'
        "</geometry></collision></link>"
    )
    for side, y in (("left", track_width / 2), ("right", -track_width / 2)):
        geom = f'<geometry><cylinder radius="{r:.6g}" length="{WHEEL_WIDTH:.6g}"/></geometry>'
        origin = '<origin rpy="1.5707963 0 0"/>'
        parts.append(
            f'<link name="{side}_wheel">'
            + _inertial(wheel_mass, (0, 0, 0), wheel_ixx, wheel_iyy, wheel_ixx)
            + f'<visual>{origin}{geom}<material name="wheel"><color rgba="0.15 0.15 0.15 1"/></material></visual>'
            + f"<collision>{origin}{geom}</collision></link>"
        )
        parts.append(
            f'<joint name="{side}_wheel_joint" type="continuous"><parent link="chassis"/>'
            f'<child link="{side}_wheel"/><origin xyz="0 {y:.6g} 0"/><axis xyz="0 1 0"/>'
            '<dynamics damping="0" friction="0"/></joint>'
        )
    for name, x in (("front_caster", caster_x), ("rear_caster", -caster_x)):
        geom = f'<geometry><sphere radius="{rc:.6g}"/></geometry>'
        parts.append(
            f'<link name="{name}">'
            + _inertial(caster_m, (0, 0, 0), caster_i, caster_i, caster_i)
            + f'<visual>{geom}<material name="caster"><color rgba="0.5 0.5 0.5 1"/></material></visual>'
            + f"<collision>{geom}</collision></link>"
        )
        parts.append(
            f'<joint name="{name}_joint" type="fixed"><parent link="chassis"/><child link="{name}"/>'
            f'<origin xyz="{x:.6g} 0 {-(r - rc):.6g}"/></joint>'
        )
    parts.append("</robot>")
    return "\n".join(parts)


FINGER_THICKNESS = 0.012  # m, along the closing direction
PALM_HEIGHT = 0.02  # m
WORKSPACE = 0.25  # m: the gripper's x and y joints range over +/- this
LIFT_RANGE = (0.0, 0.4)  # m: range of the gripper's z joint


def gripper_urdf(finger_length: float, finger_width: float, max_opening: float, palm_mass: float = 0.3) -> str:
    """A parallel-jaw gripper carried by a gantry: prismatic ``x``, ``y``, ``z`` joints and a
    revolute ``yaw`` joint from a fixed world link to the palm, and two fingers on prismatic
    joints (``left_finger`` moves along -y toward the centre, ``right_finger`` along +y), whose
    inner faces are ``max_opening`` apart when fully open. Each finger is a box
    ``finger_width`` (x) by ``FINGER_THICKNESS`` (y) by ``finger_length`` (z) hanging from the
    palm. The gantry's zero pose puts the palm's underside at z = 0. Lengths in metres."""
    half_open = max_opening / 2
    palm_y = max_opening + 2 * FINGER_THICKNESS + 0.02
    palm_x = max(finger_width + 0.01, 0.03)
    tiny = _inertial(0.05, (0, 0, 0), 1e-4, 1e-4, 1e-4)
    parts = ['<?xml version="1.0"?>', '<robot name="metarobot_gripper">', '<link name="world"/>']
    parent = "world"
    for name, kind, axis, (lo, hi) in (
        ("x", "prismatic", "1 0 0", (-WORKSPACE, WORKSPACE)),
        ("y", "prismatic", "0 1 0", (-WORKSPACE, WORKSPACE)),
        ("z", "prismatic", "0 0 1", LIFT_RANGE),
        ("yaw", "revolute", "0 0 1", (-math.pi, math.pi)),
    ):
        child = "palm" if name == "yaw" else f"carriage_{name}"
        body = tiny
        if child == "palm":
            body = (
                _inertial(palm_mass, (0, 0, PALM_HEIGHT / 2), 1e-3, 1e-3, 1e-3)
                + f'<visual><origin xyz="0 0 {PALM_HEIGHT / 2:.6g}"/><geometry><box size="{palm_x:.6g} {palm_y:.6g} '
                f'{PALM_HEIGHT}"/></geometry><material name="palm"><color rgba="0.3 0.3 0.35 1"/></material></visual>'
                + f'<visual><origin xyz="0 0 {PALM_HEIGHT + 0.1:.6g}"/><geometry><cylinder radius="0.008" '
                'length="0.2"/></geometry><material name="rod"><color rgba="0.6 0.6 0.6 1"/></material></visual>'
            )
        parts.append(f'<link name="{child}">{body}</link>')
        parts.append(
            f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
            f'<axis xyz="{axis}"/><limit lower="{lo:.6g}" upper="{hi:.6g}" effort="200" velocity="5"/>'
            '<dynamics damping="0" friction="0"/></joint>'
        )
        parent = child
    m = 0.05
    for side, y, axis in (
        ("left", half_open + FINGER_THICKNESS / 2, "0 -1 0"),
        ("right", -half_open - FINGER_THICKNESS / 2, "0 1 0"),
    ):
        size = f"{finger_width:.6g} {FINGER_THICKNESS} {finger_length:.6g}"
        origin = f'<origin xyz="0 0 {-finger_length / 2:.6g}"/>'
        ixx = m * (FINGER_THICKNESS**2 + finger_length**2) / 12
        parts.append(
            f'<link name="{side}_finger">'
            + _inertial(m, (0, 0, -finger_length / 2), ixx, ixx, m * finger_width**2 / 12)
            + f'<visual>{origin}<geometry><box size="{size}"/></geometry><material name="{side}pad">'
            '<color rgba="0.9 0.75 0.2 1"/></material></visual>'
            + f'<collision>{origin}<geometry><box size="{size}"/></geometry></collision></link>'
        )
        parts.append(
            f'<joint name="{side}_finger" type="prismatic"><parent link="palm"/><child link="{side}_finger"/>'
            f'<origin xyz="0 {y:.6g} 0"/><axis xyz="{axis}"/>'
            f'<limit lower="0" upper="{half_open:.6g}" effort="100" velocity="1"/>'
            '<dynamics damping="0" friction="0"/></joint>'
        )
    parts.append("</robot>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# A user's bare mesh (an object for grasp)

MESH_SUFFIXES = (".obj", ".stl")


def read_mesh(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3, in the file's units) and triangles (F, 3, vertex indices) of an OBJ or
    STL (ASCII or binary) file; polygons are split into triangle fans. ``MetarobotError`` names
    what is wrong with the file."""
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise MetarobotError(f"mesh {path} must be an .obj or .stl file")
    if not path.exists():
        raise MetarobotError(f"cannot read mesh {path}: no such file")
    if not path.is_file():  # a FIFO or device would block the reader forever
        raise MetarobotError(f"cannot read mesh {path}: not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MetarobotError(f"cannot read mesh {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".obj":
            vertices, faces = _parse_obj(data.decode(errors="replace"))
        else:
            vertices, faces = _parse_stl(data)
    except (ValueError, IndexError) as exc:
        raise MetarobotError(f"mesh {path} does not parse: {exc}") from None
    if len(faces) < 4 or not np.isfinite(vertices).all():
        raise MetarobotError(f"mesh {path} has {len(faces)} triangles; a solid needs at least 4")
    return vertices, faces


def _parse_obj(text: str) -> tuple[np.ndarray, np.ndarray]:
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            vertices.append([float(v) for v in parts[1:4]])
        elif parts[0] == "f":
            idx = [int(tok.split("/")[0]) for tok in parts[1:]]
            idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
            faces += [[idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1)]
    v, f = np.asarray(vertices, dtype=float).reshape(-1, 3), np.asarray(faces, dtype=int).reshape(-1, 3)
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError("a face refers to a vertex that does not exist")
    return v, f


def _parse_stl(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    if data[:5] == b"solid" and b"facet" in data[:1000]:
        nums = [
            [float(x) for x in line.split()[1:4]]
            for line in data.decode(errors="replace").splitlines()
            if line.strip().startswith("vertex")
        ]
        tri = np.asarray(nums, dtype=float).reshape(-1, 3, 3)
    else:
        if len(data) < 84:
            raise ValueError("too short for a binary STL")
        n = int(np.frombuffer(data[80:84], dtype="<u4")[0])
        if len(data) < 84 + 50 * n:
            raise ValueError(f"binary STL announces {n} triangles but holds fewer")
        rec = np.frombuffer(
            data[84 : 84 + 50 * n], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
        )
        tri = rec["v"].astype(float)
    return tri.reshape(-1, 3), np.arange(len(tri) * 3).reshape(-1, 3)


def mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume (file units cubed) of a closed mesh (divergence theorem; 0 for a mesh
    that encloses nothing)."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return float(abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)


def mesh_centroid(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Centre (file units) of the volume a closed mesh encloses (of its vertices when it
    encloses none): where a uniform solid's centre of mass lies."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    signed = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    total = signed.sum()
    if abs(total) < 1e-9 * max(float(np.ptp(vertices, axis=0).prod()), 1e-30):
        return vertices.mean(0)
    return (signed[:, None] * (a + b + c) / 4.0).sum(0) / total


def mesh_is_convex(vertices: np.ndarray, faces: np.ndarray, tolerance: float = 0.05) -> bool:
    """Whether every vertex lies behind every face's plane (within ``tolerance`` times the
    mesh's size): a closed mesh with that property is its own convex hull, or near enough
    (a soccer ball's 3% seams) that the hull stands in for it in contact."""
    size = float(np.linalg.norm(vertices.max(0) - vertices.min(0))) or 1.0
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    normals = np.cross(b - a, c - a)
    lengths = np.linalg.norm(normals, axis=1)
    keep = lengths > 1e-6 * size * size  # slivers: their normals are numerical noise
    normals, a = normals[keep] / lengths[keep, None], a[keep]
    centre = vertices.mean(0)
    # orient every normal outward from the centre (face winding in real files is unreliable)
    flip = np.einsum("ij,ij->i", normals, a - centre) < 0
    normals[flip] *= -1
    for start in range(0, len(normals), 512):  # chunks keep memory small on big meshes
        n, p0 = normals[start : start + 512], a[start : start + 512]
        height = vertices @ n.T - np.einsum("ij,ij->i", n, p0)
        if (height > tolerance * size).any():
            return False
    return True


def write_obj(vertices: np.ndarray, faces: np.ndarray, path: Path) -> None:
    """An OBJ file of the mesh (for V-HACD, which reads OBJ only)."""
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in vertices]
    lines += [f"f {i + 1} {j + 1} {k + 1}" for i, j, k in faces]
    path.write_text("\n".join(lines) + "\n")
