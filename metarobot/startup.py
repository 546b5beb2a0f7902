"""Ctrl-C while the ``metarobot`` command is still starting.

``metarobot.cli.main`` turns a KeyboardInterrupt into ``Aborted.`` and exit code 130, but the
console script imports ``metarobot.cli`` before it calls ``main``: the package, gymnasium, numpy,
PyBullet and every built-in family (about 0.3 s of CPU here, seconds on a loaded machine) load
outside ``main``'s ``try``, and a Ctrl-C there printed a traceback. So the package, as the first
thing it does, asks :func:`guard_command_start`: in the command (and only there) a Ctrl-C now
ends the process the same way until ``main`` takes over with :func:`end_command_start`. Nothing
has been read or written before ``main`` runs, so there is nothing to finish.

A program that imports metarobot keeps its own SIGINT handling: this module changes it only in
the ``metarobot`` command. Standard library only, so that nothing slow runs before the guard.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

#: what ``main`` prints for a Ctrl-C, and its exit code (128 + SIGINT, as a shell reports it)
ABORTED = "Aborted."
EXIT_INTERRUPTED = 130

#: the line pip's console script for ``[project.scripts]`` runs first (``metarobot.cli:main``)
_CONSOLE_SCRIPT_IMPORT = b"from metarobot.cli import main"
#: a copy of file descriptor 2 while the command starts: importing PyBullet points 2 at
#: /dev/null for a moment (metarobot.envs), and the line must reach the user's terminal anyway
_stderr_fd: int | None = None


def is_command() -> bool:
    """Whether this process is the ``metarobot`` command: the console script pip writes for
    ``[project.scripts]``, ``python -m metarobot.cli``, or a checkout's ``cli.py`` launcher --
    not a program (a test, a notebook, a sampling worker) that imports metarobot."""
    script = sys.argv[0] if sys.argv else ""
    if script == "-m":  # ``python -m X`` still importing X's parent packages
        args = sys.orig_argv
        return any(a == "-m" and b == "metarobot.cli" for a, b in zip(args, args[1:]))
    if not script or script == "-c":
        return False
    mp = sys.modules.get("multiprocessing")
    # a worker process: spawn imports the command's script again, with its argv, while the
    # worker is "inheriting" (before parent_process() is set), as metarobot.sampling checks too
    if mp is not None and (getattr(mp.current_process(), "_inheriting", False) or mp.parent_process() is not None):
        return False
    here = os.path.dirname(os.path.realpath(__file__))
    path = os.path.realpath(script)
    # metarobot/cli.py run as ``__main__``; the launcher beside the package in a checkout
    if path in (os.path.join(here, "cli.py"), os.path.join(os.path.dirname(here), "cli.py")):
        return True
    if os.path.basename(path) != "metarobot":
        return False
    try:  # a file of that name: the console script only if it is the one pip wrote for us
        with open(path, "rb") as f:
            return _CONSOLE_SCRIPT_IMPORT in f.read(4096)
    except OSError:
        return False


def _abort(signum: int, frame: FrameType | None) -> None:
    """SIGINT handler while the command starts: the line ``main`` prints, exit code 130."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
    try:
        os.write(2 if _stderr_fd is None else _stderr_fd, (ABORTED + "\n").encode())
    except OSError:  # no stderr to tell: the exit code still says it
        pass
    # nothing to save or close yet; the interpreter's teardown of half-imported modules only costs time
    os._exit(EXIT_INTERRUPTED)


def guard_command_start() -> None:
    """In the ``metarobot`` command, make a Ctrl-C end it at once with ``Aborted.`` and exit
    code 130 until ``main`` calls :func:`end_command_start`; elsewhere, nothing."""
    global _stderr_fd
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler or not is_command():
        return  # a program's own handling, or not the command
    try:
        signal.signal(signal.SIGINT, _abort)
    except ValueError:  # not the main thread: signals are not this thread's to handle
        return
    try:
        _stderr_fd = os.dup(2)
    except OSError:  # no stderr: _abort tries fd 2 as it is then
        _stderr_fd = None


def end_command_start() -> None:
    """``main`` has started (its ``try`` handles KeyboardInterrupt from here): Python's own
    SIGINT handling again, if :func:`guard_command_start` changed it."""
    global _stderr_fd
    if signal.getsignal(signal.SIGINT) is _abort:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if _stderr_fd is not None:
        os.close(_stderr_fd)
        _stderr_fd = None
