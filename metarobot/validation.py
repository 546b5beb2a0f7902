"""Validation at the boundaries where values enter: settings (CLI, YAML), task JSON, URDF files
and checkpoints. Every check runs before any work starts and fails with a ``MetarobotError``
whose one-line message names the value and the allowed range.

Resource limits follow from the machine: at most ``cores x 4`` worker processes, and a memory
estimate of the networks and the rollouts of one iteration is checked against the memory that
is available before anything is allocated.
"""

from __future__ import annotations

import math
import os
import re
import stat
import typing
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from metarobot.errors import MetarobotError

F = TypeVar("F", bound=Callable[..., Any])

#: worker processes per CPU core at most (more only adds memory and context switches)
WORKERS_PER_CORE = 4
#: seeds are used as 32-bit numpy seeds (``np.random.seed(seed % 2**32)``)
SEED_MAX = 2**32 - 1
#: a user's URDF: larger files or more links/joints than this are refused before PyBullet sees
#: them (10,000 joints segfaulted inside ``loadURDF``; PyBullet answers no ``getLinkState`` on
#: a body of 128 joints or more). The tags are counted before parsing too, against
#: ``URDF_MAX_TAGS`` (a parse of 100,000 elements is slow; a ``<transmission>`` names joints too)
URDF_MAX_BYTES = 10 * 2**20
URDF_MAX_LINKS = 128
URDF_MAX_JOINTS = 127
URDF_MAX_TAGS = 1024
#: a bare mesh file given where a URDF may go (an object as .obj/.stl): only size and kind are checked
MESH_MAX_BYTES = 100 * 2**20
MESH_SUFFIXES = (".obj", ".stl", ".dae", ".ply")
#: settings and task files are small; larger ones are refused before parsing
TEXT_MAX_BYTES = 2**20
#: nesting depth of a YAML/JSON document (deeper ones exhaust the parsers' recursion)
MAX_NESTING = 32
#: fraction of the available memory one run may plan to use
MEMORY_FRACTION = 0.5


class DivergedError(MetarobotError):
    """Training produced non-finite losses or parameters."""


# -- the machine ------------------------------------------------------------------------------


def cpu_count() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def max_workers() -> int:
    return cpu_count() * WORKERS_PER_CORE


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``; total RAM elsewhere)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


# -- scalar settings --------------------------------------------------------------------------


def _label(name: str) -> str:
    return name if name.startswith("-") else name.replace("_", "-")


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]`` (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetarobotError(f"{_label(name)} must be an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise MetarobotError(f"{_label(name)}={value} is out of range [{low}, {high}]")
    return int(value)


def check_float(
    name: str, value: Any, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> float:
    """``value`` as a finite float in the interval (``low_open``/``high_open``: bounds excluded)."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    interval = f"{lo}{low:g}, {high:g}{hi}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetarobotError(f"{_label(name)} must be a number in {interval}, got {value!r}")
    v = float(value)
    ok = math.isfinite(v) and (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    if not ok:
        raise MetarobotError(f"{_label(name)}={value!r} is out of range {interval}")
    return v


def check_seed(value: Any, name: str = "seed") -> int:
    return check_int(name, value, 0, SEED_MAX)


def check_workers(value: Any, name: str = "workers") -> int:
    limit = max_workers()
    if isinstance(value, int) and not isinstance(value, bool) and value > limit:
        raise MetarobotError(
            f"{_label(name)}={value} is more than this machine's {cpu_count()} cores x {WORKERS_PER_CORE} "
            f"(allowed: 0..{limit})"
        )
    return check_int(name, value, 0, limit)


_DEVICE = re.compile(r"^(cpu|cuda|mps)(:(\d{1,3}))?$")


def check_device(value: Any, name: str = "device") -> str:
    """A torch device string this machine has: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if not isinstance(value, str) or not _DEVICE.match(value) or (value.startswith(("cpu:", "mps:"))):
        raise MetarobotError(f"{_label(name)} must be cpu, cuda, cuda:N or mps, got {value!r}")
    if value == "cpu":
        return value
    import torch

    if value.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(value.split(":")[1]) if ":" in value else 0
        if count == 0:
            raise MetarobotError(f"{_label(name)}={value}: this torch build or machine has no CUDA device (use cpu)")
        if index >= count:
            raise MetarobotError(f"{_label(name)}={value}: only cuda:0..{count - 1} exist here")
        return value
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        raise MetarobotError(f"{_label(name)}={value}: MPS is not available on this machine (use cpu)")
    return value


# -- meta-training settings -------------------------------------------------------------------

#: allowed ranges of every integer and float setting of ``MetaConfig``
INT_RANGES: dict[str, tuple[int, int]] = {
    "iterations": (1, 1_000_000),
    "meta_batch": (1, 10_000),
    "episodes_per_update": (1, 10_000),
    "inner_steps": (1, 100),
    "outer_epochs": (1, 1000),
    "outer_minibatches": (1, 1000),
    "ppo_epochs": (1, 1000),
    "ppo_minibatches": (1, 10_000),
    "rl2_envs": (1, 1024),
    "eval_tasks": (0, 10_000),
    "context_dim": (1, 1024),
    "context_aux_steps": (1, 10_000),
    "context_head": (0, 4096),
}
#: name: (low, high, low_open, high_open)
FLOAT_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "inner_lr": (0.0, 100.0, True, False),
    "outer_lr": (0.0, 1.0, True, False),
    "ppo_lr": (0.0, 1.0, True, False),
    "clip_range": (0.0, 1.0, True, False),
    "gamma": (0.0, 1.0, True, False),
    "gae_lambda": (0.0, 1.0, False, False),
    "vf_coef": (0.0, 100.0, False, False),
    "ent_coef": (0.0, 10.0, False, False),
    "reptile_step": (0.0, 1.0, True, False),
    # the policy's initial standard deviation exp(log_std_init): 2e-9 .. 7.4 (actions are in [-1, 1])
    "log_std_init": (-20.0, 2.0, False, False),
    "context_aux_coef": (0.0, 1000.0, False, False),
    "context_action_coef": (0.0, 1000.0, False, False),
    "teacher_fraction": (0.0, 1.0, False, True),
    "context_dropout": (0.0, 1.0, False, True),
}
HIDDEN_MAX_LAYERS = 8
HIDDEN_MAX_UNITS = 4096


def hidden_sizes(value: Any) -> tuple[int, ...]:
    """``hidden_sizes`` as a tuple of layer widths (a YAML list or a comma-separated string)."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if all(re.fullmatch(r"\d+", p) for p in parts):
            value = [int(p) for p in parts]
    if not isinstance(value, list | tuple):
        raise MetarobotError(f"hidden-sizes must be a list of layer widths such as [64, 64], got {value!r}")
    if not 1 <= len(value) <= HIDDEN_MAX_LAYERS:
        raise MetarobotError(f"hidden-sizes must have 1..{HIDDEN_MAX_LAYERS} layers, got {len(value)}")
    return tuple(check_int("hidden-sizes entry", v, 1, HIDDEN_MAX_UNITS) for v in value)


def validate_meta_config(cfg: Any) -> None:
    """Every field of a ``MetaConfig``: type, range, device and the machine's limits."""
    if not isinstance(cfg.family, str) or not cfg.family:
        raise MetarobotError(f"family must be a family name, got {cfg.family!r}")
    from metarobot.algorithms import get_algorithm

    for name, (low, high) in INT_RANGES.items():
        if name == "iterations":  # an algorithm that acts untrained may run none (identify)
            low = get_algorithm(str(cfg.algo)).min_iterations
        check_int(name, getattr(cfg, name), low, high)
    for name, (lo, hi, lo_open, hi_open) in FLOAT_RANGES.items():
        check_float(name, getattr(cfg, name), lo, hi, lo_open, hi_open)
    hidden_sizes(cfg.hidden_sizes)
    check_workers(cfg.workers)
    check_seed(cfg.seed)
    check_device(cfg.device)
    need = network_bytes(cfg.hidden_sizes, cfg.meta_batch)
    avail = available_memory()
    if need > MEMORY_FRACTION * avail:
        raise MetarobotError(
            f"hidden-sizes {list(cfg.hidden_sizes)} need about {_gib(need)} for the networks and their copies; "
            f"{_gib(avail)} is available"
        )


def network_bytes(sizes: Iterable[int], meta_batch: int, io_dims: int = 64) -> int:
    """Bytes of the policy and value networks (float32) times the copies a run keeps: Adam's two
    moments, gradients, the inner-loop copies of a meta-batch and SB3's second policy."""
    widths = [io_dims, *[int(s) for s in sizes], io_dims]
    params = 2 * sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    copies = 8 + 2 * min(int(meta_batch), 16)
    return 4 * params * copies


def check_run_memory(cfg: Any, episode_steps: int, obs_dim: int, act_dim: int) -> None:
    """Refuse settings whose rollouts of one iteration do not fit in the available memory."""
    per_step = 4 * (obs_dim + act_dim + 8)  # float32: observation, action, reward, value, log-prob, ...
    # one iteration keeps every phase's rollouts and, for maml, an autograd graph of about as much
    phases = cfg.inner_steps + 1
    need = 3 * phases * cfg.meta_batch * cfg.episodes_per_update * episode_steps * per_step
    need += network_bytes(cfg.hidden_sizes, cfg.meta_batch, max(obs_dim, act_dim))
    avail = available_memory()
    if need > MEMORY_FRACTION * avail:
        raise MetarobotError(
            f"meta-batch {cfg.meta_batch} x episodes-per-update {cfg.episodes_per_update} x "
            f"{phases} phase(s) of {episode_steps}-step episodes need about {_gib(need)} per iteration; "
            f"{_gib(avail)} is available"
        )


# -- files ------------------------------------------------------------------------------------


def check_regular_file(path: Path, what: str, max_bytes: int) -> int:
    """The size of ``path`` once it is known to be an ordinary file no larger than ``max_bytes``
    (a FIFO or device would block or never end)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MetarobotError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise MetarobotError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise MetarobotError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise MetarobotError(f"{what} {path} is not a regular file (a pipe or device?)")
    if st.st_size > max_bytes:
        raise MetarobotError(f"{what} {path} is {st.st_size:,} bytes; at most {max_bytes:,} are read")
    return int(st.st_size)


def read_text_file(path: Path, what: str, max_bytes: int = TEXT_MAX_BYTES) -> str:
    """The UTF-8 text of a small ordinary file."""
    check_regular_file(path, what, max_bytes)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MetarobotError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetarobotError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def check_nesting(data: Any, what: str, limit: int = MAX_NESTING) -> None:
    """Refuse documents nested deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise MetarobotError(f"{what} is nested more than {limit} levels deep")
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)


def load_json_object(path: Path, what: str) -> dict[str, Any]:
    import json

    text = read_text_file(path, what)
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise MetarobotError(f"{what} {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise MetarobotError(f"{what} {path} is nested too deeply") from None
    except ValueError as exc:
        raise MetarobotError(f"{what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise MetarobotError(f"{what} {path} must hold a JSON object")
    check_nesting(data, f"{what} {path}")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number (JSON has no NaN or Infinity)")


def load_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    import yaml

    text = read_text_file(path, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise MetarobotError(f"{what} {path} is not valid YAML: {first}") from None
    except RecursionError:
        raise MetarobotError(f"{what} {path} is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MetarobotError(f"{what} {path} must be a YAML mapping of settings")
    check_nesting(data, f"{what} {path}")
    return data


# -- URDF -------------------------------------------------------------------------------------

_TAG = re.compile(rb"<\s*(link|joint)\b")
#: numeric attributes (element, attribute) of URDF that must be finite numbers; joint limits
#: may be infinite (an unlimited joint)
_NUMERIC: dict[str, tuple[str, ...]] = {
    "mass": ("value",),
    "inertia": ("ixx", "ixy", "ixz", "iyy", "iyz", "izz"),
    "origin": ("xyz", "rpy"),
    "axis": ("xyz",),
    "box": ("size",),
    "cylinder": ("radius", "length"),
    "sphere": ("radius",),
    "capsule": ("radius", "length"),
    "mesh": ("scale",),
    "dynamics": ("damping", "friction"),
    "limit": ("effort", "velocity"),
}


XACRO_NS = "http://www.ros.org/wiki/xacro"


def number_list(text: str) -> list[float]:
    """A URDF attribute's numbers. Commas separate them as spaces do: PyBullet's reader takes
    ``rpy="1.57, 1.31 1.57"`` (ARMAR-6's file) as three numbers, so metarobot does too. Raises
    ``ValueError`` on anything else that is not a number."""
    return [float(v) for v in text.replace(",", " ").split()]


_PREFIXED = re.compile(rb"(?:<\s*/?|\s)([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*")
_DECLARED = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
_ROOT_TAG = re.compile(rb"<\s*[A-Za-z_][\w.:-]*")


def parse_xml(raw: bytes) -> ET.Element:
    """The root element of an XML document, as PyBullet's reader takes it: a prefix used without
    its ``xmlns`` declaration (Drake's ``drake:acceleration`` in released URDFs, a ``xacro:``
    tag) is declared here instead of refusing the file. ``ET.ParseError`` otherwise."""
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        if "unbound prefix" not in str(exc):
            raise
    used = {m.group(1) for m in _PREFIXED.finditer(raw)} - {m.group(1) for m in _DECLARED.finditer(raw)}
    used -= {b"xml", b"xmlns"}
    body = re.sub(rb"<!--.*?-->", lambda m: b" " * len(m.group(0)), raw, flags=re.S)
    root = _ROOT_TAG.search(body)  # the first element's name (a declaration or comment has none)
    if root is None or not used:
        return ET.fromstring(raw)  # raises the parser's own error
    decl = b"".join(
        b' xmlns:%s="%s"' % (name, XACRO_NS.encode() if name == b"xacro" else b"urn:undeclared:" + name)
        for name in sorted(used)
    )
    return ET.fromstring(raw[: root.end()] + decl + raw[root.end() :])


def bare_frames(robot: ET.Element, keep: Iterable[str] = ()) -> set[str]:
    """Links of a parsed URDF that are frames only -- no inertial, visual or collision, on a
    fixed joint, with nothing below them but other such frames (sensor frames, DH frames, a
    tool's TCP) -- less those in ``keep``. PyBullet makes a body of each; a full iCub has 174
    of them among its 213 links, over PyBullet's limit, so a copy without them is loaded."""
    kept = set(keep)
    children: dict[str, list[str]] = {}
    on_fixed = set()
    for j in robot.findall("joint"):
        parent, child = j.find("parent"), j.find("child")
        if parent is None or child is None:
            continue
        children.setdefault(parent.get("link", ""), []).append(child.get("link", ""))
        if j.get("type") == "fixed":
            on_fixed.add(child.get("link", ""))
    bare = {
        name
        for lk in robot.findall("link")
        if (name := lk.get("name", "")) in on_fixed
        and name not in kept
        and all(lk.find(t) is None for t in ("inertial", "visual", "collision"))
    }
    dropped: set[str] = set()
    grew = True
    while grew:  # leaves first: a frame whose frames were all dropped is a leaf then
        grew = False
        for name in bare - dropped:
            if all(c in dropped for c in children.get(name, ())):
                dropped.add(name)
                grew = True
    return dropped


def check_urdf_file(path: Path | str, what: str = "URDF") -> None:
    """Refuse a URDF that would hang, crash or overload PyBullet, before PyBullet reads it: not
    an ordinary file, too large, more than ``URDF_MAX_LINKS`` links or ``URDF_MAX_JOINTS``
    joints, numbers that are not numbers, or a mesh that is a pipe or a device."""
    path = Path(path)
    if path.suffix.lower() in MESH_SUFFIXES:
        check_regular_file(path, "mesh", MESH_MAX_BYTES)
        return
    check_regular_file(path, what, URDF_MAX_BYTES)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MetarobotError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    links = joints = 0
    for m in _TAG.finditer(raw):  # counted before parsing: a parse of 100,000 elements is slow too
        if m.group(1) == b"link":
            links += 1
        else:
            joints += 1
    if links + joints <= URDF_MAX_TAGS:
        try:
            root = parse_xml(raw)
        except ET.ParseError as exc:
            raise MetarobotError(f"{what} {path} does not parse: {exc}") from None
        links, joints = len(root.findall("link")), len(root.findall("joint"))
        frames = len(bare_frames(root)) if links > URDF_MAX_LINKS else 0  # dropped from a copy to load
    else:
        frames = 0
    if links - frames > URDF_MAX_LINKS or joints - frames > URDF_MAX_JOINTS:
        less = f" ({links - frames} and {joints - frames} without its {frames} bare frames)" if frames else ""
        raise MetarobotError(
            f"{what} {path} has {links} links and {joints} joints{less}; at most {URDF_MAX_LINKS} and "
            f"{URDF_MAX_JOINTS} are supported (PyBullet's limit)"
        )
    for elem in root.iter():
        tag = elem.tag if isinstance(elem.tag, str) else ""
        for attr in _NUMERIC.get(tag, ()):
            text = elem.get(attr)
            if text is None or text.lstrip().startswith("$("):
                # a ROS substitution left in a released file (the Husky's IMU origin is
                # "$(optenv HUSKY_IMU_XYZ 0.19 0 0.149)"): PyBullet loads such files, and
                # metarobot's own reader refuses it only where it needs that value
                continue
            try:
                values = number_list(text)
            except ValueError:
                raise MetarobotError(f"{what} {path}: <{tag} {attr}={text!r}> is not a number") from None
            if not all(math.isfinite(v) for v in values):
                raise MetarobotError(f"{what} {path}: <{tag} {attr}={text!r}> must be finite")
        if tag == "limit":
            for attr in ("lower", "upper"):
                text = elem.get(attr)
                if text is None:
                    continue
                try:
                    v = float(text)
                except ValueError:
                    raise MetarobotError(f"{what} {path}: <limit {attr}={text!r}> is not a number") from None
                if math.isnan(v):
                    raise MetarobotError(f"{what} {path}: <limit {attr}={text!r}> is not a number")
        if tag == "mesh":
            name = elem.get("filename") or ""
            if name and "://" not in name:
                mesh = Path(name) if Path(name).is_absolute() else path.parent / name
                if mesh.exists() and not mesh.is_file():
                    raise MetarobotError(f"{what} {path}: mesh {name} is not a regular file (a pipe or directory?)")
    for elem in root.iter("mass"):
        if float(elem.get("value", "0")) < 0:
            raise MetarobotError(f"{what} {path}: <mass value={elem.get('value')!r}> must be >= 0")


# -- tasks ------------------------------------------------------------------------------------


def _number_ok(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_task_values(cls: type, values: Mapping[str, Any]) -> None:
    """The fields of a task (class ``cls``, before it is built) have the types the dataclass
    declares: numbers are finite numbers (not bools), integers are integers, strings are
    strings, tuples hold such values."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - a third-party task whose hints do not resolve: values only
        hints = {}
    family = getattr(cls, "family", "") or cls.__name__
    for name, value in values.items():
        kinds = _leaf_kinds(hints.get(name))
        items = value if isinstance(value, list | tuple) else (value,)
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise MetarobotError(f"{family} task {name}={value!r}: values must be finite numbers")
            if not kinds:  # unknown annotation
                continue
            if v is None and type(None) in kinds:
                continue
            if float in kinds and _number_ok(v):
                continue
            if int in kinds and isinstance(v, int) and not isinstance(v, bool):
                continue
            if str in kinds and isinstance(v, str):
                continue
            if bool in kinds and isinstance(v, bool):
                continue
            allowed = " or ".join(sorted(k.__name__ for k in kinds if k is not type(None)))
            raise MetarobotError(f"{family} task {name}={value!r}: each value must be a {allowed}")


def _leaf_kinds(hint: Any) -> set[type]:
    if hint is None:
        return set()
    if hint in (int, float, str, bool, type(None)):
        return {hint}
    out: set[type] = set()
    for arg in typing.get_args(hint):
        if arg is Ellipsis:
            continue
        out |= _leaf_kinds(arg)
    return out


def check_task_layout(task: Any) -> None:
    """Family-specific checks a user-written task needs beyond its own ``validate``: a navigate
    map must leave the robot a way from its start to the goal (no obstacle over the start)."""
    if getattr(task, "family", "") == "navigate":
        from metarobot.envs.navigate import path_exists

        if not path_exists(task):
            raise MetarobotError(
                "navigate task: an obstacle covers the start (0, 0) or the goal, or no path joins them"
            )


# -- checkpoints ------------------------------------------------------------------------------


def check_finite_tensors(tensors: Mapping[str, Any], what: str) -> None:
    """Refuse (``DivergedError``) any non-finite entry of a name -> tensor mapping."""
    import torch

    for name, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise DivergedError(f"{what}: {name} holds NaN or infinite values")


def validate_checkpoint(data: dict[str, Any], path: Path | str) -> None:
    """Types and values of a checkpoint's fields, before any of it is used."""
    import torch

    from metarobot.config import MetaConfig

    config = data["config"]
    if not isinstance(config, dict):
        raise MetarobotError(f"checkpoint {path}: config is not a mapping")
    try:  # the device it was trained on need not exist here: it is chosen again at load
        MetaConfig.from_dict({**config, "device": "cpu"})
    except MetarobotError as exc:
        raise MetarobotError(f"checkpoint {path} holds bad settings: {exc}") from None
    if data.get("family", config.get("family")) != config.get("family"):
        raise MetarobotError(f"checkpoint {path}: family {data.get('family')!r} differs from its settings'")
    for key in ("iteration", "env_steps"):
        v = data.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise MetarobotError(f"checkpoint {path}: {key} must be a non-negative integer, got {v!r}")
    state = data["policy_state"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MetarobotError(f"checkpoint {path}: policy_state is not a mapping of tensors")
    try:
        check_finite_tensors(state, f"checkpoint {path}")
    except DivergedError as exc:
        raise MetarobotError(str(exc)) from None
    for key, kind in (("optimizer_state", dict), ("rng_state", dict), ("history", list)):
        if key in data and not isinstance(data[key], kind):
            raise MetarobotError(f"checkpoint {path}: {key} must be a {kind.__name__}")
    if any(not isinstance(row, dict) for row in data.get("history", [])):
        raise MetarobotError(f"checkpoint {path}: history rows must be mappings")


# -- training ---------------------------------------------------------------------------------


def check_finite_states(states: Iterable[Mapping[str, Any]], what: str) -> None:
    for i, state in enumerate(states):
        check_finite_tensors(state, f"{what} (task {i})")


def check_inner_states(states: Iterable[Mapping[str, Any]], iteration: int | None, step: int) -> None:
    """After inner update ``step``: adapted parameters must be finite (``iteration`` None: at test time)."""
    try:
        check_finite_states(states, "adapted parameters")
    except DivergedError as exc:
        where = f"training diverged in iteration {iteration}" if iteration is not None else "adaptation diverged"
        raise DivergedError(f"{where}: inner update {step + 1}: {exc} (lower --inner-lr)") from None


def divergence_hook(method: F) -> F:
    """Wrap a ``MetaLearner`` step: non-finite parameters, losses or action distributions end
    training with a ``DivergedError`` (one line) instead of a torch traceback; the caller keeps
    the last good checkpoint because nothing is saved after the failed step."""
    import functools

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        iteration = getattr(self, "iteration", 0) + 1
        try:
            result = method(self, *args, **kwargs)
        except (ValueError, MetarobotError) as exc:
            # torch's distribution check (in this process, or reported by a sampling worker)
            if "invalid values" in str(exc) and not isinstance(exc, DivergedError):
                raise DivergedError(
                    f"training diverged in iteration {iteration}: the policy's action distribution became "
                    "NaN (lower --inner-lr/--outer-lr)"
                ) from None
            raise
        try:
            check_finite_tensors(dict(self.policy.named_parameters()), f"iteration {iteration}")
        except DivergedError as exc:
            raise DivergedError(
                f"training diverged in iteration {iteration}: {exc} after the outer update (lower --outer-lr)"
            ) from None
        if isinstance(result, dict):
            bad = [k for k, v in result.items() if isinstance(v, float) and k.endswith("loss") and not math.isfinite(v)]
            if bad:
                raise DivergedError(f"training diverged in iteration {iteration}: non-finite {', '.join(bad)}")
        return result

    return typing.cast(F, wrapper)
