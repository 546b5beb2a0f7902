"""The pretrained meta-policies shipped in ``metarobot.policies/pretrained`` (package data)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from metarobot.errors import MetarobotError


def pretrained_path(family: str, algo: str = "maml") -> Path:
    """Path of the shipped checkpoint of ``family`` meta-trained with ``algo``."""
    name = f"{family}.pt" if algo == "maml" else f"{family}-{algo}.pt"
    ref = resources.files("metarobot.policies").joinpath("pretrained", name)
    if not ref.is_file():
        what = "meta-policy" if algo == "maml" else f"{algo} policy"
        raise MetarobotError(f"no pretrained {what} is shipped for family {family!r}; pass --checkpoint")
    return Path(str(ref))


def has_pretrained(family: str, algo: str = "maml") -> bool:
    try:
        pretrained_path(family, algo)
    except MetarobotError:
        return False
    return True


def shipped_file(family: str, kind: str, suffix: str) -> Path | None:
    """The shipped ``FAMILY-KIND.SUFFIX`` (e.g. a baseline that is not a metarobot checkpoint,
    such as ``reach-v1-recurrent.zip``), or None."""
    ref = resources.files("metarobot.policies").joinpath("pretrained", f"{family}-{kind}{suffix}")
    return Path(str(ref)) if ref.is_file() else None


def checkpoint_ref(family: str, value: str) -> str:
    """``value`` as a checkpoint path: a path as it is, or an algorithm's name (``multitask``)
    where no file of that name exists, for the family's shipped policy of that algorithm
    (``--fallback multitask``, and a family's default fallback)."""
    import re

    if Path(value).exists() or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        return value
    if not has_pretrained(family, value):
        raise MetarobotError(f"{value!r} is neither a file nor an algorithm with a shipped {family!r} policy")
    return str(pretrained_path(family, value))
