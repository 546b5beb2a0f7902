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

import dataclasses
import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.registry import get_family

if TYPE_CHECKING:  # pragma: no cover
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
    context = None if job.context is None else np.asarray(job.context, dtype=np.float32).reshape(1, -1)
    extra = 0 if context is None else context.shape[1]
    obs_dim = (envs[0].observation_space.shape[0] + extra,)
    act_space = envs[0].action_space

    def with_context(o: np.ndarray) -> np.ndarray:
        return o if context is None else np.concatenate([o, np.repeat(context, len(o), axis=0)], axis=1)

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
                obs[i, : len(o)] = o
            if terminal_obs:  # bootstrap time-limit truncations with the value, as SB3 does
                idx = [i for i, _ in terminal_obs]
                final = with_context(np.stack([o for _, o in terminal_obs]))
                v = policy.predict_values(torch.as_tensor(final)).numpy()
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


def _worker_main(conn: Connection, spec: PolicySpec) -> None:
    # Ctrl-C goes to the whole process group: the parent decides (checkpoint, then close us)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    pool = _SlotPool()
    try:
        while True:
            msg = conn.recv()
            if msg[0] == "close":
                break
            if msg[0] == "run":
                try:
                    table, share = msg[1], msg[2]
                    results = [run_job(pool, spec, dataclasses.replace(job, params=table[ref])) for job, ref in share]
                    conn.send(("ok", results))
                except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
                    conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        pool.close()


class Sampler(Protocol):
    """What the meta-learners sample with: ``run(jobs) -> rollouts`` (in job order), ``close()``."""

    def run(self, jobs: Sequence[Job]) -> list[Rollout]: ...

    def close(self) -> None: ...


def param_table(jobs: Sequence[Job]) -> tuple[list[dict[str, torch.Tensor]], list[int]]:
    """The distinct parameter dicts of ``jobs`` (by identity) and each job's index into them,
    so that parameters shared by many jobs travel once."""
    table: list[dict[str, torch.Tensor]] = []
    index: dict[int, int] = {}
    refs = []
    for job in jobs:
        key = id(job.params)
        if key not in index:
            index[key] = len(table)
            table.append(job.params)
        refs.append(index[key])
    return table, refs


def shares(n_jobs: int, n_workers: int) -> list[list[int]]:
    """Which jobs each worker runs: round robin (a job's result never depends on its worker)."""
    out: list[list[int]] = [[] for _ in range(n_workers)]
    for i in range(n_jobs):
        out[i % n_workers].append(i)
    return out


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
        if workers == 0:
            self._local = _SlotPool()
            return
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, spec), daemon=True)  # type: ignore[attr-defined]
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)

    def run(self, jobs: Sequence[Job]) -> list[Rollout]:
        if self._local is not None:
            return [run_job(self._local, self.spec, job) for job in jobs]
        table, refs = param_table(jobs)
        parts = shares(len(jobs), len(self._conns))
        for conn, share in zip(self._conns, parts):
            needed = sorted({refs[i] for i in share})
            sub = {r: table[r] for r in needed}
            conn.send(("run", sub, [(dataclasses.replace(jobs[i], params={}), refs[i]) for i in share]))
        results: list[Rollout | None] = [None] * len(jobs)
        for w, (conn, proc, share) in enumerate(zip(self._conns, self._procs, parts)):
            waited = 0.0
            while not conn.poll(1.0):
                waited += 1.0
                if not proc.is_alive():
                    self.close()
                    raise MetarobotError(f"sampling worker {w} died (exit code {proc.exitcode})")
                if waited >= self.timeout_s:
                    self.close()
                    raise MetarobotError(f"sampling worker {w} did not answer within {self.timeout_s:.0f} s")
            try:
                reply = conn.recv()
            except EOFError:
                self.close()
                raise MetarobotError(f"sampling worker {w} died (exit code {proc.exitcode})") from None
            if reply[0] == "error":
                self.close()
                raise MetarobotError(f"sampling worker {w} failed: {reply[1]}")
            for i, r in zip(share, reply[1]):
                results[i] = r
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close",))
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._procs.clear()
        self._conns.clear()
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> LocalSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def make_sampler(config: MetaConfig, spec: PolicySpec) -> Sampler:
    """The sampler a config asks for (``config.sampler``: local or ray)."""
    if config.sampler == "ray":
        from metarobot.ray_sampler import RaySampler

        return RaySampler(spec, workers=max(1, config.workers), address=config.ray_address)
    return LocalSampler(spec, workers=config.workers)
