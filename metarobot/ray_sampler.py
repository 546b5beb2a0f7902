"""``RaySampler``: the sampler protocol on the actors of a Ray cluster (``pip install metarobot[ray]``).

Each actor builds its own PyBullet envs from the family and the task (``make_env`` opens an
explicit ``DIRECT`` client inside the actor; no env or client is ever pickled) and keeps them
across calls, like a local worker. A phase's distinct parameter dicts go to the object store
once (``ray.put``) and every actor reads them from there. A free actor takes the next job, and
each job's result depends only on the job (its seed), so a run gives the same metrics with the
local and the Ray sampler. An actor that dies is restarted by Ray and its call retried (``max_restarts``,
``max_task_retries``); one that keeps dying, or a call that does not return within
``timeout_s``, stops the run with a one-line error -- never a hang.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from metarobot.errors import MetarobotError
from metarobot.sampling import Follow, Job, PolicySpec, Rollout, _SlotPool, run_job


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MetarobotError('--sampler ray needs Ray: pip install "metarobot[ray]"') from None
    return ray


class _Actor:
    """One Ray actor: a slot pool of its own, one torch thread."""

    def __init__(self, spec: PolicySpec) -> None:
        import torch

        torch.set_num_threads(1)
        self.spec = spec
        self.pool = _SlotPool()

    def run(self, table: dict[int, Any], share: list[tuple[Job, int]]) -> list[Rollout]:
        import dataclasses

        import ray

        params = {r: ray.get(ref) for r, ref in table.items()}  # refs nested in a dict: fetch them here
        return [run_job(self.pool, self.spec, dataclasses.replace(job, params=params[r])) for job, r in share]

    def pid(self) -> int:
        """The actor's process id (for fault tests and monitoring)."""
        import os

        return os.getpid()


class RaySampler:
    """Runs jobs on ``workers`` Ray actors. ``address``: a cluster to join (``ray://HOST:10001``
    or ``auto``); ``None`` starts (or reuses) a local Ray instance."""

    def __init__(
        self,
        spec: PolicySpec,
        workers: int = 2,
        address: str | None = None,
        timeout_s: float = 900.0,
        max_restarts: int = 2,
    ) -> None:
        if workers < 1:
            raise MetarobotError(f"the ray sampler needs workers >= 1, got {workers}")
        ray = _ray()
        self.spec = spec
        self.timeout_s = timeout_s
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                if address is None:
                    ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(address=address, log_to_driver=False)
            except Exception as exc:  # noqa: BLE001 - connection failures come in many types
                where = address or "a local Ray instance"
                raise MetarobotError(f"cannot start or join {where}: {str(exc).splitlines()[0]}") from None
            self._owns_ray = True
        actor_cls = ray.remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=max_restarts)(_Actor)
        self._actors = [actor_cls.remote(spec) for _ in range(workers)]

    @property
    def actors(self) -> list[Any]:
        return list(self._actors)

    def run(self, jobs: Sequence[Job]) -> list[Rollout]:
        return [chain[0] for chain in self.run_chain(jobs, lambda i, rollout: None)]

    def run_chain(self, jobs: Sequence[Job], follow: Follow) -> list[list[Rollout]]:
        """As ``LocalSampler.run_chain``: free actors take the next job; ``follow(i, rollout)``
        may queue chain ``i``'s next job as soon as its rollout is in."""
        ray = _ray()
        chains: list[list[Rollout]] = [[] for _ in jobs]
        queue: collections.deque[tuple[int, Job]] = collections.deque(enumerate(jobs))
        stored: dict[int, Any] = {}  # id(params) -> object ref: each dict is put once per call
        busy: dict[Any, tuple[int, int]] = {}  # future -> (actor, chain)
        free = list(range(len(self._actors)))

        def dispatch(w: int) -> None:
            i, job = queue.popleft()
            key = id(job.params)
            if key not in stored:
                stored[key] = ray.put(job.params)
            future = self._actors[w].run.remote({0: stored[key]}, [(_strip(job), 0)])
            busy[future] = (w, i)

        while queue or busy:
            while free and queue:
                dispatch(free.pop(0))
            ready, _ = ray.wait(list(busy), num_returns=1, timeout=self.timeout_s)
            if not ready:
                w = next(iter(busy.values()))[0]
                self.close()
                raise MetarobotError(f"ray sampling actor {w} did not answer within {self.timeout_s:.0f} s")
            future = ready[0]
            w, i = busy.pop(future)
            (rollout,) = self._get(future, w)
            chains[i].append(rollout)
            nxt = follow(i, rollout)
            if nxt is not None:
                queue.appendleft((i, nxt))
            free.append(w)
        return chains

    def _get(self, future: Any, w: int) -> Any:
        ray = _ray()
        try:
            return ray.get(future)
        except ray.exceptions.RayActorError:
            self.close()
            raise MetarobotError(f"ray sampling actor {w} died and could not be restarted") from None
        except ray.exceptions.RayTaskError as exc:
            self.close()
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise MetarobotError(f"ray sampling actor {w} failed: {type(cause).__name__}: {cause}") from None

    def close(self) -> None:
        ray = _ray()
        for actor in self._actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> RaySampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _strip(job: Job) -> Job:
    import dataclasses

    return dataclasses.replace(job, params={})
