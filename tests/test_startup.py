"""Ctrl-C while the ``metarobot`` command is still starting (importing metarobot, gymnasium,
PyBullet, click, torch, SB3): one line ``Aborted.``, exit code 130, no traceback -- the same as
a Ctrl-C once ``main`` runs. A program that imports metarobot keeps its KeyboardInterrupt.

Real processes and real signals, and no timing assumption: the child runs with a
``sitecustomize`` whose import hook stops it at the start of a chosen module's import and tells
the test so through a pipe; the test then sends SIGINT, which lands while that import is under
way (its stack runs through every import above it).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import metarobot.startup as startup
from metarobot.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: the console script ``[project.scripts]`` installs beside this interpreter
COMMAND = Path(sys.executable).parent / "metarobot"

_STALL = textwrap.dedent(
    """
    import os, sys, time
    _AT = os.environ.pop("STALL_AT", None)  # popped: processes this one starts run normally

    class _Stall:
        def find_spec(self, name, path=None, target=None):
            if name == _AT:
                sys.meta_path.remove(self)
                fd = int(os.environ.pop("READY_FD"))
                os.write(fd, b"importing")
                os.close(fd)
                time.sleep(600)  # until the test's SIGINT
            return None

    if _AT:
        sys.meta_path.insert(0, _Stall())
    """
)


def _as_in_a_terminal() -> None:
    """The child's SIGINT as a terminal gives it (Python's default handling). A test run started
    in the background (``nohup ... &`` from a script) has SIGINT ignored, children inherit
    that, and a Python that starts with SIGINT ignored never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def stall_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("stall")
    (d / "sitecustomize.py").write_text(_STALL)
    return d


def interrupt_while_importing(stall_dir: Path, module: str, argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``argv``, stop it as it starts importing ``module``, send SIGINT: its exit code and
    stderr."""
    read_end, write_end = os.pipe()
    env = dict(os.environ, STALL_AT=module, READY_FD=str(write_end))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stall_dir), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, pass_fds=[write_end], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_as_in_a_terminal,
    )  # fmt: skip
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 300)  # a generous "did it start" bound
        started = os.read(read_end, 64) if ready else b""
    finally:
        os.close(read_end)
    if started != b"importing":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the child never started importing {module}: {err[-2000:]}")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _assert_aborted(code: int, err: str) -> None:
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip() == "Aborted.", err


@pytest.mark.parametrize(
    "module",
    [
        "gymnasium",  # metarobot/__init__.py's first slow import
        "pybullet",  # a family's module, imported with file descriptors 1 and 2 on /dev/null
        "click",  # metarobot/cli.py's own imports
        "torch",  # main's first import, inside its try
    ],
)
def test_ctrl_c_while_the_command_imports_ends_with_one_line_and_exit_code_130(stall_dir, tmp_path, module):
    assert COMMAND.is_file(), f"no console script at {COMMAND} (pip install -e .)"
    _assert_aborted(*interrupt_while_importing(stall_dir, module, [str(COMMAND), "families", "cartpole"], tmp_path))


def test_ctrl_c_while_a_command_imports_sb3_ends_the_same_way(stall_dir, tmp_path):
    run = tmp_path / "run"
    argv = [str(COMMAND), "meta-train", "--family", "cartpole", "--iterations", "1", "--workers", "0"]
    code, err = interrupt_while_importing(stall_dir, "stable_baselines3", [*argv, "--out", str(run)], tmp_path)
    _assert_aborted(code, err)
    assert not run.exists()


@pytest.mark.parametrize("launcher", ["python -m metarobot.cli", "python cli.py"])
def test_the_other_launchers_end_the_same_way(stall_dir, tmp_path, launcher):
    argv = [sys.executable, "-m", "metarobot.cli"] if launcher.endswith(".cli") else [sys.executable, "cli.py"]
    _assert_aborted(*interrupt_while_importing(stall_dir, "gymnasium", [*argv, "families"], ROOT))


def test_a_program_that_imports_metarobot_keeps_its_keyboard_interrupt(stall_dir, tmp_path):
    code, err = interrupt_while_importing(stall_dir, "gymnasium", [sys.executable, "-c", "import metarobot"], tmp_path)
    assert code == -signal.SIGINT, err  # Python's own end for an uncaught KeyboardInterrupt
    assert "KeyboardInterrupt" in err and "Aborted." not in err, err


def test_only_the_command_is_recognised_as_the_command(tmp_path):
    probe = "import metarobot.startup as s; print(s.is_command())"
    mine = tmp_path / "metarobot"  # a user's own script of that name is not the console script
    mine.write_text(probe + "\n")
    for argv in ([sys.executable, str(mine)], [sys.executable, "-c", probe]):
        out = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, preexec_fn=_as_in_a_terminal)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "False", (argv, out.stdout)


def test_a_spawned_worker_of_the_command_keeps_pythons_sigint_handling(tmp_path):
    """multiprocessing's spawn imports the command's script again in each worker, with the
    command's argv; the worker is not the command (it sets its own SIGINT handling)."""
    script = tmp_path / "metarobot"  # shaped as the console script pip writes
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing as mp, signal
            from metarobot.cli import main
            import metarobot.startup as startup

            def report(queue):
                queue.put((startup.is_command(), signal.getsignal(signal.SIGINT) is signal.default_int_handler))

            if __name__ == "__main__":
                ctx = mp.get_context("spawn")
                queue = ctx.Queue()
                worker = ctx.Process(target=report, args=(queue,))
                worker.start()
                print(startup.is_command(), *queue.get(timeout=300))
                worker.join()
            """
        )
    )
    argv = [sys.executable, str(script)]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, preexec_fn=_as_in_a_terminal)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "True"], out.stdout


def test_main_hands_ctrl_c_back_to_python_when_it_starts(monkeypatch, capsys):
    """The guard ends with the start: from ``main`` on, SIGINT raises KeyboardInterrupt again
    (which ``main`` turns into its own message after closing what it opened)."""
    monkeypatch.setattr(startup, "is_command", lambda: True)
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        startup.guard_command_start()
        assert signal.getsignal(signal.SIGINT) is startup._abort
        assert startup._stderr_fd is not None
        with pytest.raises(SystemExit) as exit_info:
            main(["families", "cartpole"])
        assert exit_info.value.code == 0
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert startup._stderr_fd is None
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "pole_length" in capsys.readouterr().out
