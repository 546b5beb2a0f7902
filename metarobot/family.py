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
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from metarobot.errors import MetarobotError
from metarobot.validation import check_task_layout, check_task_values, check_urdf_file, load_json_object

if TYPE_CHECKING:  # pragma: no cover
    from metarobot.envs.base import MetaRobotEnv
    from metarobot.privileged import PrivilegedEnv

Split = Literal["train", "test", "ood"]
SPLITS: tuple[str, ...] = ("train", "test", "ood")

#: one task in ``_TEST_BUCKETS`` of ``_N_BUCKETS`` hash buckets is held out as ``test``.
_N_BUCKETS = 5
_TEST_BUCKETS = frozenset({0})
#: seeds of the canonical held-out sets that ``--split test --index I`` refer to.
HELDOUT_SEEDS: dict[str, int] = {"train": 1001, "test": 2002, "ood": 3003}
#: size of the canonical held-out set per split (``--index`` must be below this).
HELDOUT_SIZE = 100


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
        validate = getattr(task, "validate", None)
        if validate is not None:
            validate()
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
    #: ``(start, stop)`` of the 0/1 action mask inside the observation, if actions are padded
    action_mask_slice: ClassVar[tuple[int, int] | None] = None
    #: length of ``hidden_params(task)`` (0: the family declares no hidden parameters)
    hidden_dim: ClassVar[int] = 0

    @abstractmethod
    def _sample_in_range(self, rng: np.random.Generator) -> Task:
        """One task with every parameter inside the training ranges."""

    @abstractmethod
    def _sample_ood(self, rng: np.random.Generator) -> Task:
        """One task with at least one parameter outside the training ranges."""

    @abstractmethod
    def make_env(self, task: Task, render_mode: str | None = None) -> MetaRobotEnv:
        """A Gymnasium env for ``task``; ``env.set_task`` switches it to another task."""

    @abstractmethod
    def ranges(self) -> dict[str, str]:
        """Human-readable training (and ood) ranges, for ``metarobot families``."""

    def hidden_params(self, task: Task) -> np.ndarray:
        """The task parameters the observation does not reveal, as ``hidden_dim`` float32 values
        normalised to about [-1, 1] (the training range maps to [-1, 1]; ``ood`` values may lie
        outside), padded with zeros where the robot has fewer joints than the family's maximum.
        What a privileged ``oracle`` policy sees on top of the normal observation."""
        raise MetarobotError(f"family {self.name!r} declares no hidden parameters")

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
