"""Files a run writes: a lock on the run directory and atomic writes.

Every file is written to a temporary name in the same directory, flushed to disk and then
renamed over the target, so a crash (or a full disk) at any instant leaves either the old file
or the new one, never a truncated one. A failed write is a ``MetarobotError`` naming the file
and the reason (``No space left on device``), and the temporary file is removed.

The lock is an advisory ``flock`` on ``OUT/.lock``: the kernel drops it when its process ends,
however it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from metarobot.errors import MetarobotError

LOCK_NAME = ".lock"


class WriteError(MetarobotError):
    """A run file could not be written (disk full, permissions, ...)."""


class RunLock:
    """An exclusive lock on a run directory, held until ``release`` (or the process ends)."""

    def __init__(self, directory: Path) -> None:
        import fcntl

        self.path = Path(directory) / LOCK_NAME
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise MetarobotError(f"cannot write to --out {directory}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            try:
                holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise MetarobotError(f"--out {directory} is in use by another metarobot run{who}") from None
        try:  # who holds it, for the message above (advisory only)
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(path: Path | str, save: Callable[[Path], Any]) -> Path:
    """Run ``save(tmp)`` on a temporary file next to ``path``, then rename it to ``path``. The
    temporary name keeps ``path``'s suffix (SB3 appends ``.zip`` to names without one)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as RuntimeError
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        else:  # torch's stream writer does not say why; the usual reason is a full disk
            reason = "the write failed (disk full or over a file-size limit?)"
        raise WriteError(f"cannot write {path}: {reason}") from None
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    return atomic_save(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path | str, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2))


def write_csv(path: Path | str, fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """The whole table, rewritten atomically (a run's metrics are small: one row per iteration)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return atomic_write_text(path, buf.getvalue())


def refuse_existing(paths: Iterable[Path], force: bool) -> None:
    """Without ``--force``, refuse to overwrite any of ``paths`` that exists."""
    if force:
        return
    for p in paths:
        if p.exists():
            raise MetarobotError(f"{p} already exists; choose another --out or add --force to overwrite it")
