"""metarobot: meta-train robot policies that adapt in a few gradient steps to unseen robots."""

from __future__ import annotations

# first, before the slow imports below (hence E402 for them): a Ctrl-C while the ``metarobot``
# command is still starting ends it as ``metarobot.cli.main`` would, not with a traceback
# ruff: noqa: E402
from metarobot.startup import guard_command_start

guard_command_start()

from importlib import metadata

import gymnasium as gym

from metarobot.algorithms import algorithm_names, get_algorithm, register_algorithm
from metarobot.errors import MetarobotError, PhysicsError
from metarobot.family import SPLITS, Range, Task, TaskFamily
from metarobot.registry import family_names, get_family, register_family, register_gym_envs

try:
    __version__ = metadata.version("metarobot")
except metadata.PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+unknown"


def sample_tasks(family: str, n: int, split: str, rng: object) -> list[Task]:
    """``n`` tasks of ``split`` from ``family`` (see ``TaskFamily.sample_tasks``)."""
    return get_family(family).sample_tasks(n, split, rng)  # type: ignore[arg-type]


def make_env(task: Task, render_mode: str | None = None) -> gym.Env:  # type: ignore[type-arg]
    """A Gymnasium env for ``task`` (its family is read from the task)."""
    return get_family(task.family).make_env(task, render_mode=render_mode)


_ALGORITHM_CLASSES = {
    "MAML": "maml",
    "FOMAML": "fomaml",
    "Reptile": "reptile",
    "Multitask": "multitask",
    "MetaSGD": "metasgd",
    "CAVIA": "cavia",
}


def __getattr__(name: str) -> object:
    # the meta-learners pull in torch and SB3: import them only when asked for
    if name in _ALGORITHM_CLASSES:
        from metarobot.algorithms import get_algorithm

        return get_algorithm(_ALGORITHM_CLASSES[name])
    if name == "MetaLearner":
        from metarobot.meta import MetaLearner

        return MetaLearner
    if name == "MetaConfig":
        from metarobot.config import MetaConfig

        return MetaConfig
    raise AttributeError(f"module 'metarobot' has no attribute {name!r}")


register_gym_envs()

__all__ = [
    "SPLITS",
    "MetarobotError",
    "PhysicsError",
    "Range",
    "Task",
    "TaskFamily",
    "__version__",
    "algorithm_names",
    "get_algorithm",
    "register_algorithm",
    "family_names",
    "get_family",
    "make_env",
    "register_family",
    "sample_tasks",
]
