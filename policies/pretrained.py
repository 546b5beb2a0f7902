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
