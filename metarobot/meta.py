"""The meta-learner: MAML (and FOMAML, Reptile, and the multitask PPO baseline) around SB3 PPO.

It owns an SB3 ``PPO`` whose ``ActorCriticPolicy`` (``MaskedActorCriticPolicy``) holds the
meta-parameters. One iteration:

1. sample ``meta_batch`` training tasks;
2. for k = 0..inner_steps-1: sample ``episodes_per_update`` episodes of every task with its
   current parameters (in parallel workers), then apply the inner update (adaptation.py);
3. sample the post-adaptation episodes;
4. outer update: ``maml``/``fomaml`` -- PPO's clipped objective on the post-adaptation episodes
   under the adapted parameters, recomputed from the meta-parameters and back-propagated
   through the inner steps, ``outer_epochs`` Adam steps; ``reptile`` -- move the
   meta-parameters ``reptile_step`` of the way to the mean adapted parameters; ``multitask``
   -- plain SB3 PPO (``PPO.train``) on all of the iteration's episodes, no adaptation.

Every job's seed derives from ``(seed, iteration, phase, task)``, so a resumed run repeats an
uninterrupted one exactly (CPU), whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from metarobot import adaptation as ad
from metarobot.config import MetaConfig
from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.policies import MaskedActorCriticPolicy
from metarobot.registry import get_family
from metarobot.sampling import Job, PolicySpec, Rollout, Sampler
from metarobot.validation import check_inner_states, divergence_hook, validate_checkpoint

CHECKPOINT_FORMAT = "metarobot-checkpoint"
CHECKPOINT_VERSION = 1


def job_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclasses.dataclass
class AdaptationResult:
    """Per-update metrics of adapting to one task (k = 0 is before any update)."""

    task: Task
    success: list[float]
    returns: list[float]
    env_steps: int
    final_state: dict[str, torch.Tensor]


class MetaLearner:
    """Meta-trains a policy over a task family. ``MAML(family="cartpole").train(...)``."""

    def __init__(self, config: MetaConfig | None = None, **settings: Any) -> None:
        self.config = (config or MetaConfig()).replace(**settings) if settings else (config or MetaConfig())
        cfg = self.config
        self.family = get_family(cfg.family)
        self.episode_steps = self.family.episode_steps
        self.spec = PolicySpec(cfg.family, cfg.policy_kwargs(self.family.action_mask_slice))
        torch.manual_seed(cfg.seed)
        first = self.family.heldout_tasks("train", 1)[0]
        self._vec_env = DummyVecEnv([lambda: self.family.make_env(first)])
        # batch size: a factor of the construction-time buffer; set per update
        self.ppo = self._make_ppo(batch_size=self.episode_steps)
        self.policy: MaskedActorCriticPolicy = self.ppo.policy  # the meta-parameters
        if cfg.algo == "multitask":
            self.optimizer = self.ppo.policy.optimizer
        else:
            self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.outer_lr)
        self._inner_ppo: PPO | None = None
        self.rng = np.random.default_rng(cfg.seed)
        self.iteration = 0
        self.env_steps = 0
        self.history: list[dict[str, Any]] = []
        self._sampler: Sampler | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def sampler(self) -> Sampler:
        if self._sampler is None:
            self._sampler = Sampler(self.spec, workers=self.config.workers)
        return self._sampler

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
        self._vec_env.close()

    def __enter__(self) -> MetaLearner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def meta_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone().cpu() for k, v in self.policy.state_dict().items()}

    def _make_ppo(self, batch_size: int) -> PPO:
        """An SB3 PPO of the run's settings and policy architecture, logging nowhere."""
        cfg = self.config
        ppo = PPO(
            MaskedActorCriticPolicy,
            self._vec_env,
            learning_rate=cfg.ppo_lr,
            n_steps=self.episode_steps,
            batch_size=batch_size,
            n_epochs=cfg.ppo_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            seed=cfg.seed,
            device=cfg.device,
            policy_kwargs=self.spec.policy_kwargs,
            verbose=0,
        )
        ppo.set_logger(configure(None, [""]))
        return ppo

    def inner_ppo(self) -> PPO:
        """A second PPO whose policy is a scratch copy for PPO-style inner loops."""
        if self._inner_ppo is None:
            self._inner_ppo = self._make_ppo(batch_size=self.ppo.batch_size)
        return self._inner_ppo

    def _jobs(
        self,
        tasks: Sequence[Task],
        states: Sequence[dict[str, torch.Tensor]],
        phase: int,
        n_episodes: int,
        salt: int = 0,
    ) -> list[Job]:
        return [
            Job(
                task,
                state,
                n_episodes,
                self.episode_steps,
                job_seed(self.config.seed, salt, self.iteration, phase, i),
                self.config.gamma,
            )
            for i, (task, state) in enumerate(zip(tasks, states))
        ]

    def _batch(self, rollout: Rollout) -> ad.Batch:
        return ad.Batch.from_rollout(
            rollout, self.policy, self.config.gamma, self.config.gae_lambda, self.config.device
        )

    # -- the inner loop (training and test time) --------------------------------------------
    def inner_update(
        self, state: dict[str, torch.Tensor], rollout: Rollout, algo: str | None = None, seed: int = 0
    ) -> dict[str, torch.Tensor]:
        """One adaptation update of ``state`` from ``rollout`` -- the meta-learner's own inner
        loop (``algo`` defaults to the one it was trained with)."""
        cfg = self.config
        algo = algo or cfg.algo
        if algo in ("maml", "fomaml"):
            names = dict(self.policy.named_parameters())
            params = {k: v.detach().to(cfg.device).requires_grad_(True) for k, v in state.items() if k in names}
            new = ad.inner_step(self.policy, params, self._batch(rollout), cfg.inner_lr, create_graph=False)
            out = dict(state)
            out.update({k: v.detach().cpu() for k, v in new.items()})
            return out
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return ad.ppo_update(self.inner_ppo(), rollout, state)

    def adapt_many(
        self,
        tasks: Sequence[Task],
        steps: int | None = None,
        episodes: int | None = None,
        state: dict[str, torch.Tensor] | None = None,
        algo: str | None = None,
        seed: int = 0,
        progress: Callable[[], None] | None = None,
    ) -> list[AdaptationResult]:
        """Adapt ``state`` (default: the meta-parameters) to each task with the inner loop:
        success and return at k = 0..steps, each update from ``episodes`` episodes."""
        steps = self.config.inner_steps if steps is None else steps
        episodes = episodes or self.config.episodes_per_update
        if steps < 0 or episodes < 1:
            raise MetarobotError(f"steps must be >= 0 and episodes >= 1, got {steps} and {episodes}")
        start = state if state is not None else self.meta_state()
        states = [start] * len(tasks)
        results = [AdaptationResult(t, [], [], 0, start) for t in tasks]
        for k in range(steps + 1):
            jobs = [
                Job(t, s, episodes, self.episode_steps, job_seed(seed, 7_777, k, i), self.config.gamma)
                for i, (t, s) in enumerate(zip(tasks, states))
            ]
            rollouts = self.sampler().run(jobs)
            for i, (res, ro) in enumerate(zip(results, rollouts)):
                res.success.append(ro.success_rate)
                res.returns.append(ro.mean_return)
                res.env_steps += ro.env_steps
                if k < steps:
                    states[i] = self.inner_update(states[i], ro, algo=algo, seed=job_seed(seed, 8_888, k, i))
            check_inner_states(states, None, k)
            if progress is not None:
                progress()
        for res, s in zip(results, states):
            res.final_state = s
        return results

    def adapt(
        self, task: Task, steps: int | None = None, episodes: int | None = None, seed: int = 0
    ) -> AdaptationResult:
        return self.adapt_many([task], steps, episodes, seed=seed)[0]

    def test(
        self,
        split: str = "test",
        n_tasks: int = 10,
        steps: int | None = None,
        episodes: int | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """Pre- and post-adaptation success and return on ``n_tasks`` held-out tasks."""
        tasks = self.family.heldout_tasks(split, n_tasks)
        res = self.adapt_many(tasks, steps, episodes, seed=seed)
        k_max = len(res[0].success) - 1 if res else 0
        return {
            "split": split,
            "tasks": n_tasks,
            "success": [float(np.mean([r.success[k] for r in res])) for k in range(k_max + 1)],
            "return": [float(np.mean([r.returns[k] for r in res])) for k in range(k_max + 1)],
        }

    # -- one meta-iteration -----------------------------------------------------------------
    @divergence_hook
    def step(self) -> dict[str, Any]:
        """Run one meta-iteration; returns its metrics row."""
        cfg = self.config
        tasks = self.family.sample_tasks(cfg.meta_batch, "train", self.rng)
        meta = self.meta_state()
        sampler = self.sampler()
        states = [meta] * len(tasks)
        phases: list[list[Rollout]] = []
        for k in range(cfg.inner_steps + 1):
            rollouts = sampler.run(self._jobs(tasks, states, k, cfg.episodes_per_update))
            phases.append(rollouts)
            if k == cfg.inner_steps or cfg.algo == "multitask":
                continue
            if cfg.algo in ("maml", "fomaml"):
                states = [self.inner_update(s, ro) for s, ro in zip(states, rollouts)]
            else:  # reptile: SB3 PPO updates
                states = [
                    self.inner_update(s, ro, seed=job_seed(cfg.seed, self.iteration, k, i))
                    for i, (s, ro) in enumerate(zip(states, rollouts))
                ]
            check_inner_states(states, self.iteration + 1, k)
        stats = self._outer_update(phases, states, meta)
        steps = sum(ro.env_steps for ph in phases for ro in ph)
        self.env_steps += steps
        self.iteration += 1
        pre, post = phases[0], phases[-1]
        row = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "pre_return": float(np.mean([r.mean_return for r in pre])),
            "pre_success": float(np.mean([r.success_rate for r in pre])),
            "post_return": float(np.mean([r.mean_return for r in post])) if cfg.algo != "multitask" else float("nan"),
            "post_success": float(np.mean([r.success_rate for r in post])) if cfg.algo != "multitask" else float("nan"),
            "physics_errors": sum(r.physics_errors for ph in phases for r in ph),
            **stats,
        }
        self.history.append(row)
        return row

    def _outer_update(
        self, phases: list[list[Rollout]], adapted: list[dict[str, torch.Tensor]], meta: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        cfg = self.config
        np.random.seed(job_seed(cfg.seed, 99, self.iteration) % 2**32)
        torch.manual_seed(job_seed(cfg.seed, 98, self.iteration))
        if cfg.algo == "multitask":
            merged = _merge([ro for ph in phases for ro in ph])
            self.ppo.batch_size = max(64, merged.rewards.size // 4)
            self.ppo.rollout_buffer = ad.make_buffer(merged, self.policy, cfg.gamma, cfg.gae_lambda, cfg.device)
            self.ppo._current_progress_remaining = 1.0
            self.ppo.train()
            return {}
        if cfg.algo == "reptile":
            with torch.no_grad():
                names = dict(self.policy.named_parameters())
                for name, param in names.items():
                    target = torch.stack([s[name] for s in adapted]).mean(0).to(param.device)
                    param.add_(cfg.reptile_step * (target - param))
            return {}
        # maml / fomaml: PPO objective on post-adaptation data through the inner steps
        pre_batches = [[self._batch(ph[i]) for ph in phases[:-1]] for i in range(cfg.meta_batch)]
        post_batches = [self._batch(ro) for ro in phases[-1]]
        first_order = cfg.algo == "fomaml"
        totals: dict[str, float] = {}
        groups = max(1, min(cfg.outer_minibatches, cfg.meta_batch))
        order_rng = np.random.default_rng(job_seed(cfg.seed, 97, self.iteration))
        updates = 0
        for _ in range(cfg.outer_epochs):
            for group in np.array_split(order_rng.permutation(cfg.meta_batch), groups):
                self.optimizer.zero_grad()
                for i in group:
                    params = ad.trainable_params(self.policy)
                    for batch in pre_batches[i]:
                        params = ad.inner_step(self.policy, params, batch, cfg.inner_lr, first_order=first_order)
                    loss, stats = ad.ppo_surrogate(
                        self.policy, params, post_batches[i], cfg.clip_range, cfg.vf_coef, cfg.ent_coef
                    )
                    (loss / len(group)).backward()
                    for k, v in stats.items():
                        totals[k] = totals.get(k, 0.0) + v / (cfg.meta_batch * cfg.outer_epochs)
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 0.5)
                self.optimizer.step()
                updates += 1
        totals["outer_updates"] = float(updates)
        return totals

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "family": self.config.family,
            "config": self.config.to_dict(),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "policy_state": self.meta_state(),
            "optimizer_state": self.optimizer.state_dict(),
            "rng_state": _rng_to_plain(self.rng.bit_generator.state),
            "history": self.history,
        }

    def save(self, path: Path | str) -> Path:
        """Write a checkpoint atomically (temp file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(self.checkpoint(), tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | str, **overrides: Any) -> MetaLearner:
        """A learner restored from a checkpoint (``overrides``: e.g. ``workers``, ``iterations``)."""
        data = read_checkpoint(path)
        cfg = (
            MetaConfig.from_dict(data["config"]).replace(**overrides)
            if overrides
            else MetaConfig.from_dict(data["config"])
        )
        learner = cls(cfg)
        try:
            learner.policy.load_state_dict(data["policy_state"])
            learner.optimizer.load_state_dict(data["optimizer_state"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise MetarobotError(
                f"checkpoint {path} does not match its own settings: {str(exc).splitlines()[0]}"
            ) from None
        learner.rng.bit_generator.state = data["rng_state"]
        learner.iteration = int(data["iteration"])
        learner.env_steps = int(data["env_steps"])
        learner.history = list(data["history"])
        return learner

    # -- SB3 export -------------------------------------------------------------------------
    def save_sb3(self, path: Path | str, state: dict[str, torch.Tensor] | None = None) -> Path:
        """Save ``state`` (default: the meta-parameters) as an SB3 PPO zip (``PPO.load`` opens it)."""
        path = Path(path)
        model = self.inner_ppo()
        model.policy.load_state_dict(state if state is not None else self.meta_state())
        model.save(str(path))
        return path if path.suffix == ".zip" else path.with_suffix(".zip")

    def train(
        self, iterations: int | None = None, callback: Callable[[dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Run ``iterations`` more meta-iterations (default: the config's)."""
        for _ in range(iterations if iterations is not None else self.config.iterations):
            row = self.step()
            if callback is not None:
                callback(row)
        return self.history


class MAML(MetaLearner):
    """Second-order MAML around SB3 PPO: ``MAML(family="cartpole").train(iterations=20)``."""

    def __init__(self, config: MetaConfig | None = None, **settings: Any) -> None:
        settings.setdefault("algo", "maml")
        super().__init__(config, **settings)


def _merge(rollouts: list[Rollout]) -> Rollout:
    """Rollouts of equal length side by side (as more env slots)."""
    cat = lambda name: np.concatenate([getattr(r, name) for r in rollouts], axis=1)  # noqa: E731
    return Rollout(
        cat("observations"),
        cat("actions"),
        cat("rewards"),
        cat("episode_starts"),
        cat("values"),
        cat("log_probs"),
        np.concatenate([r.last_values for r in rollouts]),
        np.concatenate([r.last_dones for r in rollouts]),
        [x for r in rollouts for x in r.episode_returns],
        [x for r in rollouts for x in r.episode_successes],
        sum(r.physics_errors for r in rollouts),
    )


def _rng_to_plain(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_rng_to_plain(v) if isinstance(v, dict) else v) for k, v in state.items()}


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load and check a checkpoint file; a missing, corrupt or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise MetarobotError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unpickling failure means "corrupt"
        raise MetarobotError(f"checkpoint {path} is corrupt or not a metarobot checkpoint") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise MetarobotError(f"{path} is not a metarobot checkpoint")
    if not isinstance(data.get("version", 0), int) or data.get("version", 0) > CHECKPOINT_VERSION:
        raise MetarobotError(f"checkpoint {path} was written by a newer metarobot (format {data['version']})")
    for key in ("config", "policy_state", "iteration"):
        if key not in data:
            raise MetarobotError(f"checkpoint {path} lacks {key!r}")
    validate_checkpoint(data, path)  # types and finiteness of every field
    return data
