"""The task-family API: a family is a distribution over tasks; a task is one robot plus its goal.

Tasks are frozen dataclasses of plain values (hashable, printable, JSON round-trip exact).
Families sample them with an explicit ``np.random.Generator`` and split them into

* ``train`` -- samples from the training ranges whose content hash falls in the train buckets,
* ``test``  -- samples from the *same* ranges whose hash falls in the held-out bucket,
* ``ood``   -- samples with at least one parameter outside the training ranges.

Because the train/test assignment is a function of the task itself, no task can ever be in
both splits, however many are drawn; ``ood`` tasks are outside the ranges, so they cannot be
in either of the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload

import numpy as np

from metarobot.errors import MetarobotError
from metarobot.validation import check_task_layout, check_task_values, check_urdf_file, load_json_object

if TYPE_CHECKING:  # pragma: no cover
    from metarobot.envs.base import MetaRobotEnv
    from metarobot.online import ActionIdentification, Identification
    from metarobot.privileged import PrivilegedEnv

Split = Literal["train", "test", "ood"]
P = TypeVar("P", bound="Param")
SPLITS: tuple[str, ...] = ("train", "test", "ood")

#: one task in ``_TEST_BUCKETS`` of ``_N_BUCKETS`` hash buckets is held out as ``test``.
_N_BUCKETS = 5
_TEST_BUCKETS = frozenset({0})
#: seeds of the canonical held-out sets that ``--split test --index I`` refer to.
HELDOUT_SEEDS: dict[str, int] = {"train": 1001, "test": 2002, "ood": 3003}
#: size of the canonical held-out set per split (``--index`` must be below this).
HELDOUT_SIZE = 100
#: the PPO settings that take SB3's own step count (more, smaller Adam steps per sample) and a
#: policy that starts wider, for a family's ``algo_defaults`` where its train split chose them
#: (navigate, reach: bench/RESULTS.md, "Memory or recipe?")
SB3_STEP_RECIPE: dict[str, Any] = {"ppo_minibatches": 10, "log_std_init": 0.0}


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclasses.dataclass(frozen=True)
class Task:
    """Base class of every family's task dataclass (plain data, no behaviour beyond I/O)."""

    family: ClassVar[str] = ""
    #: the task's parameter spec (its family's): what each field may hold, what training draws,
    #: what ``ood`` draws, unit and meaning; validation, sampling, ``metarobot families`` and the
    #: oracle's normalised parameters all derive from it
    params: ClassVar[tuple[Param, ...]] = ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every declared parameter within its hard bounds: ``MetarobotError`` naming the field,
        the value and the bounds otherwise. Subclasses add what a spec cannot say (lengths that
        must agree, fields that need a file) after calling this."""
        from_file = self.from_file
        for param in self.params:
            if param.field:
                param.check(self.family, getattr(self, param.name), from_file)

    @overload
    @classmethod
    def param(cls, name: str) -> Param: ...
    @overload
    @classmethod
    def param(cls, name: str, kind: type[P]) -> P: ...
    @classmethod
    def param(cls, name: str, kind: type[Param] | None = None) -> Param:
        """The declared parameter ``name`` (``TypeError`` unless it is a ``kind``: a typed look-up)."""
        found = find_param(cls.params, name)
        if kind is not None and not isinstance(found, kind):
            raise TypeError(f"{cls.family} parameter {name!r} is a {type(found).__name__}, not a {kind.__name__}")
        return found

    @property
    def from_file(self) -> bool:
        """Whether the robot comes from a user's file (``urdf_path``): its values may lie outside
        what generated tasks hold (a parameter's ``file_bounds``)."""
        return getattr(self, "urdf_path", None) is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.family}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("omit_default") and value == f.default:
                continue  # a field only files set: absent, so generated tasks keep their digests
            out[f.name] = _to_jsonable(value)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        data = dict(data)
        fam = data.pop("family", cls.family)
        if fam != cls.family:
            raise MetarobotError(f"task is for family {fam!r}, expected {cls.family!r}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise MetarobotError(f"unknown {cls.family} task field(s): {', '.join(sorted(unknown))}")
        missing = [n for n, f in names.items() if n not in data and f.default is dataclasses.MISSING]
        if missing:
            raise MetarobotError(f"{cls.family} task is missing field(s): {', '.join(missing)}")
        check_task_values(cls, data)  # types and finiteness, before the task's own range checks
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        task = cls(**kwargs)
        task.validate()  # again: a third-party task's own ``__post_init__`` may not call it
        return task

    def digest(self) -> str:
        """A stable content hash (hex) of the task, independent of the Python process."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


#: ``dataclasses.field`` metadata of a task field that only tasks read from a user's file set
FILE_ONLY: dict[str, Any] = {"omit_default": True}


def in_test_bucket(task: Task) -> bool:
    return int(task.digest()[:8], 16) % _N_BUCKETS in _TEST_BUCKETS


@dataclasses.dataclass(frozen=True)
class Range:
    """A closed interval ``[low, high]`` of a parameter, with its unit for display."""

    low: float
    high: float
    unit: str = ""

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.uniform(self.low, self.high, size=size)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def normalise(self, value: Any) -> Any:
        """``value`` mapped linearly so that ``low`` is -1 and ``high`` is +1 (float32 array)."""
        mid, half = (self.low + self.high) / 2, (self.high - self.low) / 2
        return ((np.asarray(value, dtype=np.float64) - mid) / (half if half > 0 else 1.0)).astype(np.float32)

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"[{self.low:g}, {self.high:g}]{unit}"


def round_params(values: Any, digits: int = 4) -> Any:
    """Round sampled floats so a task prints short and survives JSON unchanged."""
    if isinstance(values, np.ndarray | list | tuple):
        return tuple(round(float(v), digits) for v in values)
    return round(float(values), digits)


def _num(x: float) -> str:
    """``x`` short (``%g``) where that is exact, else in full: a bound must not print rounded."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def _range_text(r: Range, unit: str) -> str:
    return f"[{r.low:g}, {r.high:g}]" + (f" {unit}" if unit else "")  # for reading: pi shows as 3.14159


@dataclasses.dataclass(frozen=True, kw_only=True)
class Param(ABC):
    """One parameter of a family's tasks, declared once: its meaning, unit, what a task may hold
    and how the family draws it. Subclasses say what kind of value it is.

    ``name`` is the task field it describes; with ``field=False`` it is a quantity the family's
    sampler draws that no field holds on its own (a goal's distance, the number of obstacles).
    """

    name: str
    #: what it is, a few words (``metarobot families`` shows it)
    doc: str
    unit: str = ""
    #: the field is a tuple of such values (one per joint, per obstacle, per wheel)
    vector: bool = False
    #: how the family's sampler draws it, where "uniform over the training range" does not say it
    sampling: str = ""
    #: a task field (checked by ``Task.validate``); False: drawn by the sampler, held by no field
    field: bool = True
    #: shown by ``metarobot families``; False for a field the family's generated tasks always
    #: leave empty (navigate-v1's obstacles on an open floor), which a task file may still set
    #: and ``Task.validate`` still checks
    listed: bool = True

    def check(self, family: str, value: Any, from_file: bool = False) -> None:
        """``MetarobotError`` naming the family, field, value and what is allowed unless ``value``
        is allowed (``from_file``: the task's robot comes from a user's file)."""
        if not self.vector:
            self.check_value(f"{family} task {self.name}", value, from_file)
            return
        if not isinstance(value, tuple):
            raise MetarobotError(f"{family} task {self.name} must be a list of values, got {value!r}")
        for i, v in enumerate(value):
            self.check_value(f"{family} task {self.name}[{i}]", v, from_file)

    @abstractmethod
    def check_value(self, label: str, value: Any, from_file: bool) -> None:
        """``MetarobotError`` starting with ``label`` unless one value is allowed."""

    @property
    def drawn(self) -> bool:
        """Whether the family draws it from the spec alone (``sample``)."""
        return False

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """One training value (``size`` of them as a tuple), as tasks hold it."""
        raise MetarobotError(f"parameter {self.name!r} has no training distribution of its own")

    def sample_ood(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """One value outside the training range (``size`` of them as a tuple)."""
        raise MetarobotError(f"parameter {self.name!r} has no ood range")

    def normalise(self, value: Any) -> np.ndarray:
        """``value`` as the privileged observation shows it (float32)."""
        return np.asarray(value, dtype=np.float32)

    def ranges_text(self) -> str:
        """Training (and ood) values with the unit, for ``metarobot families``."""
        return self.sampling

    def describe(self, fixed: Any = dataclasses.MISSING) -> str:
        """The line ``metarobot families`` shows: the ranges, then what it is; a parameter the
        family does not vary shows ``fixed``, the value its generated tasks hold."""
        text = self.ranges_text()
        if not text and fixed is not dataclasses.MISSING:
            text = f"{_num(fixed) if isinstance(fixed, float) else fixed}" + (f" {self.unit}" if self.unit else "")
            text += " (not varied)"
        return f"{text} -- {self.doc}" if text else self.doc


@dataclasses.dataclass(frozen=True, kw_only=True)
class FloatParam(Param):
    """A real-valued parameter: hard ``bounds`` (what validation accepts; ``None``: any finite
    value), ``file_bounds`` for a robot from a user's file (default: ``bounds``), the ``train``
    range and the ``ood`` ranges (outside it; a draw picks one of them first when there are
    several). The oracle sees it mapped linearly from ``hidden_range`` (default: ``train``) to
    [-1, 1], on a log scale with ``log_scale``."""

    bounds: tuple[float, float] | None = None
    file_bounds: tuple[float, float] | None = None
    train: Range | None = None
    ood: tuple[Range, ...] = ()
    hidden_range: Range | None = None
    log_scale: bool = False

    def bounds_for(self, from_file: bool) -> tuple[float, float] | None:
        """What validation accepts: ``file_bounds`` for a robot from a user's file, else ``bounds``."""
        return self.file_bounds if from_file and self.file_bounds is not None else self.bounds

    def check_value(self, label: str, value: Any, from_file: bool) -> None:
        bounds = self.bounds_for(from_file)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise MetarobotError(f"{label}={value!r} must be a number")
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise MetarobotError(f"{label}={value!r} is out of range [{_num(bounds[0])}, {_num(bounds[1])}]")
        if bounds is None and not np.isfinite(value):
            raise MetarobotError(f"{label}={value!r} must be finite")

    def clamp(self, value: float, from_file: bool = False) -> float:
        """``value`` moved into the bounds (``file_bounds`` for a file's robot), where a value
        read from a file is kept valid rather than refused."""
        bounds = self.bounds_for(from_file)
        return value if bounds is None else min(max(value, bounds[0]), bounds[1])

    @property
    def drawn(self) -> bool:
        return self.train is not None

    @property
    def train_range(self) -> Range:
        """``train``, for a sampler that draws from the range itself (an error where the family
        declares none)."""
        if self.train is None:
            raise MetarobotError(f"parameter {self.name!r} has no training range")
        return self.train

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        if self.train is None:
            return super().sample(rng, size)
        return round_params(self.train.sample(rng, size))

    def pick_ood(self, rng: np.random.Generator) -> Range:
        """One of the ``ood`` ranges: with two, the upper with probability 1/2 (one ``rng.random()``
        draw); with one, that one (no draw)."""
        if not self.ood:
            raise MetarobotError(f"parameter {self.name!r} has no ood range")
        if len(self.ood) == 1:
            return self.ood[0]
        choices = self.ood[::-1]  # the upper range first: u < 1/2 picks it, as every sampler always did
        return choices[int(rng.random() * len(choices))]

    def sample_ood(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return round_params(self.pick_ood(rng).sample(rng, size))

    def normalise(self, value: Any) -> np.ndarray:
        r = self.hidden_range or self.train
        if r is None:
            raise MetarobotError(f"parameter {self.name!r} has no range to normalise over")
        if self.log_scale:
            log = math.log(value) if isinstance(value, int | float) else np.log(np.asarray(value, dtype=np.float64))
            return Range(math.log(r.low), math.log(r.high)).normalise(log)  # type: ignore[no-any-return]
        return r.normalise(value)  # type: ignore[no-any-return]

    def ranges_text(self) -> str:
        parts = []
        if self.train is not None:
            parts.append(_range_text(self.train, self.unit))
        if self.ood:
            parts.append(f"(ood: {' or '.join(_range_text(r, self.unit) for r in self.ood)})")
        if self.sampling:
            parts.append(self.sampling)
        return " ".join(parts)


@dataclasses.dataclass(frozen=True, kw_only=True)
class IntParam(Param):
    """An integer parameter: hard ``bounds``, the values training draws from (``train``, one
    uniformly) and those ``ood`` draws from."""

    bounds: tuple[int, int] | None = None
    train: tuple[int, ...] = ()
    ood: tuple[int, ...] = ()

    def check_value(self, label: str, value: Any, from_file: bool) -> None:
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise MetarobotError(f"{label}={value!r} must be an integer")
        if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
            raise MetarobotError(f"{label}={value!r} is out of range [{self.bounds[0]}, {self.bounds[1]}]")

    @property
    def drawn(self) -> bool:
        return bool(self.train)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        if not self.train:
            return super().sample(rng, size)
        return int(rng.choice(self.train)) if size is None else tuple(int(v) for v in rng.choice(self.train, size))

    def sample_ood(self, rng: np.random.Generator, size: int | None = None) -> Any:
        if not self.ood:
            return super().sample_ood(rng, size)
        return int(rng.choice(self.ood)) if size is None else tuple(int(v) for v in rng.choice(self.ood, size))

    def ranges_text(self) -> str:
        parts = []
        if self.train:
            parts.append(", ".join(map(str, self.train)) + (f" {self.unit}" if self.unit else ""))
        if self.ood:
            parts.append(f"(ood: {', '.join(map(str, self.ood))})")
        if self.sampling:
            parts.append(self.sampling)
        return " ".join(parts)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SignParam(Param):
    """A direction, +1 or -1 (a motor wired reversed, an encoder counting the other way); the
    family draws -1 with ``reversed_probability`` (``sampling`` says for which joints or motors).
    The oracle sees it as it is."""

    reversed_probability: float = 0.5

    def check_value(self, label: str, value: Any, from_file: bool) -> None:
        if isinstance(value, bool) or value not in (1, -1):
            raise MetarobotError(f"{label}={value!r} must be +1 or -1")

    @property
    def drawn(self) -> bool:
        return True

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        if size is None:
            return -1 if rng.random() < self.reversed_probability else 1
        return tuple(-1 if rng.random() < self.reversed_probability else 1 for _ in range(size))

    def ranges_text(self) -> str:
        return " ".join(filter(None, [f"-1 with probability {self.reversed_probability:g}", self.sampling]))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChoiceParam(Param):
    """One of a few named values (``choices``), drawn uniformly unless ``sampling`` says
    otherwise. A robot from a user's file may state its own (an axis vector, ``"urdf"``)."""

    choices: tuple[str, ...]

    def check_value(self, label: str, value: Any, from_file: bool) -> None:
        if value not in self.choices and not from_file:
            raise MetarobotError(f"{label}={value!r} is not one of {', '.join(self.choices)}")

    @property
    def drawn(self) -> bool:
        return True

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        if size is None:
            return self.choices[int(rng.integers(len(self.choices)))]
        return tuple(self.choices[int(i)] for i in rng.integers(len(self.choices), size=size))

    def ranges_text(self) -> str:
        return ", ".join(self.choices) + (f": {self.sampling}" if self.sampling else "")


def find_param(params: tuple[Param, ...], name: str) -> Param:
    """The parameter called ``name`` in ``params`` (``KeyError`` if none is)."""
    for p in params:
        if p.name == name:
            return p
    raise KeyError(f"no parameter {name!r} is declared")


def replace_param(params: tuple[Param, ...], name: str, **changes: Any) -> Param:
    """The parameter ``name`` of ``params`` with ``changes`` (``dataclasses.replace``)."""
    return dataclasses.replace(find_param(params, name), **changes)


def revise(params: tuple[Param, ...], *changed: Param) -> tuple[Param, ...]:
    """``params`` with each of ``changed`` in place of the one of the same name, or appended
    where there is none (a ``-v1`` family's spec from its ``-v0``'s)."""
    by_name = {p.name: p for p in changed}
    out = tuple(by_name.pop(p.name, p) for p in params)
    return out + tuple(by_name.values())


class TaskFamily(ABC):
    """A distribution over tasks. Subclasses set the class attributes and the samplers."""

    name: ClassVar[str]
    env_id: ClassVar[str]
    task_type: ClassVar[type[Task]]
    #: a one-line description shown by ``metarobot families``
    summary: ClassVar[str] = ""
    #: control steps of one episode (the env truncates there)
    episode_steps: ClassVar[int]
    #: control steps per second (videos play at this rate by default)
    control_hz: ClassVar[float] = 30.0
    #: meta-training settings this family changes from ``MetaConfig``'s defaults
    meta_defaults: ClassVar[dict[str, Any]] = {}
    #: settings this family gives one algorithm (by name), over ``meta_defaults``: what its
    #: shipped run of that algorithm used (an iteration budget that suits one method may not
    #: suit another: ``identify`` runs no iterations)
    algo_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    #: ``(start, stop)`` of the 0/1 action mask inside the observation, if actions are padded
    action_mask_slice: ClassVar[tuple[int, int] | None] = None
    #: what success means, one line (``metarobot families``)
    success: ClassVar[str] = ""
    #: one line shown (on stderr) when a user's own robot or object file is run on this family:
    #: where another family serves such files better, as measured
    file_hint: ClassVar[str] = ""
    #: the method whose shipped policy serves a robot read from the user's own file, where it
    #: is not the family's default (``meta_defaults["algo"]``): real robots lie outside the
    #: generated ones' ranges, and some methods serve them better, as measured
    file_algo: ClassVar[str | None] = None
    #: the family a robot from the user's own file runs as on ``adapt`` and ``render`` when no
    #: ``--checkpoint`` names a policy of this one: a later variant built for such files, where
    #: it serves them better, as measured (``-v0`` results on generated robots stay as they were)
    file_family: ClassVar[str | None] = None
    #: the parameters a privileged ``oracle`` sees (``hidden_params``), in order
    hidden: ClassVar[tuple[str, ...]] = ()
    #: per-joint parameters in ``hidden`` are padded with zeros to this many values
    max_joints: ClassVar[int] = 0
    #: the parameters the default ``_sample_ood`` moves out of range, one per task (the draw
    #: ``rng.integers(len(ood_shifts))`` picks which); default: those with ``ood`` ranges, in order
    ood_shifts: ClassVar[tuple[str, ...]] = ()

    @property
    def params(self) -> tuple[Param, ...]:
        """The family's parameter spec (declared once, on its task type)."""
        return self.task_type.params

    @overload
    def param(self, name: str) -> Param: ...
    @overload
    def param(self, name: str, kind: type[P]) -> P: ...
    def param(self, name: str, kind: type[Param] | None = None) -> Param:
        """The declared parameter ``name`` of the family's spec (``TypeError`` unless it is a
        ``kind``, where one is given: a typed look-up)."""
        return self.task_type.param(name) if kind is None else self.task_type.param(name, kind)

    def _sample_in_range(self, rng: np.random.Generator) -> Task:
        """One task with every parameter inside the training ranges. By default every field the
        spec can draw (``Param.drawn``) is drawn, in declaration order; families whose tasks have
        structure (joint counts, maps, derived values) override this."""
        return self.task_type(**{p.name: p.sample(rng) for p in self.params if p.field and p.drawn})

    def _sample_ood(self, rng: np.random.Generator) -> Task:
        """One task with at least one parameter outside the training ranges. By default a
        training task with one of ``ood_shifts`` (the draw picks which) drawn from its ood ranges."""
        shifts = self.ood_shifts or tuple(p.name for p in self.params if getattr(p, "ood", ()))
        base = self._sample_in_range(rng)
        name = shifts[int(rng.integers(len(shifts)))]
        return dataclasses.replace(base, **{name: self.param(name).sample_ood(rng)})

    @abstractmethod
    def make_env(self, task: Task, render_mode: str | None = None) -> MetaRobotEnv:
        """A Gymnasium env for ``task``; ``env.set_task`` switches it to another task."""

    def ranges(self) -> dict[str, str]:
        """Each parameter's training (and ood) values with its unit and meaning, and what
        success means, for ``metarobot families`` (read off the spec). Fields only a user's file
        sets are left out, and so are those its tasks never fill (``Param.listed``); one the
        family does not vary shows the value its tasks hold."""
        fields = {f.name: f for f in dataclasses.fields(self.task_type)}
        out: dict[str, str] = {}
        for p in self.params:
            f = fields.get(p.name)
            if not p.listed or (f is not None and f.metadata.get("omit_default")):
                continue
            out[p.name] = p.describe(f.default if f is not None else dataclasses.MISSING)
        if self.success:
            out["success"] = self.success
        return out

    @property
    def hidden_dim(self) -> int:
        """Length of ``hidden_params(task)`` (0: the family declares no hidden parameters)."""
        return sum(self.max_joints if self.param(name).vector else 1 for name in self.hidden)

    def hidden_params(self, task: Task) -> np.ndarray:
        """The task parameters the observation does not reveal, as ``hidden_dim`` float32 values
        normalised to about [-1, 1] (the training range maps to [-1, 1]; ``ood`` values may lie
        outside), padded with zeros where the robot has fewer joints than the family's maximum.
        What a privileged ``oracle`` policy sees on top of the normal observation: the
        parameters named in ``hidden``, in order, each as its spec normalises it."""
        if not self.hidden:
            raise MetarobotError(f"family {self.name!r} declares no hidden parameters")
        parts = []
        for name in self.hidden:
            param = self.param(name)
            value = self._hidden_value(param, task)
            if param.vector:
                block = np.zeros(self.max_joints, dtype=np.float32)
                block[: len(value)] = value
                parts.append(block)
            else:
                parts.append(np.asarray(value, dtype=np.float32).reshape(1))
        return np.concatenate(parts)

    def _hidden_value(self, param: Param, task: Task) -> Any:
        """``param``'s value in ``task`` as the oracle sees it (a family overrides this for a value
        its spec cannot normalise, like a joint axis)."""
        return param.normalise(getattr(task, param.name))

    def identification(self) -> Identification | None:
        """The family's model for classic online identification of its hidden parameters and
        the controller that uses the estimate (``metarobot.online.Identification``; the
        ``identify`` algorithm), or ``None`` (the default: a family has none)."""
        return None

    def action_identification(self) -> ActionIdentification | None:
        """The family's model of an action it identifies and sets itself, from what the action
        did (``metarobot.online.ActionIdentification``; grasp-v1: the squeeze), or ``None``
        (the default). ``--identify-actions`` deploys it."""
        return None

    def make_privileged_env(self, task: Task, render_mode: str | None = None) -> PrivilegedEnv:
        """``make_env(task)`` whose observation is the normal one followed by
        ``hidden_params(task)``: the env of the privileged ``oracle`` (its ``set_task`` updates
        the appended parameters)."""
        from metarobot.privileged import PrivilegedEnv

        if self.hidden_dim <= 0:
            raise MetarobotError(f"family {self.name!r} declares no hidden parameters")
        return PrivilegedEnv(self, self.make_env(task, render_mode=render_mode))

    def sample_tasks(self, n: int, split: str, rng: np.random.Generator) -> list[Task]:
        """``n`` distinct tasks of ``split`` drawn with ``rng``."""
        if not isinstance(n, int | np.integer) or n < 0:
            raise MetarobotError(f"number of tasks must be a non-negative integer, got {n!r}")
        if split not in SPLITS:
            raise MetarobotError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        tasks: list[Task] = []
        seen: set[Task] = set()
        attempts = 0
        while len(tasks) < n:
            attempts += 1
            if attempts > 1000 * (n + 1):
                raise MetarobotError(f"could not sample {n} distinct {split} tasks of {self.name}")
            if split == "ood":
                task = self._sample_ood(rng)
            else:
                task = self._sample_in_range(rng)
                if in_test_bucket(task) != (split == "test"):
                    continue
            if task in seen:
                continue
            seen.add(task)
            tasks.append(task)
        return tasks

    def heldout_tasks(self, split: str, n: int = HELDOUT_SIZE) -> list[Task]:
        """The canonical, reproducible task list of ``split`` (what ``--index`` refers to)."""
        if split not in SPLITS:
            raise MetarobotError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        return self.sample_tasks(n, split, np.random.default_rng(HELDOUT_SEEDS[split]))

    def task(self, split: str, index: int) -> Task:
        if not 0 <= index < HELDOUT_SIZE:
            raise MetarobotError(f"task index {index} is out of range for split {split!r} (0..{HELDOUT_SIZE - 1})")
        return self.heldout_tasks(split, index + 1)[index]

    def task_from_dict(self, data: Mapping[str, Any]) -> Task:
        try:
            task = self.task_type.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise MetarobotError(f"malformed {self.name} task: {exc}") from None
        self._check_task_files(task)
        check_task_layout(task)
        return task

    def _check_task_files(self, task: Task) -> None:
        """A task that names a URDF passes the same checks as ``--urdf``/``--object-urdf``, and its
        robot fields must be what metarobot reads from that file."""
        urdf = getattr(task, "urdf_path", None)
        if urdf is not None:
            check_urdf_file(Path(urdf))
            names = ("ee_link", "left_wheels", "right_wheels")
            options = {k: getattr(task, k) for k in names if getattr(task, k, None)}
            derived = self.task_from_urdf(Path(urdf), **options)
            key = getattr(task, "body_key", None)
            if key is not None and key() != derived.body_key():  # type: ignore[attr-defined]
                raise MetarobotError(
                    f"{self.name} task's robot fields do not match its URDF {urdf}; "
                    f"what metarobot reads from it: {derived.to_json()}"
                )
        obj = getattr(task, "object_urdf", None)
        if obj is not None:
            check_urdf_file(Path(obj), "object URDF")
            self.task_from_object_urdf(Path(obj))

    def task_from_json_file(self, path: Path) -> Task:
        return self.task_from_dict(load_json_object(Path(path), "task file"))

    def task_from_urdf(self, path: Path, **options: Any) -> Task:
        raise MetarobotError(f"family {self.name!r} does not take a robot from a URDF file")

    def task_from_object_urdf(self, path: Path) -> Task:
        raise MetarobotError(f"family {self.name!r} does not take an object from a URDF file")

    def task_from_object_mesh(self, path: Path, **options: Any) -> Task:
        raise MetarobotError(f"family {self.name!r} does not take an object from a mesh file")

    def describe(self, task: Task) -> dict[str, Any]:
        """What was read from the user's file behind ``task`` (``metarobot inspect``)."""
        raise MetarobotError(f"family {self.name!r} takes no robot or object from a file")

    def observation_space_example(self) -> Any:
        env = self.make_env(self.heldout_tasks("train", 1)[0])
        try:
            return env.observation_space, env.action_space
        finally:
            env.close()
