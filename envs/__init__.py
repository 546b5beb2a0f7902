"""The task families' environments (installed as ``metarobot.envs``)."""

import os as _os


def _import_pybullet_quietly() -> None:
    """PyBullet prints its build time on import, straight to the process's stdout/stderr;
    keep it out of our CLI's output (and its one-line errors)."""
    saved = [_os.dup(1), _os.dup(2)]
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    try:
        _os.dup2(devnull, 1)
        _os.dup2(devnull, 2)
        import pybullet  # noqa: F401

        try:  # the message sits in C's stdio buffer: flush it while it still goes nowhere
            import ctypes

            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
    finally:
        _os.dup2(saved[0], 1)
        _os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            _os.close(fd)


_import_pybullet_quietly()
