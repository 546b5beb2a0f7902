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

import csv
import json
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from metarobot.config import MetaConfig
from metarobot.errors import MetarobotError
from metarobot.meta import MetaLearner, read_checkpoint

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


#: settings a resumed run may change: how long it runs, and where
RESUMABLE = ("iterations", "workers", "device", "sampler", "ray_address")


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived; the last finished iteration is checkpointed."""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Run:
    """Creates or resumes the run in ``out`` and trains it to ``config.iterations``."""

    def __init__(
        self, out: Path, config: MetaConfig, resume: bool = False, given: dict[str, Any] | None = None
    ) -> None:
        """``given``: the settings the user asked for explicitly (on ``resume``, those of
        ``RESUMABLE`` replace the checkpoint's; without it, the config's are taken)."""
        self.out = Path(out)
        self.config = config
        self.resume = resume
        self.given = given
        self.last = self.out / "checkpoints" / "last.pt"

    def prepare(self) -> MetaLearner:
        out = self.out
        if out.exists() and not out.is_dir():
            raise MetarobotError(f"--out {out} exists and is not a directory")
        if self.resume:
            if not self.last.exists():
                raise MetarobotError(f"nothing to resume in {out} (no checkpoints/last.pt)")
            data = read_checkpoint(self.last)
            stored = MetaConfig.from_dict(data["config"])
            # what may change on resume: how long, and where it runs
            asked = self.config.to_dict() if self.given is None else self.given
            keep = {k: v for k, v in asked.items() if k in RESUMABLE}
            self.config = stored.replace(**keep)
            learner = MetaLearner.load(self.last, **keep)
            if learner.iteration >= self.config.iterations:
                raise MetarobotError(
                    f"run in {out} already finished {learner.iteration} iterations; raise --iterations to continue it"
                )
            return learner
        if out.exists() and any(out.iterdir()):
            if (out / "config.yaml").exists() or (out / "checkpoints").exists():
                raise MetarobotError(f"--out {out} already holds a run; use --resume or another --out")
            raise MetarobotError(f"--out {out} is not empty; choose an empty or new directory")
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        except OSError as exc:
            raise MetarobotError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
        return MetaLearner(self.config)  # the class registered for config.algo

    def _csv_row(self, row: dict[str, Any]) -> None:
        path = self.out / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def train(self, progress: bool = True, on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        learner = self.prepare()
        from stable_baselines3.common.logger import configure

        logger = configure(str(self.out / "tb"), ["tensorboard"])
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM,)}
        signal.signal(signal.SIGTERM, _raise_interrupt)
        bar = None
        try:
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
                learner.save(self.last)  # atomic; a crash after this loses nothing
                self._csv_row(row)
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
            learner.save(self.out / "meta_policy.pt")
            learner.save_sb3(self.out / "meta_policy.zip")
            summary = self.summarize(learner)
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
            return summary
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted after iteration {learner.iteration}; checkpoint {self.last}; "
                f"continue with --resume --out {self.out}"
            ) from None
        finally:
            if bar is not None:
                bar.close()
            logger.close()
            for s, h in previous.items():
                signal.signal(s, h)
            learner.close()

    def summarize(self, learner: MetaLearner) -> dict[str, Any]:
        cfg = learner.config
        result: dict[str, Any] = {
            "family": cfg.family,
            "algo": cfg.algo,
            "iterations": learner.iteration,
            "env_steps": learner.env_steps,
            "wall_s": learner.history[-1].get("wall_s") if learner.history else None,
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
        return result
