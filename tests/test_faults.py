"""Faults during a run: SIGKILL at every stage of an iteration, a second run on the same
directory, a killed or stopped sampling worker, a failing disk, Ctrl-C (once and twice) and
divergence. After each, either one line ``Error: ...`` (exit 2) or the resume hint (exit 130),
no traceback from any process, and a directory that ``--resume`` continues to exactly the
result of an uninterrupted run (CPU).

The kills land at chosen points: the run executes in a subprocess whose entry point wraps one
library function so that it SIGKILLs its own process on a given call. Real processes, real
files and real signals; no wall-clock bounds beyond generous "did it end" timeouts.
"""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from tiny import cli_args, tiny

from metarobot.cli import main

#: the library's own outer epochs, workers (each test sets them) and network size
TINY = [
    *cli_args(tiny(episodes_per_update=1, eval_tasks=1, seed=3, without=["outer_epochs", "workers", "hidden_sizes"])),
    "--no-progress",
]
ITERATIONS = 3

#: ``python -c`` entry point: wrap ``module.name`` so that call number ``n`` (1-based) SIGKILLs
#: this process, ``when`` before or after the real call (``enospc``: fails as a full disk
#: does instead of running); then run the CLI with the given args.
_KILLER = textwrap.dedent(
    """
    import errno, importlib, os, signal, sys
    module, name, n, when = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    owner_path, _, attr = name.rpartition(".")
    owner = importlib.import_module(module)
    for part in owner_path.split(".") if owner_path else ():
        owner = getattr(owner, part)
    real = getattr(owner, attr)
    calls = [0]
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        if calls[0] == n and when == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        result = real(*args, **kwargs)
        if calls[0] == n and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(owner, attr, wrapped)
    from metarobot.cli import main
    main(sys.argv[5:])
    """
)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    _, err = capsys.readouterr()
    return int(exc.value.code or 0), err


def _metrics(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.pop("wall_s")
    return rows


def _policy(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["policy_state"]


def _same_run(a: Path, b: Path) -> None:
    assert _metrics(a / "metrics.csv") == _metrics(b / "metrics.csv")
    pa, pb = _policy(a / "meta_policy.pt"), _policy(b / "meta_policy.pt")
    assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
    sa = (a / "summary.json").read_text().split('"wall_s"')[0]
    sb = (b / "summary.json").read_text().split('"wall_s"')[0]
    assert sa == sb
    assert not list(a.rglob(".*.tmp*")) and not list(b.rglob(".*.tmp*"))  # no temporary file left


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("faults") / "reference"
    with pytest.raises(SystemExit) as exc:
        main(["meta-train", *TINY, "--workers", "0", "--iterations", str(ITERATIONS), "--out", str(out)])
    assert exc.value.code == 0
    return out


def _killed_at(module: str, name: str, n: int, when: str, out: Path, workers: str = "0") -> subprocess.CompletedProcess:
    args = ["meta-train", *TINY, "--workers", workers, "--iterations", str(ITERATIONS), "--out", str(out)]
    return subprocess.run(
        [sys.executable, "-c", _KILLER, module, name, str(n), when, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


# stage of an iteration: (module, function, call number, before/after the call)
STAGES = {
    "before the first checkpoint (sampling)": ("metarobot.sampling", "LocalSampler.run_chain", 1, "before"),
    "in the outer update of iteration 2": ("metarobot.algorithms.maml", "MAML.outer_update", 2, "before"),
    "after the outer update, before the checkpoint": ("metarobot.algorithms.maml", "MAML.outer_update", 2, "after"),
    "while writing the checkpoint": ("torch", "save", 2, "before"),
    "between the checkpoint and its CSV row": ("metarobot.training", "write_csv", 2, "before"),
    "after the CSV row": ("metarobot.training", "write_csv", 2, "after"),
    "while writing meta_policy.zip": ("metarobot.meta", "MetaLearner.save_sb3", 1, "before"),
    "while writing summary.json": ("metarobot.training", "atomic_write_json", 1, "before"),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_at_any_stage_then_resume_reproduces_the_uninterrupted_run(stage, reference, tmp_path, capsys):
    out = tmp_path / "run"
    proc = _killed_at(*STAGES[stage], out)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "Traceback" not in proc.stderr
    code, err = _cli(["meta-train", "--resume", "--out", str(out)], capsys)
    assert code == 0, err
    _same_run(reference, out)


def test_killed_main_process_leaves_workers_quiet(tmp_path):
    """SIGKILL of meta-train while its workers sample: they exit without a traceback."""
    out = tmp_path / "run"
    proc = _killed_at("metarobot.sampling", "LocalSampler.run_chain", 3, "after", out, workers="2")
    # communicate() returned, so every process holding the stderr pipe (the workers too) has ended
    assert proc.returncode == -signal.SIGKILL
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def _start(out: Path, workers: str, iterations: int = 500) -> subprocess.Popen:
    args = ["meta-train", *TINY, "--workers", workers, "--iterations", str(iterations), "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, "-m", "metarobot.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
        # a terminal's foreground job gets Ctrl-C; a shell's background job (`pytest ... &`, as
        # CI may start us) inherits SIGINT ignored, and Python then keeps it ignored
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not path.exists():
        proc.kill()
        raise AssertionError(f"{path} never appeared: {proc.communicate()}")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _sampling_workers(pid: int) -> list[int]:
    """The workers: forkserver children (grandchildren of the main process) that run _worker_main."""
    kids = set(_descendants(pid))
    return sorted(p for p in kids if any(p in _descendants(k) for k in kids if k != p))


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_second_run_on_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    first = _start(out, "0")
    try:
        _wait_for(out / "config.yaml", first)
        code, err = _cli(["meta-train", "--resume", "--out", str(out), "--no-progress"], capsys)
        assert code == 2 and "is in use by another metarobot run" in _one_error_line(err)
        code, err = _cli(["meta-train", *TINY, "--out", str(out)], capsys)
        assert code == 2 and "already holds a run" in _one_error_line(err)
    finally:
        first.kill()
        first.communicate()
    # once the first run is gone, its directory resumes
    code, err = _cli(["meta-train", "--resume", "--out", str(out), "--iterations", "1", "--workers", "0"], capsys)
    assert code in (0, 2), err
    if code == 2:  # it had already finished iteration 1
        assert "already finished" in _one_error_line(err)
    assert (out / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_dead_or_stopped_worker_is_one_error_line(how, tmp_path, capsys):
    out = tmp_path / "run"
    proc = _start(out, "2")
    try:
        _wait_for(out / "checkpoints" / "last.pt", proc)
        workers = _sampling_workers(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        _, err = proc.communicate(timeout=30)  # the bound: an error within 30 s, not a 900 s hang
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 2, err
    line = _one_error_line(err)
    assert f"pid {workers[0]}" in line
    assert ("died (killed by signal 9)" if how == "killed" else "was stopped (SIGSTOP?)") in line
    assert not Path(f"/proc/{workers[0]}").exists() or "Z" in Path(f"/proc/{workers[0]}/stat").read_text().split()[2]
    # the run keeps its last checkpoint and continues
    code, err = _cli(["meta-train", "--resume", "--out", str(out), "--iterations", "2", "--workers", "0"], capsys)
    assert code in (0, 2), err


@pytest.mark.parametrize("signals", [1, 2], ids=["one Ctrl-C", "two Ctrl-Cs"])
def test_ctrl_c_ends_the_run_with_the_resume_hint(signals, tmp_path, capsys):
    out = tmp_path / "run"
    proc = _start(out, "2")
    try:
        _wait_for(out / "checkpoints" / "last.pt", proc)
        for _ in range(signals):
            os.killpg(proc.pid, signal.SIGINT)  # the terminal sends it to the whole group
            time.sleep(0.05)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    hint = [line for line in err.splitlines() if line.startswith("Interrupted:")]
    assert len(hint) == 1 and f"--resume --out {out}" in hint[0], err
    done = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["iteration"]
    assert f"after iteration {done}" in hint[0]
    assert len(_metrics(out / "metrics.csv")) == done


def _limited(limit_bytes: int):
    def preexec() -> None:  # writes past the limit fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return preexec


@pytest.mark.parametrize("failing", ["checkpoints/last.pt", "meta_policy.zip"])
def test_a_failing_disk_is_one_error_line_and_the_run_resumes(failing, reference, tmp_path, capsys):
    """The first checkpoint (126 kB) cannot be written under a 16 kB file-size limit
    (RLIMIT_FSIZE: the write fails with EFBIG, as on a full disk), or the final zip's write
    fails with ENOSPC (injected)."""
    out = tmp_path / "run"
    args = ["meta-train", *TINY, "--workers", "0", "--iterations", str(ITERATIONS), "--out", str(out)]
    if failing == "meta_policy.zip":
        proc = _killed_at("metarobot.meta", "MetaLearner.save_sb3", 1, "enospc", out)
        assert "No space left on device" in proc.stderr
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "metarobot.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=_limited(16 * 1024),
        )
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert f"cannot write {out / failing}" in line and f"--resume --out {out}" in line
    assert not list(out.rglob(".*.tmp*"))  # no partial file left behind
    assert not (out / "summary.json").exists()
    code, err = _cli(["meta-train", "--resume", "--out", str(out)], capsys)
    assert code == 0, err
    _same_run(reference, out)


def test_divergence_is_one_error_line_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    """Parameters turned NaN by the third outer update (injected): training stops there with one
    line, and the checkpoint of iteration 2 stays as it was, finite."""
    from metarobot.algorithms.maml import MAML

    real = MAML.outer_update
    calls = [0]

    def poisoned(self, *args, **kwargs):
        stats = real(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == 3:
            with torch.no_grad():
                next(iter(self.policy.parameters())).fill_(float("nan"))
        return stats

    monkeypatch.setattr(MAML, "outer_update", poisoned)
    out = tmp_path / "run"
    code, err = _cli(["meta-train", *TINY, "--workers", "0", "--iterations", "5", "--out", str(out)], capsys)
    assert code == 2
    line = _one_error_line(err)
    assert "training diverged in iteration 3" in line and "(iteration 2)" in line
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["policy_state"].values() if v.is_floating_point())
    assert len(_metrics(out / "metrics.csv")) == 2


def test_a_real_divergence_outer_lr_1_is_one_error_line(tmp_path, capsys):
    """The issue's case: ``--outer-lr 1`` on cartpole (family defaults) diverged in iteration 1
    with a 1,072-line ``Normal(loc=nan)`` traceback."""
    out = tmp_path / "run"
    args = ["meta-train", "--family", "cartpole", "--outer-lr", "1", "--workers", "0", "--iterations", "2"]
    code, err = _cli([*args, "--no-progress", "--out", str(out)], capsys)
    assert code == 2, err
    assert "training diverged in iteration 1" in _one_error_line(err)


def test_an_unguarded_script_with_workers_says_what_to_add(tmp_path):
    """Workers import the user's script; without a ``__main__`` guard that used to end in an
    85-line multiprocessing traceback per process. Now: one line saying what to add."""
    script = tmp_path / "train.py"
    script.write_text(
        "from metarobot import MAML\n"
        "learner = MAML(family='cartpole', meta_batch=2, episodes_per_update=1, workers=2, hidden_sizes=(8,))\n"
        "learner.train(iterations=1)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("metarobot.errors.MetarobotError: sampling worker")
    assert 'if __name__ == "__main__":' in last and "workers=0" in last
    assert proc.stderr.count("Traceback") == 1  # the script's own exception, none from the workers


def test_runs_are_identical_with_and_without_worker_processes(tmp_path, capsys):
    """Parameters travel to workers as numpy arrays: the numbers must not depend on it."""
    for workers in ("0", "2"):
        args = ["meta-train", *TINY, "--workers", workers, "--iterations", "2", "--eval-tasks", "0"]
        code, err = _cli([*args, "--out", str(tmp_path / workers)], capsys)
        assert code == 0, err
    assert _metrics(tmp_path / "0" / "metrics.csv") == _metrics(tmp_path / "2" / "metrics.csv")
    a, b = _policy(tmp_path / "0" / "meta_policy.pt"), _policy(tmp_path / "2" / "meta_policy.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_ctrl_c_that_reaches_another_thread_still_waits_for_the_checkpoint_block():
    """A signal sent to the process may land on any of its threads (the sampler's, tqdm's);
    CPython runs the handler in the main thread wherever that is. The block that writes the
    checkpoint and the count the resume hint names must finish first (a thread-mask deferral
    let a Ctrl-C in between: 'after iteration 0' with iteration 1 on disk)."""
    import threading

    from metarobot.training import _signals_deferred

    finished = []
    # Python's own Ctrl-C handling, as a terminal starts it: a test run started in the background
    # (nohup ... &) inherits SIGINT ignored, and the deferral rightly restores that
    started_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with _signals_deferred():
                other = threading.Thread(target=signal.raise_signal, args=(signal.SIGINT,))
                other.start()
                other.join()
                for _ in range(1000):  # chances for the main thread to run a pending handler
                    time.sleep(0)
                finished.append(True)
        assert finished == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, started_with)
