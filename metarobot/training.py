"""A meta-training *run*: a run directory, progress, checkpoints, resume, and the summary.

Run directory layout::

    OUT/config.yaml           resolved settings of the run
    OUT/metrics.csv           one row per iteration
    OUT/tb/                   TensorBoard logs (SB3's logger)
    OUT/checkpoints/last.pt   written atomically after every iteration
    OUT/meta_policy.pt        the final meta-policy (same checkpoint format)
    OUT/meta_policy.zip       the final meta-policy as an SB3 PPO zip
    OUT/summary.json          pre/post-adaptation success on held-out test tasks
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
import yaml

from metarobot.config import MetaConfig
from metarobot.errors import MetarobotError
from metarobot.meta import MetaLearner, read_checkpoint
from metarobot.runio import LOCK_NAME, RunLock, WriteError, atomic_save, atomic_write_json, atomic_write_text, write_csv
from metarobot.validation import DivergedError, check_run_memory, load_yaml_mapping

METRIC_FIELDS = [
    "iteration",
    "env_steps",
    "wall_s",
    "pre_return",
    "pre_success",
    "post_return",
    "post_success",
    "physics_errors",
    "policy_loss",
    "value_loss",
    "entropy",
    "clip_fraction",
]


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived; the last finished iteration is checkpointed."""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (they are delivered right after).

    Held at Python level, not with the thread's signal mask: a signal sent to the process may
    reach any of its threads (the sampler's, tqdm's), and CPython then runs the handler in the
    main thread wherever it was -- a blocked main-thread mask let a Ctrl-C land between the
    checkpoint and the iteration count the resume hint names (seen under load)."""
    if threading.current_thread() is not threading.main_thread():  # handlers live in the main thread
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    old = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


#: what ``--resume`` may change: how long the run goes on and where it runs
RESUMABLE = ("iterations", "workers", "device", "sampler", "ray_address")


class Run:
    """Creates or resumes the run in ``out`` and trains it to ``config.iterations``.

    ``given``: the settings the user set explicitly (command line or YAML; None: all of
    ``config``). On ``--resume`` any of them other than ``RESUMABLE`` that contradicts the run's
    own settings is refused, and ``RESUMABLE`` ones not given keep the run's values.
    The run directory is locked while the run is open, and every file in it is written
    atomically, so a crash at any instant leaves a directory that ``--resume`` continues.
    """

    def __init__(self, out: Path, config: MetaConfig, resume: bool = False, given: Iterable[str] | None = None) -> None:
        self.out = Path(out)
        self.config = config
        self.requested = config  # as asked for; on --resume, ``config`` becomes the run's own
        self.resume = resume
        # None (the Python API): the whole config is what the caller asks for
        self.given = set(config.to_dict()) if given is None else set(given)
        self.last = self.out / "checkpoints" / "last.pt"
        self._lock: RunLock | None = None
        self._saved_iteration = 0

    # -- opening the run directory ------------------------------------------------------------
    def prepare(self) -> MetaLearner:
        out = self.out
        if out.exists() and not out.is_dir():
            raise MetarobotError(f"--out {out} exists and is not a directory")
        if self.resume and not out.is_dir():
            raise MetarobotError(f"nothing to resume in {out} (no such directory)")
        learner: MetaLearner | None = None
        if not self.resume:
            self._check_fresh()  # before the lock: a refused --out gets no lock file either
            self._check_resources()
            # the learner before --out is made: a setting it refuses (a missing --init-from
            # file, a --fallback that reads a context) leaves nothing behind
            learner = MetaLearner(self.config)
        try:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MetarobotError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
            if self.resume:
                self._prepare_resume(check_only=True)  # what can refuse, read-only: a refused --resume changes nothing
                self._lock = RunLock(out)
                learner = self._prepare_resume()  # again under the lock, and now for real
                assert learner is not None
                return learner
            self._lock = RunLock(out)
            self._check_fresh()  # again under the lock: two fresh starts on one --out race otherwise
            atomic_write_text(out / "config.yaml", yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            assert learner is not None
            return learner
        except BaseException:
            if learner is not None:
                learner.close()
            raise

    def _check_fresh(self) -> None:
        out = self.out
        if not out.is_dir():
            return
        entries = [p for p in out.iterdir() if p.name != LOCK_NAME]
        if entries:
            if (out / "config.yaml").exists() or (out / "checkpoints").exists():
                raise MetarobotError(f"--out {out} already holds a run; use --resume or another --out")
            raise MetarobotError(f"--out {out} is not empty; choose an empty or new directory")

    def _resumed_config(self, stored: dict[str, Any]) -> MetaConfig:
        """The run's own settings, with only ``RESUMABLE`` ones taken from this invocation."""
        mine = self.requested.to_dict()
        theirs = MetaConfig.from_dict({**stored, "device": "cpu"}).to_dict()
        clash = [k for k in sorted(self.given) if k not in RESUMABLE and k in theirs and mine.get(k) != theirs[k]]
        if clash:
            k = clash[0]
            raise MetarobotError(
                f"--resume: {k.replace('_', '-')} {mine[k]!r} contradicts the run in {self.out} "
                f"({theirs[k]!r}); leave it out to continue the run, or start a new --out"
            )
        # how long and where: this invocation's if it says so, else the run's own
        return MetaConfig.from_dict({**stored, **{k: mine[k] for k in RESUMABLE if k in self.given}})

    def _prepare_resume(self, check_only: bool = False) -> MetaLearner | None:
        out = self.out
        if self.last.exists():
            data = read_checkpoint(self.last)
            self.config = self._resumed_config(data["config"])
            if data["iteration"] > self.config.iterations or (
                data["iteration"] == self.config.iterations and (out / "summary.json").exists()
            ):
                raise MetarobotError(
                    f"run in {out} already finished {data['iteration']} iterations; raise --iterations to continue it"
                )
            self._check_resources()
            if check_only:
                return None
            learner = MetaLearner.load(self.last, **{k: getattr(self.config, k) for k in RESUMABLE})
            self._saved_iteration = learner.iteration
            # the table follows the checkpoint: a row lost to a crash after the checkpoint comes back
            write_csv(out / "metrics.csv", METRIC_FIELDS, learner.history)
            return learner
        if (out / "config.yaml").exists():  # stopped before its first checkpoint: start it again
            stored = load_yaml_mapping(out / "config.yaml", "run settings")
            self.config = self._resumed_config(stored)
            self._check_resources()
            if check_only:
                return None
            atomic_write_text(out / "config.yaml", yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            (out / "metrics.csv").unlink(missing_ok=True)
            return MetaLearner(self.config)
        raise MetarobotError(f"nothing to resume in {out} (no checkpoints/last.pt)")

    def _check_resources(self) -> None:
        """Memory of one iteration's rollouts against what the machine has, before allocating."""
        from metarobot.registry import get_family

        family = get_family(self.config.family)
        obs_space, act_space = family.observation_space_example()
        check_run_memory(
            self.config,
            family.episode_steps,
            int(np.prod(obs_space.shape)),
            int(np.prod(act_space.shape)),
        )

    # -- training -----------------------------------------------------------------------------
    def _hint(self) -> str:
        if not (self.out / "config.yaml").exists() or self._lock is None:
            return "interrupted before the run started"
        if self._saved_iteration == 0 and not self.last.exists():
            return f"interrupted before the first iteration finished; start it again with --resume --out {self.out}"
        return (
            f"interrupted after iteration {self._saved_iteration}; checkpoint {self.last}; "
            f"continue with --resume --out {self.out}"
        )

    def train(
        self,
        progress: bool = True,
        on_row: Callable[[dict[str, Any]], None] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Train to ``config.iterations`` and write the final files; ``on_start`` runs once the
        run directory is checked and locked, ``on_row`` after every iteration."""
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        signal.signal(signal.SIGTERM, _raise_interrupt)
        learner: MetaLearner | None = None
        logger = None
        bar = None
        try:
            learner = self.prepare()
            if on_start is not None:
                on_start()
            from stable_baselines3.common.logger import configure

            logger = configure(str(self.out / "tb"), ["tensorboard"])
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=self.config.iterations,
                    initial=learner.iteration,
                    unit="it",
                    desc=f"{self.config.algo} {self.config.family}",
                    dynamic_ncols=True,
                )
            start = time.perf_counter()
            base_wall = float(learner.history[-1].get("wall_s", 0.0)) if learner.history else 0.0
            while learner.iteration < self.config.iterations:
                row = learner.step()
                row["wall_s"] = round(base_wall + time.perf_counter() - start, 2)
                with _signals_deferred():  # Ctrl-C/SIGTERM land after both files, never between them
                    # a crash after this loses nothing: --resume rewrites the CSV from the checkpoint's history
                    atomic_save(self.last, functools.partial(torch.save, learner.checkpoint()))
                    self._saved_iteration = learner.iteration
                    write_csv(self.out / "metrics.csv", METRIC_FIELDS, learner.history)
                for key, value in row.items():
                    if isinstance(value, int | float) and key != "iteration" and math.isfinite(value):
                        logger.record(f"meta/{key}", value)
                logger.dump(step=learner.iteration)
                if on_row is not None:
                    on_row(row)
                if bar is not None:
                    post = (
                        ""
                        if math.isnan(row["post_success"])
                        else (f" post R {row['post_return']:.1f} S {row['post_success']:.0%}")
                    )
                    bar.set_postfix_str(
                        f"steps {row['env_steps']:,} pre R {row['pre_return']:.1f} S {row['pre_success']:.0%}{post}"
                    )
                    bar.update(1)
            if bar is not None:
                bar.close()
                bar = None
            atomic_save(self.out / "meta_policy.pt", functools.partial(torch.save, learner.checkpoint()))
            atomic_save(self.out / "meta_policy.zip", learner.save_sb3)
            summary = self.summarize(learner)
            atomic_write_json(self.out / "summary.json", summary)  # last: its presence means "finished"
            return summary
        except KeyboardInterrupt:
            # a second Ctrl-C must not cut the cleanup short and lose the resume hint
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise Interrupted(self._hint()) from None
        except WriteError as exc:
            raise WriteError(f"{exc}; once there is room, continue with --resume --out {self.out}") from None
        except DivergedError as exc:
            kept = (
                f"last good checkpoint {self.last} (iteration {self._saved_iteration})"
                if self.last.exists()
                else "no checkpoint was written"
            )
            raise DivergedError(f"{exc}; {kept}") from None
        finally:
            if bar is not None:
                bar.close()
            if logger is not None:
                logger.close()
            if learner is not None:
                learner.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            for s, h in previous.items():
                signal.signal(s, h)

    def summarize(self, learner: MetaLearner) -> dict[str, Any]:
        cfg = learner.config
        result: dict[str, Any] = {
            "family": cfg.family,
            "algo": cfg.algo,
            "iterations": learner.iteration,
            "env_steps": learner.env_steps,
            "wall_s": learner.history[-1].get("wall_s") if learner.history else 0.0,
        }
        if cfg.eval_tasks > 0:
            test = learner.test("test", cfg.eval_tasks, seed=cfg.seed + 1)
            result["heldout_test"] = {
                "tasks": cfg.eval_tasks,
                "inner_steps": cfg.inner_steps,
                "episodes_per_update": cfg.episodes_per_update,
                "pre_success": test["success"][0],
                "post_success": test["success"][-1],
                "pre_return": test["return"][0],
                "post_return": test["return"][-1],
            }
            if learner.fallback is not None:  # its k = 0 episodes are the fallback's
                result["heldout_test"]["fallback"] = learner.fallback.config.algo
        return result
