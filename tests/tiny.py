"""The tiny meta-training settings the tests share, declared once.

``TINY`` is the smallest run that still exercises every part of an iteration on real cartpole
physics: two tasks per meta-batch, two episodes per update, two outer epochs, no worker
processes, no evaluation tasks and one hidden layer of 8 units. A test file derives its own
variant with :func:`tiny` (so that what differs from the shared settings is visible where it is
used) and, for the CLI, turns a variant into options with :func:`cli_args`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TINY: Mapping[str, Any] = dict(
    family="cartpole",
    meta_batch=2,
    episodes_per_update=2,
    outer_epochs=2,
    workers=0,
    eval_tasks=0,
    hidden_sizes=(8,),
)


def tiny(*, without: Iterable[str] = (), **changes: Any) -> dict[str, Any]:
    """``TINY`` with ``changes`` applied and the settings named in ``without`` left out (so
    that the library's own default applies to them); a new dict each call."""
    without = set(without)
    unknown = without - set(TINY)
    if unknown:
        raise KeyError(f"not in TINY: {sorted(unknown)}")
    return {**{k: v for k, v in TINY.items() if k not in without}, **changes}


def cli_args(settings: Mapping[str, Any]) -> list[str]:
    """The ``meta-train`` options that give ``settings``, in their order: ``hidden_sizes=(16,
    16)`` becomes ``--hidden-sizes 16,16``."""
    args: list[str] = []
    for name, value in settings.items():
        text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        args += [f"--{name.replace('_', '-')}", text]
    return args


def tiny_evaluate_args(checkpoint: Any, out: Any) -> list[str]:
    """The smallest ``evaluate`` of a tiny run's checkpoint: 2 test and ood tasks, 1 seed, one
    update of 2 episodes, against ``scratch``, in this process, into ``out``."""
    return [
        "evaluate", "--checkpoint", str(checkpoint), "--tasks", "2", "--seeds", "1", "--steps", "1",
        "--episodes", "2", "--baselines", "scratch", "--workers", "0", "--no-progress", "--out", str(out),
    ]  # fmt: skip
