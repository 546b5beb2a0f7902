"""Rollout sampling for meta-learning: jobs, rollouts, and the sampler protocol.

A *job* is: one task, a policy's parameters, ``n_envs`` env slots stepped in lockstep for
``n_steps`` control steps each (one batched policy forward per step), a seed, and optionally a
context vector appended to every observation (what context-conditioned policies read). The
result holds SB3 ``RolloutBuffer``-shaped arrays, ready for SB3's GAE.

A sampler is anything with ``run(jobs) -> rollouts`` and ``close()`` (``Sampler``, a
``typing.Protocol``); the learner is handed one. ``LocalSampler`` runs jobs in ``workers``
long-lived processes (``workers=0``: in this process); ``RaySampler``
(``metarobot.ray_sampler``) on the actors of a Ray cluster. Each worker keeps its env slots and
switches them with ``env.set_task``; it uses one torch thread. Jobs that share one parameter
dict (every task of a phase starts from the meta-parameters) send it once per worker and
call, not once per job. Job results depend only on the job (its seed), never on which worker
ran it, so runs are reproducible whatever the worker count or sampler. A worker that dies or
stops answering raises a ``MetarobotError`` naming it, never a silent hang.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import numpy as np
import torch

from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.online import (
    ConstantContext,
    ContextStream,
    IdentifiedActions,
    IdentifiedContext,
    OnlineEstimator,
    transition_rows,
)
from metarobot.registry import get_family

if TYPE_CHECKING:  # pragma: no cover
    from gymnasium import spaces

    from metarobot.config import MetaConfig


@dataclasses.dataclass
class PolicySpec:
    """What a worker needs to rebuild the policy network (picklable)."""

    family: str
    policy_kwargs: dict[str, Any]
    #: floats appended to the env's observation (a job's ``context``), 0 for plain policies
    context_dim: int = 0

    def build(self, obs_space: Any = None, act_space: Any = None) -> Any:
        """A fresh policy (spaces default to the family's, read off one of its envs, widened
        by ``context_dim``)."""
        from metarobot.policies import MaskedActorCriticPolicy, zero_schedule

        if obs_space is None or act_space is None:
            obs_space, act_space = get_family(self.family).observation_space_example()
            obs_space = widen(obs_space, self.context_dim)
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
    #: appended to every observation the policy sees (and stored with it), or None
    context: np.ndarray | None = None
    #: when given, the context is instead re-estimated after every step from the transitions
    #: seen so far (``metarobot.online``); ``context`` then only gives its width
    online: OnlineEstimator | IdentifiedContext | None = None
    #: when given, the family's identified action (grasp-v1's squeeze) is set by it, from
    #: ``prior`` sums plus the job's own transitions (``metarobot.online.ActionStream``)
    actions: IdentifiedActions | None = None


def as_box(space: Any) -> spaces.Box:
    """``space`` as a gymnasium ``Box`` (every family's observation and action space is one)."""
    from gymnasium import spaces

    if not isinstance(space, spaces.Box):
        raise MetarobotError(f"expected a Box space, got {space!r}")
    return space


def widen(space: Any, extra: int) -> Any:
    """A Box observation space with ``extra`` unbounded floats appended."""
    if extra <= 0:
        return space
    from gymnasium import spaces

    low = np.concatenate([space.low, np.full(extra, -np.inf, dtype=space.dtype)])
    high = np.concatenate([space.high, np.full(extra, np.inf, dtype=space.dtype)])
    return spaces.Box(low, high, dtype=space.dtype)


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
    #: ``(n_envs, stats_dim)``: the action-identification statistics the job's transitions
    #: added per slot (``Job.actions``), or None
    action_stats: np.ndarray | None = None

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
        key = repr((spec.family, sorted(spec.policy_kwargs.items()), spec.context_dim))
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
    stream: ContextStream = job.online.start(n) if job.online is not None else ConstantContext(job.context, n)
    identified = job.actions.start(n) if job.actions is not None else None
    raw_dim = envs[0].observation_space.shape[0]
    obs_dim = (raw_dim + stream.contexts().shape[1],)
    act_space = envs[0].action_space

    def with_context(o: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return np.concatenate([o, stream.contexts()[rows]], axis=1)

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
    obs = with_context(np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)]))
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
            # the identified action is set as a low-level controller would set it: the rollout
            # keeps the policy's own sample (what PPO's log-probabilities are of)
            sent = identified.apply(act) if identified is not None else act
            clipped = np.clip(sent, low, high)
            terminal_obs: list[tuple[int, np.ndarray]] = []
            went_on: list[int] = []  # slots whose episode continues: their transition is seen
            previous = obs[:, :raw_dim].copy()
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
                else:
                    went_on.append(i)
                obs[i, :raw_dim] = o
            if went_on:
                rows = np.asarray(went_on)
                seen = transition_rows(previous[rows], sent[rows], rewards[t, rows], obs[rows, :raw_dim])
                stream.observe(rows, seen)
                if identified is not None:
                    identified.observe(rows, seen)
            if terminal_obs:  # bootstrap time-limit truncations with the value, as SB3 does
                idx = [i for i, _ in terminal_obs]
                final = with_context(np.stack([o for _, o in terminal_obs]), np.asarray(idx))
                v = policy.predict_values(torch.as_tensor(final)).numpy()
                rewards[t, idx] += job.gamma * v.reshape(-1)
            obs[:, raw_dim:] = stream.contexts()
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
        identified.added if identified is not None else None,
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
    table: dict[int, dict[str, torch.Tensor]] = {}
    call = -1
    send_lock = threading.Lock()
    busy = threading.Event()
    done = threading.Event()

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
            if msg[0] == "run":  # ("run", call id, new parameter dicts, [(job, ref), ...])
                busy.set()
                try:
                    if msg[1] != call:  # parameters are cached for one call of the parent's run
                        call, table = msg[1], {}
                    table.update({r: {k: torch.from_numpy(a) for k, a in d.items()} for r, d in msg[2].items()})
                    results = [run_job(pool, spec, dataclasses.replace(job, params=table[ref])) for job, ref in msg[3]]
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


class Sampler(Protocol):
    """What the meta-learners sample with: ``run(jobs) -> rollouts`` (in job order), ``close()``.

    A sampler may also offer ``run_chain(jobs, follow)`` (see ``LocalSampler.run_chain``),
    which starts a task's next phase as soon as its previous one is in; ``run_chain`` (the
    function) falls back to phase-by-phase ``run`` calls for samplers without it."""

    def run(self, jobs: Sequence[Job]) -> list[Rollout]: ...

    def close(self) -> None: ...


#: ``follow(i, rollout)``: the next job of chain ``i`` after ``rollout``, or None when it is done
Follow = Callable[[int, Rollout], "Job | None"]


def run_chain(sampler: Sampler, jobs: Sequence[Job], follow: Follow) -> list[list[Rollout]]:
    """Chains of jobs on any sampler: its own ``run_chain`` if it has one, else one ``run``
    call per phase (the same rollouts either way; only the schedule differs)."""
    own = getattr(sampler, "run_chain", None)
    if own is not None:
        return own(jobs, follow)  # type: ignore[no-any-return]
    chains: list[list[Rollout]] = [[] for _ in jobs]
    current: list[tuple[int, Job]] = list(enumerate(jobs))
    while current:
        rollouts = sampler.run([job for _, job in current])
        following = []
        for (i, _), rollout in zip(current, rollouts):
            chains[i].append(rollout)
            nxt = follow(i, rollout)
            if nxt is not None:
                following.append((i, nxt))
        current = following
    return chains


class LocalSampler:
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
        self._calls = 0
        self._busy = False
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

    def run(self, jobs: Sequence[Job]) -> list[Rollout]:
        out = self.run_chain(jobs, lambda i, rollout: None)
        return [chain[0] for chain in out]

    def run_chain(self, jobs: Sequence[Job], follow: Follow) -> list[list[Rollout]]:
        """Run ``jobs``; whenever job ``i``'s rollout arrives, ``follow(i, rollout)`` (called in
        this process) may return the next job of that chain (e.g. the same task after an inner
        update), which is dispatched at once. Returns each chain's rollouts in order.

        Workers take the next job as soon as they are free (no fixed shares, no barrier
        between a task's phases), so neither uneven jobs nor the inner updates leave a worker
        idle. A job's result depends only on the job, so the schedule never changes a number."""
        chains: list[list[Rollout]] = [[] for _ in jobs]
        if self._local is not None:
            for i, job in enumerate(jobs):
                nxt: Job | None = job
                while nxt is not None:
                    rollout = run_job(self._local, self.spec, nxt)
                    chains[i].append(rollout)
                    nxt = follow(i, rollout)
            return chains
        self._calls += 1
        queue: collections.deque[tuple[int, Job]] = collections.deque(enumerate(jobs))
        params: list[dict[str, torch.Tensor]] = []
        ref_of: dict[int, int] = {}
        sent: list[set[int]] = [set() for _ in self._conns]
        busy: dict[int, int] = {}  # worker -> chain it runs

        def dispatch(w: int) -> None:
            i, job = queue.popleft()
            key = id(job.params)
            if key not in ref_of:
                ref_of[key] = len(params)
                params.append(job.params)
            ref = ref_of[key]
            # as numpy arrays: pickled by value. Torch tensors would travel through shared memory,
            # whose receiving cache is keyed by inode, so a freed and reused segment could give a
            # worker stale parameters (suspected once; the schedule-dependent results seen then
            # came from the inner PPO's seeding, issue 10 in bench/RESULTS.md)
            new = {} if ref in sent[w] else {ref: {k: v.detach().cpu().numpy() for k, v in params[ref].items()}}
            sent[w].add(ref)
            self._send(w, ("run", self._calls, new, [(dataclasses.replace(job, params={}), ref)]))
            busy[w] = i

        self._busy = True  # until every reply is in: close() then kills instead of waiting
        for w in range(len(self._conns)):
            if queue:
                dispatch(w)
        last_seen = {w: time.monotonic() for w in range(len(self._conns))}
        stopped_since: dict[int, float] = {}
        cpu = {w: _proc_status(self._procs[w].pid) for w in range(len(self._conns))}
        started = previous = time.monotonic()
        while busy:
            # wait on every busy worker at once: whichever dies or answers first is seen first
            ready = mp_wait([self._conns[w] for w in busy], timeout=0.5)
            now = time.monotonic()
            if now - previous > STOPPED_S:  # this process itself was suspended (Ctrl-Z): not the workers' fault
                last_seen = {w: now for w in last_seen}
                stopped_since.clear()
            previous = now
            for w in sorted(busy):
                conn, proc = self._conns[w], self._procs[w]
                if conn in ready:
                    reply = self._recv(w)
                    last_seen[w] = now
                    if reply[0] == "beat":
                        continue
                    if reply[0] == "error":
                        self._fail(w, f"failed: {reply[1]}")
                    i = busy.pop(w)
                    (rollout,) = reply[1]
                    chains[i].append(rollout)
                    nxt = follow(i, rollout)
                    if nxt is not None:
                        queue.appendleft((i, nxt))  # a chain's next phase first: its task's envs are warm
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
            for idle in range(len(self._conns)):  # free workers take the next job
                if idle not in busy and queue:
                    dispatch(idle)
                    last_seen[idle] = time.monotonic()
        self._busy = False
        return chains

    def _send(self, w: int, msg: Any) -> None:
        try:
            self._conns[w].send(msg)
        except _PIPE_ERRORS:  # BrokenPipeError, ConnectionResetError: the worker is gone
            self._fail(w, "died")

    def _recv(self, w: int) -> Any:
        try:
            return self._conns[w].recv()
        except _PIPE_ERRORS:
            self._fail(w, "died")

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

    def __enter__(self) -> LocalSampler:
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


def make_sampler(config: MetaConfig, spec: PolicySpec) -> Sampler:
    """The sampler a config asks for (``config.sampler``: local or ray)."""
    if config.sampler == "ray":
        from metarobot.ray_sampler import RaySampler

        return RaySampler(spec, workers=max(1, config.workers), address=config.ray_address)
    return LocalSampler(spec, workers=config.workers)
