"""The algorithm registry: ``--algo NAME`` -> a ``MetaLearner`` subclass.

Built-in algorithms live one per module in this package; third-party ones join through the
entry-point group ``metarobot.algorithms`` (each entry point names a ``MetaLearner`` subclass
whose ``name`` is the entry point's name) or ``register_algorithm(cls)`` at run time. Listing
names imports nothing heavy; a class is imported when it is asked for.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from metarobot.errors import MetarobotError

if TYPE_CHECKING:  # pragma: no cover
    from metarobot.meta import MetaLearner

ENTRY_POINT_GROUP = "metarobot.algorithms"

_BUILTIN: dict[str, str] = {
    "maml": "metarobot.algorithms.maml:MAML",
    "fomaml": "metarobot.algorithms.maml:FOMAML",
    "reptile": "metarobot.algorithms.reptile:Reptile",
    "multitask": "metarobot.algorithms.multitask:Multitask",
    "proto": "metarobot.algorithms.proto:Proto",
    "oracle": "metarobot.algorithms.oracle:Oracle",
    "rma": "metarobot.algorithms.rma:RMA",
    "rma-online": "metarobot.algorithms.rma_online:OnlineRMA",
    "metasgd": "metarobot.algorithms.metasgd:MetaSGD",
    "cavia": "metarobot.algorithms.cavia:CAVIA",
    "identify": "metarobot.algorithms.identify:Identify",
    "rl2": "metarobot.algorithms.rl2:RL2",
}
_extra: dict[str, type[MetaLearner]] = {}


def register_algorithm(cls: type[Any]) -> type[Any]:
    """Register a ``MetaLearner`` subclass under ``cls.name`` (usable as a decorator)."""
    from metarobot.meta import MetaLearner

    if not (isinstance(cls, type) and issubclass(cls, MetaLearner)) or not getattr(cls, "name", ""):
        raise TypeError(f"{cls!r} is not a MetaLearner subclass with a name")
    _extra[cls.name] = cls
    return cls


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def algorithm_names() -> list[str]:
    """Every algorithm ``--algo`` accepts (built-in first, then plug-ins)."""
    extra = sorted((set(_extra) | set(_entry_points())) - set(_BUILTIN))
    return list(_BUILTIN) + extra


def get_algorithm(name: str) -> type[MetaLearner]:
    """The class registered as ``name``; a one-line error naming the known ones otherwise."""
    from metarobot.meta import MetaLearner

    if name in _extra:
        return _extra[name]
    if name in _BUILTIN:
        module, _, attr = _BUILTIN[name].partition(":")
        cls = getattr(__import__(module, fromlist=[attr]), attr)
    else:
        eps = _entry_points()
        if name not in eps:
            raise MetarobotError(f"unknown algo {name!r}; choose from {', '.join(algorithm_names())}")
        cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, MetaLearner)):
        raise MetarobotError(f"algorithm {name!r} does not name a MetaLearner subclass")
    return cls  # type: ignore[no-any-return]
