"""The family registry: built-in families plus third-party ones from the
``metarobot.families`` entry-point group (each entry point names a ``TaskFamily`` subclass).

``_BUILTIN`` is the one list of built-in families; their Gymnasium ids are registered from the
family classes themselves (``env_id``, ``episode_steps``) by ``register_gym_envs``."""

from __future__ import annotations

from importlib import metadata

from metarobot.errors import MetarobotError
from metarobot.family import TaskFamily

_BUILTIN: dict[str, str] = {
    "reach": "metarobot.envs.reach:ReachFamily",
    "cartpole": "metarobot.envs.cartpole:CartPoleFamily",
    "navigate": "metarobot.envs.navigate:NavigateFamily",
    "grasp": "metarobot.envs.grasp:GraspFamily",
    "reach-v1": "metarobot.envs.reach_v1:ReachV1Family",
    "reach-v2": "metarobot.envs.reach_v2:ReachV2Family",
    "navigate-v1": "metarobot.envs.navigate_v1:NavigateV1Family",
    "grasp-v1": "metarobot.envs.grasp_v1:GraspV1Family",
    "grasp-v2": "metarobot.envs.grasp_v2:GraspV2Family",
}
_extra: dict[str, type[TaskFamily]] = {}
_instances: dict[str, TaskFamily] = {}

ENTRY_POINT_GROUP = "metarobot.families"


def register_family(cls: type[TaskFamily]) -> type[TaskFamily]:
    """Register a family class under ``cls.name`` (usable as a decorator); its Gymnasium id too."""
    if not (isinstance(cls, type) and issubclass(cls, TaskFamily)):
        raise TypeError(f"{cls!r} is not a TaskFamily subclass")
    _extra[cls.name] = cls
    _instances.pop(cls.name, None)
    _register_gym_id(cls)
    return cls


def gym_env(family: str, task: object = None, render_mode: str | None = None) -> object:
    """Gymnasium entry point of every family: ``gym.make("metarobot/Reach-v0")`` builds the
    family's env on ``task`` (default: the first canonical training task)."""
    fam = get_family(family)
    if task is None:
        task = fam.heldout_tasks("train", 1)[0]
    return fam.make_env(task, render_mode=render_mode)  # type: ignore[arg-type]


def _register_gym_id(cls: type[TaskFamily]) -> None:
    import gymnasium as gym

    env_id = getattr(cls, "env_id", "")
    if env_id and env_id not in gym.registry:
        gym.register(
            id=env_id,
            entry_point="metarobot.registry:gym_env",
            kwargs={"family": cls.name},
            max_episode_steps=cls.episode_steps,
        )


def register_gym_envs() -> None:
    """Register the Gymnasium id of every built-in family, read off its class."""
    for ref in _BUILTIN.values():
        _register_gym_id(_load(ref))


def _load(ref: str) -> type[TaskFamily]:
    module, _, attr = ref.partition(":")
    mod = __import__(module, fromlist=[attr])
    return getattr(mod, attr)  # type: ignore[no-any-return]


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def family_names() -> list[str]:
    names = set(_BUILTIN) | set(_extra) | set(_entry_points())
    return sorted(names)


def get_family(name: str) -> TaskFamily:
    """The family called ``name``; raises ``MetarobotError`` naming the known ones otherwise."""
    if name in _instances:
        return _instances[name]
    if name in _extra:
        cls = _extra[name]
    elif name in _BUILTIN:
        cls = _load(_BUILTIN[name])
    else:
        eps = _entry_points()
        if name not in eps:
            known = ", ".join(family_names())
            raise MetarobotError(f"unknown family {name!r}; known families: {known}")
        cls = eps[name].load()
        if not (isinstance(cls, type) and issubclass(cls, TaskFamily)):
            raise MetarobotError(f"entry point {name!r} does not name a TaskFamily subclass")
    inst = cls()
    _instances[name] = inst
    return inst
