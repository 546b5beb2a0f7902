"""Parallel rollout sampling for meta-learning.

A *job* is: one task, a policy's parameters, ``n_envs`` env slots stepped in lockstep for
``n_steps`` control steps each (one batched policy forward per step), and a seed. The result
holds SB3 ``RolloutBuffer``-shaped arrays, ready for SB3's GAE.

``Sampler`` runs jobs in ``workers`` long-lived processes (``workers=0``: in this process).
Each worker keeps its env slots and switches them with ``env.set_task``; it uses one torch
thread. Job results depend only on the job (its seed), never on which worker ran it, so runs
are reproducible whatever the worker count. A worker that dies or stops answering raises a
``MetarobotError`` naming it, never a silent hang.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from multiprocessing import connection as mp_connection
from multiprocessing.connection import Connection
from typing import Any, NoReturn

import numpy as np
import torch

from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.registry import get_family


@dataclasses.dataclass
class PolicySpec:
    """What a worker needs to rebuild the policy network (picklable)."""

    family: str
    policy_kwargs: dict[str, Any]

    def build(self, obs_space: Any = None, act_space: Any = None) -> Any:
        """A fresh policy (spaces default to the family's, read off one of its envs)."""
        from metarobot.policies import MaskedActorCriticPolicy, zero_schedule

        if obs_space is None or act_space is None:
            obs_space, act_space = get_family(self.family).observation_space_example()
        policy = MaskedActorCriticPolicy(obs_space, act_space, zero_schedule, **self.policy_kwargs)
        policy.set_training_mode(False)
        return policy


@dataclasses.dataclass
class Job:
    task: Task
    params: dict[str, torch.Tensor]
    n_envs: int
    n_steps: int
    seed: int
    gamma: float
    deterministic: bool = False


@dataclasses.dataclass
class Rollout:
    """One job's data, in SB3 ``RolloutBuffer`` layout ``(n_steps, n_envs, ...)``."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_starts: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    last_values: np.ndarray
    last_dones: np.ndarray
    episode_returns: list[float]
    episode_successes: list[bool]
    physics_errors: int

    @property
    def env_steps(self) -> int:
        return int(self.rewards.size)

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.episode_successes)) if self.episode_successes else 0.0

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.episode_returns)) if self.episode_returns else float("nan")


class _SlotPool:
    """The env slots of one process (created on demand, reused across jobs)."""

    def __init__(self) -> None:
        self.envs: list[Any] = []
        self.policies: dict[str, Any] = {}

    def policy(self, spec: PolicySpec) -> Any:
        key = repr((spec.family, sorted(spec.policy_kwargs.items())))
        if key not in self.policies:
            self.policies[key] = spec.build()
        return self.policies[key]

    def slots(self, task: Task, n: int) -> list[Any]:
        family = get_family(task.family)
        while len(self.envs) < n:
            self.envs.append(family.make_env(task))
        for env in self.envs[:n]:
            if env.task_type is not type(task):
                raise MetarobotError("one sampler serves one family")
            env.set_task(task)
        return self.envs[:n]

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs.clear()


def run_job(pool: _SlotPool, spec: PolicySpec, job: Job) -> Rollout:
    """Step ``job.n_envs`` envs of ``job.task`` in lockstep with the job's parameters."""
    policy = pool.policy(spec)
    policy.load_state_dict(job.params)
    envs = pool.slots(job.task, job.n_envs)
    torch.manual_seed(job.seed)
    n, t_max = job.n_envs, job.n_steps
    obs_dim = envs[0].observation_space.shape
    act_space = envs[0].action_space
    observations = np.zeros((t_max, n, *obs_dim), dtype=np.float32)
    actions = np.zeros((t_max, n, *act_space.shape), dtype=np.float32)
    rewards = np.zeros((t_max, n), dtype=np.float32)
    starts = np.zeros((t_max, n), dtype=np.float32)
    values = np.zeros((t_max, n), dtype=np.float32)
    log_probs = np.zeros((t_max, n), dtype=np.float32)
    ep_returns: list[float] = []
    ep_success: list[bool] = []
    physics_errors = 0
    seeds = np.random.SeedSequence(job.seed).generate_state(n)
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)])
    episode_start = np.ones(n, dtype=np.float32)
    running = np.zeros(n)
    low, high = act_space.low, act_space.high
    with torch.no_grad():
        for t in range(t_max):
            obs_t = torch.as_tensor(obs)
            act_t, val_t, logp_t = policy(obs_t, deterministic=job.deterministic)
            act = act_t.numpy()
            observations[t] = obs
            actions[t] = act
            values[t] = val_t.numpy().reshape(-1)
            log_probs[t] = logp_t.numpy()
            starts[t] = episode_start
            clipped = np.clip(act, low, high)
            terminal_obs: list[tuple[int, np.ndarray]] = []
            for i, env in enumerate(envs):
                o, r, term, trunc, info = env.step(clipped[i])
                rewards[t, i] = r
                running[i] += r
                episode_start[i] = float(term or trunc)
                if term or trunc:
                    ep_returns.append(float(running[i]))
                    ep_success.append(bool(info.get("is_success", False)))
                    physics_errors += int(bool(info.get("physics_error", False)))
                    running[i] = 0.0
                    if trunc and not term:
                        terminal_obs.append((i, o))
                    o, _ = env.reset()
                obs[i] = o
            if terminal_obs:  # bootstrap time-limit truncations with the value, as SB3 does
                idx = [i for i, _ in terminal_obs]
                v = policy.predict_values(torch.as_tensor(np.stack([o for _, o in terminal_obs]))).numpy()
                rewards[t, idx] += job.gamma * v.reshape(-1)
        last_values = policy.predict_values(torch.as_tensor(obs)).numpy().reshape(-1)
    return Rollout(
        observations,
        actions,
        rewards,
        starts,
        values,
        log_probs,
        last_values,
        episode_start.copy(),
        ep_returns,
        ep_success,
        physics_errors,
    )


#: a busy worker reports every HEARTBEAT_S seconds; one that neither reports nor uses CPU
#: for STALL_S is hung; one stopped (SIGSTOP, state T) for STOPPED_S is reported as such
HEARTBEAT_S = 1.0
STALL_S = 20.0
STOPPED_S = 2.0
#: errors of a pipe whose other end is gone (a dead worker, or a parent that was killed)
_PIPE_ERRORS = (EOFError, OSError)


def _worker_main(conn: Connection, spec: PolicySpec) -> None:
    # Ctrl-C goes to the whole process group: the parent decides (checkpoint, then close us)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    pool = _SlotPool()
    send_lock = threading.Lock()
    busy = threading.Event()
    done = threading.Event()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(msg)

    def heartbeat() -> None:
        # beats only while a job runs, so an idle worker never fills the pipe; a stopped
        # (SIGSTOP) or hung process stops beating, and the parent notices within STALL_S
        while not done.wait(HEARTBEAT_S):
            if busy.is_set():
                try:
                    with send_lock:
                        if busy.is_set():
                            conn.send(("beat",))
                except _PIPE_ERRORS:
                    return

    beater = threading.Thread(target=heartbeat, daemon=True)
    beater.start()
    try:
        while True:
            msg = conn.recv()
            if msg[0] == "close":
                break
            if msg[0] == "run":
                busy.set()
                try:
                    results = [run_job(pool, spec, _from_wire(job)) for job in msg[1]]
                    reply: tuple[Any, ...] = ("ok", results)
                except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
                    reply = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
                with send_lock:
                    busy.clear()
                    conn.send(reply)
    except (*_PIPE_ERRORS, KeyboardInterrupt):
        pass  # the parent is gone or closing: end quietly, it reports what happened
    finally:
        done.set()
        try:
            pool.close()
        except Exception:  # noqa: BLE001 - exiting anyway; nothing to report to
            pass


_UNGUARDED = (
    'a script that starts sampling workers needs its code under `if __name__ == "__main__":` '
    "(workers import the script), or pass workers=0"
)
#: the exit code of a worker process that found itself importing an unguarded script
_EXIT_UNGUARDED = 3


def _refuse_import_time_start() -> None:
    """In a process that is importing the user's script to become a worker (spawn/forkserver),
    starting workers again would recurse: leave quietly with ``_EXIT_UNGUARDED``; the parent
    reports it in one line (Python's own error is an 85-line traceback per process)."""
    if getattr(mp.current_process(), "_inheriting", False):
        os._exit(_EXIT_UNGUARDED)


def _to_wire(job: Job) -> Job:
    """Parameters as numpy arrays for the pipe: torch would send each tensor's storage as a file
    descriptor through multiprocessing's resource sharer, whose thread prints a traceback when
    a worker dies while fetching one (a Ctrl-C kills busy workers)."""
    arrays: dict[str, Any] = {k: v.detach().cpu().numpy() for k, v in job.params.items()}
    return dataclasses.replace(job, params=arrays)


def _from_wire(job: Job) -> Job:
    return dataclasses.replace(job, params={k: torch.from_numpy(v) for k, v in job.params.items()})


class Sampler:
    """Runs jobs in ``workers`` processes (0: in this process). Use as a context manager."""

    def __init__(self, spec: PolicySpec, workers: int = 2, timeout_s: float = 900.0) -> None:
        if workers < 0:
            raise MetarobotError(f"workers must be >= 0, got {workers}")
        self.spec = spec
        self.workers = workers
        self.timeout_s = timeout_s
        self._procs: list[mp.process.BaseProcess] = []
        self._conns: list[Connection] = []
        self._local: _SlotPool | None = None
        if workers == 0:
            self._local = _SlotPool()
            return
        _refuse_import_time_start()
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, spec), daemon=True)  # type: ignore[attr-defined]
            try:
                proc.start()
            except (EOFError, OSError):  # the fork server ended while importing the script
                self.close()
                raise MetarobotError(f"sampling workers could not start: {_UNGUARDED}") from None
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)

    def run(self, jobs: list[Job]) -> list[Rollout]:
        if self._local is not None:
            return [run_job(self._local, self.spec, job) for job in jobs]
        shares: list[list[int]] = [[] for _ in self._conns]
        for i in range(len(jobs)):
            shares[i % len(self._conns)].append(i)
        self._busy = True  # until every reply is in: close() then kills instead of waiting
        for w, (conn, share) in enumerate(zip(self._conns, shares)):
            try:
                conn.send(("run", [_to_wire(jobs[i]) for i in share]))
            except _PIPE_ERRORS:
                self._fail(w, "died")  # raises, without the pipe error as context
        results: list[Rollout | None] = [None] * len(jobs)
        pending = set(range(len(shares)))  # a worker given no jobs answers too (with nothing)
        last_seen = {w: time.monotonic() for w in pending}
        stopped_since: dict[int, float] = {}
        cpu = {w: _proc_status(self._procs[w].pid) for w in pending}
        started = previous = time.monotonic()
        while pending:
            # wait on every pending worker at once: whichever dies or answers first is seen first
            ready = mp_connection.wait([self._conns[w] for w in pending], timeout=0.5)
            now = time.monotonic()
            if now - previous > STOPPED_S:  # this process itself was suspended (Ctrl-Z): not the workers' fault
                last_seen = {w: now for w in pending}
                stopped_since.clear()
            previous = now
            for w in sorted(pending):
                conn, proc = self._conns[w], self._procs[w]
                if conn in ready:
                    try:
                        reply = conn.recv()
                    except _PIPE_ERRORS:
                        self._fail(w, "died")
                    last_seen[w] = now
                    if reply[0] == "beat":
                        continue
                    if reply[0] == "error":
                        self._fail(w, f"failed: {reply[1]}")
                    for i, r in zip(shares[w], reply[1]):
                        results[i] = r
                    pending.discard(w)
                    continue
                if not proc.is_alive():
                    self._fail(w, "died")
                status = _proc_status(proc.pid)
                if status is not None:
                    if status[0] == "T":  # stopped by a signal: say so within seconds
                        stopped_since.setdefault(w, now)
                        if now - stopped_since[w] > STOPPED_S:
                            self._fail(w, "was stopped (SIGSTOP?); end it or continue it with SIGCONT")
                    else:
                        stopped_since.pop(w, None)
                    if status[1] != (cpu[w] or ("", -1))[1]:  # using CPU: busy, even if its heartbeat is late
                        last_seen[w] = max(last_seen[w], now - 1.0)
                    cpu[w] = status
                if now - last_seen[w] > STALL_S:
                    self._fail(w, f"stopped responding for {now - last_seen[w]:.0f} s (stopped or hung)")
                elif now - started > self.timeout_s:
                    self._fail(w, f"did not finish within {self.timeout_s:.0f} s")
        self._busy = False
        return results  # type: ignore[return-value]

    def _fail(self, w: int, what: str) -> NoReturn:
        proc = self._procs[w]
        proc.join(timeout=1.0 if what == "died" else 0.0)  # reap it, for its exit code
        pid, code = proc.pid, proc.exitcode
        self.close()
        if what == "died" and code == _EXIT_UNGUARDED:
            raise MetarobotError(f"sampling worker {w} could not start: {_UNGUARDED}") from None
        if what == "died":
            detail = f"exit code {code}" if code is None or code >= 0 else f"killed by signal {-code}"
            raise MetarobotError(f"sampling worker {w} (pid {pid}) died ({detail})") from None
        raise MetarobotError(f"sampling worker {w} (pid {pid}) {what}") from None

    def close(self) -> None:
        busy = getattr(self, "_busy", False)
        if not busy:  # idle workers finish cleanly on "close"
            for conn in self._conns:
                try:
                    conn.send(("close",))
                except _PIPE_ERRORS:
                    pass
        deadline = time.monotonic() + (0.0 if busy else 2.0)
        for proc in self._procs:
            # busy workers (Ctrl-C or an error mid-phase) hold nothing worth waiting for
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2.0)
        for conn in self._conns:
            conn.close()
        self._busy = False
        self._procs.clear()
        self._conns.clear()
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _proc_status(pid: int | None) -> tuple[str, int] | None:
    """(state letter, CPU ticks used) of a process, from Linux's /proc; None elsewhere."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
