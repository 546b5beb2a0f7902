"""The meta-learner base class: what every algorithm shares.

``MetaLearner`` owns an SB3 ``PPO`` (``BufferPPO``) whose ``ActorCriticPolicy``
(``MaskedActorCriticPolicy``) holds the meta-parameters, a sampler (injected; by default the
local worker pool), checkpoints and the adaptation protocol. One iteration:

1. sample ``meta_batch`` training tasks;
2. for k = 0..inner_steps-1: sample ``episodes_per_update`` episodes of every task with its
   current parameters, then apply the algorithm's ``inner_update`` (its adaptation);
3. sample the post-adaptation episodes;
4. the algorithm's ``outer_update`` on all of the iteration's episodes.

What differs between algorithms -- how they adapt, their outer update, their optimiser and any
extra state their checkpoints hold -- lives in one subclass each (``metarobot.algorithms``):
``MAML``, ``FOMAML``, ``Reptile``, ``Multitask``. ``MetaLearner(algo="reptile")`` builds the
registered class for ``algo``; ``MetaLearner.load(path)`` the class a checkpoint was trained with.

Every job's seed derives from ``(seed, iteration, phase, task)``, so a resumed run repeats an
uninterrupted one exactly (CPU), whatever the number of workers or the sampler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from metarobot import adaptation as ad
from metarobot.config import MetaConfig, default_algo
from metarobot.errors import MetarobotError
from metarobot.family import Task, TaskFamily
from metarobot.policies import MaskedActorCriticPolicy
from metarobot.ppo import BufferPPO
from metarobot.registry import get_family
from metarobot.sampling import Job, PolicySpec, Rollout, Sampler, make_sampler, run_chain
from metarobot.validation import check_inner_states, divergence_hook, validate_checkpoint
from metarobot.wrappers import AppendContext

CHECKPOINT_FORMAT = "metarobot-checkpoint"
#: where an adaptation state keeps the sums of action-identification statistics of the robot's
#: episodes so far (``MetaConfig.identify_actions``; ``metarobot.online.ActionStream``)
ACTION_SUMS = "actions.sums"
#: 2: adds ``algo_state`` (an algorithm's extra state); version-1 files load with it empty
CHECKPOINT_VERSION = 2
#: an adaptation state that holds this key is the fallback policy's (``MetaLearner.fallback``)
FALLBACK_KEY = "fallback.chosen"


def job_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@contextlib.contextmanager
def global_rng_kept() -> Iterator[None]:
    """Leave Python's, numpy's and torch's global random generators as they were: for code
    that reseeds them (SB3's ``set_random_seed``) but must not change what runs after it."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@dataclasses.dataclass
class AdaptationResult:
    """Per-update metrics of adapting to one task (k = 0 is before any update)."""

    task: Task
    success: list[float]
    returns: list[float]
    env_steps: int
    final_state: dict[str, torch.Tensor]
    #: which policy ran the episodes of each k: the algorithm's name, or "fallback"
    ran: list[str] = dataclasses.field(default_factory=list)


class MetaLearner:
    """Meta-trains a policy over a task family: ``MAML(family="cartpole").train(iterations=20)``.

    ``MetaLearner(**settings)`` builds the class registered for ``settings["algo"]``; a subclass
    runs its own algorithm only. ``settings`` are resolved like the CLI's
    (``MetaConfig.resolve``: the family's and the algorithm's defaults apply); an explicit
    ``config`` is taken as it is. ``sampler_instance``: where episodes are sampled (default:
    built from the config's ``sampler`` setting, ``LocalSampler`` or ``RaySampler``)."""

    #: the name ``--algo`` knows this algorithm by (also ``config.algo``)
    name: ClassVar[str] = ""
    #: settings this algorithm changes from ``MetaConfig``'s defaults
    defaults: ClassVar[dict[str, Any]] = {}
    #: whether the inner loop runs during meta-training (multitask samples the same phases
    #: for an equal env-step budget, but never adapts)
    adapts_in_training: ClassVar[bool] = True
    #: whether adapting changes the policy's parameters (and so may need a safety check)
    updates_parameters: ClassVar[bool] = True
    #: whether adapting runs an update that a freshly initialised policy could run too
    #: (``evaluate``'s ``scratch`` baseline); rl2 adapts by memory alone
    has_update: ClassVar[bool] = True
    #: the fewest iterations a run may ask for (0: the untrained policy already acts, as
    #: identify's controller does, and a run of none ships it as it is)
    min_iterations: ClassVar[int] = 1

    def __new__(cls, config: MetaConfig | None = None, *args: Any, **settings: Any) -> MetaLearner:
        settings.pop("restoring", None)
        algo = settings.get("algo") or (
            config.algo if config is not None else cls.name or default_algo(settings.get("family", MetaConfig.family))
        )
        if cls.name:
            if algo != cls.name:
                raise MetarobotError(f"{cls.__name__} runs algo {cls.name!r}, not {algo!r}")
            return super().__new__(cls)
        from metarobot.algorithms import get_algorithm

        return super().__new__(get_algorithm(str(algo)))

    def __init__(
        self,
        config: MetaConfig | None = None,
        *,
        sampler_instance: Sampler | None = None,
        restoring: bool = False,
        **settings: Any,
    ) -> None:
        #: True while ``load`` rebuilds a learner whose parameters come from a checkpoint
        self.restoring = restoring
        if config is None:
            settings.setdefault("algo", self.name)
            config = MetaConfig.resolve(settings)
        elif settings:
            config = config.replace(**settings)
        self.config = config
        cfg = self.config
        self.family = get_family(cfg.family)
        self.episode_steps = self.family.episode_steps
        self.spec = self._policy_spec()
        torch.manual_seed(cfg.seed)
        first = self.family.heldout_tasks("train", 1)[0]
        # SB3's PPO reads the spaces off an env; it never steps this one (workers sample)
        self._vec_env = DummyVecEnv([lambda: AppendContext(self.family.make_env(first), self.context_dim)])
        # batch size: a factor of the construction-time buffer; set per update
        self.ppo = self._make_ppo(batch_size=self.episode_steps)
        self.policy: MaskedActorCriticPolicy = cast(MaskedActorCriticPolicy, self.ppo.policy)  # the meta-parameters
        self.optimizer = self._make_optimizer()
        self._inner_ppo: BufferPPO | None = None
        self.rng = np.random.default_rng(cfg.seed)
        self.iteration = 0
        self.env_steps = 0
        self.history: list[dict[str, Any]] = []
        self._sampler = sampler_instance
        #: a context-free policy adaptation may run instead of this one (``set_fallback``)
        self.fallback: MetaLearner | None = None
        if cfg.init_from and not restoring:
            self._warm_start(Path(cfg.init_from))
        if cfg.fallback and not restoring:  # a restored learner takes the one its checkpoint carries
            from metarobot.policies.pretrained import checkpoint_ref

            fallback = checkpoint_ref(cfg.family, cfg.fallback)
            self.set_fallback(MetaLearner.load(fallback, workers=cfg.workers, device=cfg.device))

    def _warm_start(self, path: Path) -> None:
        """Meta-parameters from another checkpoint's policy (its optimiser state is not taken)."""
        data = read_checkpoint(path)
        try:
            self.policy.load_state_dict(data["policy_state"])
        except (RuntimeError, KeyError) as exc:
            raise MetarobotError(
                f"--init-from {path} holds a policy of another shape: {str(exc).splitlines()[0]}"
            ) from None

    # -- what an algorithm defines ----------------------------------------------------------
    @classmethod
    def check_family(cls, family: TaskFamily) -> None:
        """Refuse (``MetarobotError``) a family this algorithm cannot run on, before a run starts."""

    @property
    def context_dim(self) -> int:
        """Floats appended to the observation the policy sees (0: the plain observation)."""
        return 0

    def job_context(self, task: Task, state: dict[str, torch.Tensor]) -> np.ndarray | None:
        """The context vector a job of ``task`` under ``state`` appends to every observation."""
        return None

    def _policy_spec(self) -> PolicySpec:
        """What workers rebuild the policy from."""
        return PolicySpec(
            self.config.family, self.config.policy_kwargs(self.family.action_mask_slice), context_dim=self.context_dim
        )

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of the outer update (default: Adam of ``outer_lr`` on the policy)."""
        return torch.optim.Adam(self.policy.parameters(), lr=self.config.outer_lr)

    def inner_update(self, state: dict[str, torch.Tensor], rollout: Rollout, seed: int = 0) -> dict[str, torch.Tensor]:
        """One adaptation update of ``state`` from ``rollout`` of one task (the same routine
        during meta-training and at test time)."""
        raise NotImplementedError

    def outer_update(
        self, phases: list[list[Rollout]], adapted: list[dict[str, torch.Tensor]], meta: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        """Update the meta-parameters from one iteration's rollouts (``phases[k][task]``) and the
        adapted states; returns loss statistics for the metrics row."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """State beyond the policy and optimiser that a checkpoint must hold (e.g. learned step sizes)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""

    # -- plumbing ---------------------------------------------------------------------------
    def sampler(self) -> Sampler:
        """The sampler episodes come from (built from the config on first use unless injected)."""
        if self._sampler is None:
            self._sampler = make_sampler(self.config, self.spec)
        return self._sampler

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
        if self.fallback is not None:
            self.fallback.close()
        self._vec_env.close()

    def __enter__(self) -> MetaLearner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def meta_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone().cpu() for k, v in self.policy.state_dict().items()}

    def _make_ppo(self, batch_size: int, extra_kwargs: dict[str, Any] | None = None) -> BufferPPO:
        """An SB3 PPO of the run's settings and policy architecture (plus ``extra_kwargs`` of
        the policy), logging nowhere."""
        cfg = self.config
        ppo = BufferPPO(
            MaskedActorCriticPolicy,
            self._vec_env,
            n_steps=self.episode_steps,
            batch_size=batch_size,
            device=cfg.device,
            **cfg.sb3_ppo_kwargs(),
            policy_kwargs={**self.spec.policy_kwargs, **(extra_kwargs or {})},
            verbose=0,
        )
        ppo.set_logger(configure(None, [""]))
        return ppo

    def inner_ppo(self) -> BufferPPO:
        """A second PPO whose policy is a scratch copy for PPO-style inner loops."""
        if self._inner_ppo is None:
            # built on first use, at a moment the sampler's schedule decides: SB3's constructor
            # reseeds the global generators, which must not change what runs after it
            with global_rng_kept():
                self._inner_ppo = self._make_ppo(batch_size=self.ppo.batch_size)
        return self._inner_ppo

    def _jobs(
        self,
        tasks: Sequence[Task],
        states: Sequence[dict[str, torch.Tensor]],
        phase: int,
        n_episodes: int,
        salt: int = 0,
        index: int = 0,
    ) -> list[Job]:
        """Jobs of ``tasks`` (the first being task number ``index`` of the iteration)."""
        return [
            self.make_job(task, state, n_episodes, job_seed(self.config.seed, salt, self.iteration, phase, index + i))
            for i, (task, state) in enumerate(zip(tasks, states))
        ]

    def make_job(self, task: Task, state: dict[str, torch.Tensor], n_episodes: int, seed: int) -> Job:
        """A sampling job: ``n_episodes`` episodes of ``task`` under ``state`` (policy
        parameters, plus whatever the algorithm keeps there, e.g. an inferred context). With
        ``identify_actions``, the family's action identification runs in it, from the sums of
        statistics that ``state`` holds under ``ACTION_SUMS`` (none: nothing seen yet)."""
        actions = None
        if self.config.identify_actions:
            from metarobot.online import IdentifiedActions, action_identification_of

            prior = state.get(ACTION_SUMS)
            actions = IdentifiedActions(
                self.family.name,
                np.zeros(action_identification_of(self.family.name).stats_dim)
                if prior is None
                else prior.detach().numpy().astype(np.float64),
            )
        return Job(
            task,
            self.policy_part(state),
            n_episodes,
            self.episode_steps,
            seed,
            self.config.gamma,
            context=self.job_context(task, state),
            actions=actions,
        )

    def deployed_state(self, task: Task, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What an adaptation to ``task`` hands over (``save_sb3`` exports it)."""
        return state

    def policy_part(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The policy's own tensors of an adaptation state (the same dict when that is all it holds)."""
        if ACTION_SUMS not in state:
            return state
        return {k: v for k, v in state.items() if k != ACTION_SUMS}

    def _batch(self, rollout: Rollout) -> ad.Batch:
        return ad.Batch.from_rollout(
            rollout, self.policy, self.config.gamma, self.config.gae_lambda, self.config.device
        )

    # -- adaptation (training and test time) ------------------------------------------------
    def adapt_many(
        self,
        tasks: Sequence[Task],
        steps: int | None = None,
        episodes: int | None = None,
        state: dict[str, torch.Tensor] | None = None,
        seed: int = 0,
        progress: Callable[[], None] | None = None,
        update: bool = True,
        safe: bool | None = None,
        fallback: bool = True,
        same_seeds: bool = False,
    ) -> list[AdaptationResult]:
        """Adapt ``state`` (default: the meta-parameters) to each task with this algorithm's
        inner loop: success and return at k = 0..steps, each update from ``episodes`` episodes.

        ``update=False`` runs the same episodes without ever updating (a baseline used as it
        is). ``safe`` (default: the config's ``safe_adaptation``) keeps an update only if the
        episodes run with it returned at least as much, on average, as those of the state it
        came from; a rejected update is retried at half the step (the parameters halfway
        between the kept state and the rejected one: a backtracking line search), and the
        state handed over is the last one kept -- so a test-time update never leaves a policy
        worse than its own episodes showed it. Algorithms whose updates cannot hurt the
        parameters (``updates_parameters = False``) skip the check.

        A context method whose config has ``carry_context = False`` gathers no evidence across
        episodes: every step runs the start state, as with ``update=False``, and that is the
        state handed over (identified actions' sums are still kept).

        With a ``fallback`` policy set (``set_fallback``; ``fallback=False`` ignores it) and
        ``update``, the fallback runs the first episodes (k = 0) and this algorithm the next
        (k = 1), from its start state: it adapts from its own episodes only (an estimator is
        fitted to the transitions of its own policy). From k = 2 on, whichever did better runs:
        the fallback's k = 0 episodes against those of this algorithm's kept state (its latest;
        with ``safe``, the last update kept), success first, then return. What is handed over
        is the one that did better (``FALLBACK_KEY`` marks the fallback's state).
        bench/RESULTS.md, "adapting with a fallback", has how the rule was chosen.

        ``same_seeds`` runs every k's episodes on k = 0's episode seeds (default: new seeds per
        k), so a policy that does not change reads the same at every k. It is refused with a
        fallback, whose choice would then be scored on the episodes it was made on."""
        steps, episodes, fb = self._adaptation_plan(steps, episodes, fallback and update, same_seeds)
        safe = (self.config.safe_adaptation if safe is None else safe) and self.updates_parameters
        update = update and (self.updates_parameters or self.config.carry_context)
        start = state if state is not None else self.meta_state()
        n = len(tasks)
        states = [start] * n  # what runs at step k
        kept = [start] * n  # the last state whose episodes did not return less
        kept_return = [-math.inf] * n
        fb_state = fb.meta_state() if fb is not None else {}
        fb_score = [(-math.inf, -math.inf)] * n  # the fallback's k = 0 (success, return)
        kept_success = [-math.inf] * n
        on_fallback = [fb is not None] * n  # who the fallback serves at step k
        results = [AdaptationResult(t, [], [], 0, start) for t in tasks]
        for k in range(steps + 1):
            rollouts: list[Rollout | None] = [None] * n
            for runner, which in ((self, False), (fb, True)):
                picked = [i for i in range(n) if on_fallback[i] == which]
                if runner is None or not picked:
                    continue
                jobs = [
                    runner.make_job(
                        tasks[i],
                        fb_state if which else states[i],
                        episodes,
                        job_seed(seed, 7_777, 0 if same_seeds else k, i),
                    )
                    for i in picked
                ]
                for i, got in zip(picked, runner.sampler().run(jobs)):
                    rollouts[i] = got
            for i, res in enumerate(results):
                ro = rollouts[i]
                assert ro is not None
                res.success.append(ro.success_rate)
                res.returns.append(ro.mean_return)
                res.env_steps += ro.env_steps
                res.ran.append("fallback" if on_fallback[i] else self.name)
                if on_fallback[i]:  # nothing for this algorithm to learn from: not its own episodes
                    if k == 0:
                        fb_score[i] = (ro.success_rate, ro.mean_return)
                    continue
                if ro.action_stats is not None:  # what the robot's episodes showed: always kept
                    sums = _action_sums(states[i]) + torch.as_tensor(ro.action_stats.sum(axis=0))
                    states[i] = {**states[i], ACTION_SUMS: sums}
                    kept[i] = {**kept[i], ACTION_SUMS: sums}
                accepted = not safe or math.isinf(kept_return[i]) or ro.mean_return >= kept_return[i]
                if accepted:
                    kept[i], kept_return[i], kept_success[i] = states[i], ro.mean_return, ro.success_rate
                if k == steps or not update:
                    continue
                if accepted:
                    own = {key: v for key, v in kept[i].items() if key != ACTION_SUMS}
                    states[i] = self.inner_update(own, ro, seed=job_seed(seed, 8_888, k, i))
                    if ACTION_SUMS in kept[i]:
                        states[i] = {**states[i], ACTION_SUMS: kept[i][ACTION_SUMS]}
                else:
                    states[i] = _halfway(kept[i], states[i])
            if fb is not None:  # k = 1 is this algorithm's; then the one that did better
                on_fallback = [k + 1 >= 2 and fb_score[i] > (kept_success[i], kept_return[i]) for i in range(n)]
            if k < steps and update:
                check_inner_states(states, None, k)
            if progress is not None:
                progress()
        for i, res in enumerate(results):
            if fb is not None and fb_score[i] > (kept_success[i], kept_return[i]):
                res.final_state = {**fb_state, FALLBACK_KEY: torch.ones(1)}
            else:
                res.final_state = self.deployed_state(res.task, kept[i])
        return results

    def _adaptation_plan(
        self, steps: int | None, episodes: int | None, fallback: bool, same_seeds: bool
    ) -> tuple[int, int, MetaLearner | None]:
        """``adapt_many``'s steps and episodes per update (the config's where not given), and
        the fallback that runs (``fallback``: wanted), checked: same seeds with a fallback are
        refused."""
        steps = self.config.inner_steps if steps is None else steps
        episodes = episodes or self.config.episodes_per_update
        if steps < 0 or episodes < 1:
            raise MetarobotError(f"steps must be >= 0 and episodes >= 1, got {steps} and {episodes}")
        fb = self.fallback if fallback else None
        if same_seeds and fb is not None:
            raise MetarobotError(
                "same seeds at every k would score the fallback's choice on the episodes it was made on; "
                "adapt without the fallback (--fallback none)"
            )
        return steps, episodes, fb

    def memory_arrays(self, state: dict[str, torch.Tensor]) -> dict[str, np.ndarray] | None:
        """What an adapted ``state`` remembers of the robot beyond the exported policy's
        parameters, as arrays to save beside it (``adapt``); None where it remembers nothing
        (every algorithm but rl2)."""
        return None

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
        self.current_tasks = tasks  # what outer updates that use privileged task data read
        meta = self.meta_state()
        states = [meta] * len(tasks)
        phase = [0] * len(tasks)
        seen: list[Any] = [0.0] * len(tasks)  # action-identification sums of each task's phases so far

        def follow(i: int, rollout: Rollout) -> Job | None:
            # task i's phase k is in: adapt (in this process, while the workers sample on)
            k = phase[i]
            if k == cfg.inner_steps:
                return None
            if self.adapts_in_training:
                states[i] = self.inner_update(states[i], rollout, seed=job_seed(cfg.seed, self.iteration, k, i))
                check_inner_states([states[i]], self.iteration + 1, k)
            phase[i] = k + 1
            job = self._jobs([tasks[i]], [states[i]], k + 1, cfg.episodes_per_update, index=i)[0]
            if job.actions is not None and rollout.action_stats is not None:
                # the next phase starts from what this task's squeezes showed, as when adapting
                seen[i] = seen[i] + rollout.action_stats.sum(axis=0)
                job.actions = dataclasses.replace(job.actions, prior=job.actions.prior + seen[i])
            return job

        chains = run_chain(self.sampler(), self._jobs(tasks, states, 0, cfg.episodes_per_update), follow)
        phases: list[list[Rollout]] = [[chain[k] for chain in chains] for k in range(cfg.inner_steps + 1)]
        np.random.seed(job_seed(cfg.seed, 99, self.iteration) % 2**32)
        torch.manual_seed(job_seed(cfg.seed, 98, self.iteration))
        stats = self.outer_update(phases, states, meta)
        steps = sum(ro.env_steps for ph in phases for ro in ph)
        self.env_steps += steps
        self.iteration += 1
        pre, post = phases[0], phases[-1]
        row = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "pre_return": float(np.mean([r.mean_return for r in pre])),
            "pre_success": float(np.mean([r.success_rate for r in pre])),
            "post_return": float(np.mean([r.mean_return for r in post])) if self.adapts_in_training else float("nan"),
            "post_success": float(np.mean([r.success_rate for r in post])) if self.adapts_in_training else float("nan"),
            "physics_errors": sum(r.physics_errors for ph in phases for r in ph),
            **stats,
        }
        self.history.append(row)
        return row

    # -- the fallback -------------------------------------------------------------------------
    def set_fallback(self, other: MetaLearner | None) -> None:
        """Let adaptation run ``other``'s policy (as it is, no context: e.g. the family's
        multitask policy) where it returns more than this algorithm's (``adapt_many``); None
        removes it. Checkpoints carry it."""
        if other is not None:
            if other.config.family != self.config.family:
                raise MetarobotError(
                    f"the fallback is a {other.config.family!r} policy, not one of {self.config.family!r}"
                )
            if other.context_dim:
                raise MetarobotError(f"the fallback must act on the observation alone; {other.name!r} reads a context")
            if other.fallback is not None:
                raise MetarobotError("the fallback has a fallback of its own")
        self.fallback = other

    def runner_for(self, state: dict[str, torch.Tensor]) -> tuple[MetaLearner, dict[str, torch.Tensor]]:
        """The learner that runs an adaptation's ``state`` (the fallback, where it was chosen),
        and the state as that learner reads it."""
        if FALLBACK_KEY not in state:
            return self, state
        if self.fallback is None:
            raise MetarobotError("this adapted state is the fallback policy's, and no fallback is loaded")
        return self.fallback, {k: v for k, v in state.items() if k != FALLBACK_KEY}

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        fallback = {"fallback": self.fallback.checkpoint()} if self.fallback is not None else {}
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
            "algo_state": self.extra_state(),
            **fallback,
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
    def load(cls, path: Path | str, sampler_instance: Sampler | None = None, **overrides: Any) -> MetaLearner:
        """A learner of the checkpoint's algorithm, restored from it (``overrides``: e.g.
        ``workers``, ``iterations``)."""
        return cls._restore(read_checkpoint(path), path, sampler_instance, **overrides)

    @classmethod
    def _restore(
        cls, data: dict[str, Any], path: Path | str, sampler_instance: Sampler | None = None, **overrides: Any
    ) -> MetaLearner:
        cfg = (
            MetaConfig.from_dict(data["config"]).replace(**overrides)
            if overrides
            else MetaConfig.from_dict(data["config"])
        )
        make = MetaLearner if not cls.name else cls
        # the checkpoint holds the parameters: no warm start from a file that may be gone
        learner = make(cfg, sampler_instance=sampler_instance, restoring=True)
        try:
            learner.policy.load_state_dict(data["policy_state"])
            learner.optimizer.load_state_dict(data["optimizer_state"])
            learner.load_extra_state(dict(data.get("algo_state") or {}))
        except (RuntimeError, KeyError, ValueError) as exc:
            raise MetarobotError(
                f"checkpoint {path} does not match its own settings: {str(exc).splitlines()[0]}"
            ) from None
        learner.rng.bit_generator.state = data["rng_state"]
        learner.iteration = int(data["iteration"])
        learner.env_steps = int(data["env_steps"])
        learner.history = list(data["history"])
        if data.get("fallback") is not None:
            where = {k: v for k, v in overrides.items() if k in ("workers", "device")}
            learner.set_fallback(MetaLearner._restore(data["fallback"], f"{path} (its fallback)", **where))
        return learner

    def load_as(self, **overrides: Any) -> MetaLearner:
        """A copy of this learner (same class, parameters and extra state) with settings changed,
        e.g. ``load_as(ppo_lr=3e-4)`` for a test-time routine of another step size."""
        learner = type(self)(self.config.replace(**overrides), restoring=True)
        learner.policy.load_state_dict(self.meta_state())
        learner.load_extra_state(self.extra_state())
        learner.iteration, learner.env_steps = self.iteration, self.env_steps
        learner.fallback = self.fallback
        return learner

    # -- SB3 export -------------------------------------------------------------------------
    def identified_export_kwargs(self, state: dict[str, torch.Tensor] | None) -> dict[str, Any]:
        """Policy settings that make an exported policy send the identified action an adaptation
        found (``state``'s action-identification sums; a single robot: one slot), or none."""
        if state is None or ACTION_SUMS not in state:
            return {}
        from metarobot.online import action_identification_of

        ident = action_identification_of(self.family.name)
        values = ident.command(state[ACTION_SUMS].detach().numpy().astype(np.float64)[None], 1)
        return {"identified_actions": {"family": self.family.name, "values": [float(v) for v in values]}}

    def save_sb3(self, path: Path | str, state: dict[str, torch.Tensor] | None = None) -> Path:
        """Save ``state`` (default: the meta-parameters) as an SB3 PPO zip (``PPO.load`` opens it);
        a state an adaptation handed to the fallback is saved by the fallback."""
        if state is not None:
            runner, state = self.runner_for(state)
            if runner is not self:
                return runner.save_sb3(path, state)
        return self._export_sb3(path, state)

    def _export_sb3(self, path: Path | str, state: dict[str, torch.Tensor] | None) -> Path:
        """``save_sb3`` of a state of this learner's own policy (subclasses export theirs)."""
        path = Path(path)
        extra = self.identified_export_kwargs(state)
        if extra:
            with global_rng_kept():
                model = self._make_ppo(batch_size=self.ppo.batch_size, extra_kwargs=extra)
        else:
            model = self.inner_ppo()
        model.policy.load_state_dict(self.policy_part(state) if state is not None else self.meta_state())
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


def _action_sums(state: dict[str, torch.Tensor]) -> torch.Tensor | float:
    """The action-identification sums a state holds (0 where none)."""
    return state[ACTION_SUMS] if ACTION_SUMS in state else 0.0


def _halfway(kept: dict[str, torch.Tensor], rejected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state halfway between a kept one and a rejected update of it (floating tensors)."""
    return {k: (v + 0.5 * (rejected[k] - v)) if v.is_floating_point() else v for k, v in kept.items()}


def merge_rollouts(rollouts: list[Rollout]) -> Rollout:
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
        None if any(r.action_stats is None for r in rollouts) else np.concatenate([r.action_stats for r in rollouts]),
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
    fallback = data.get("fallback")
    if fallback is not None:
        if not isinstance(fallback, dict) or fallback.get("format") != CHECKPOINT_FORMAT:
            raise MetarobotError(f"checkpoint {path}: its fallback is not a metarobot checkpoint")
        for key in ("config", "policy_state", "iteration"):
            if key not in fallback:
                raise MetarobotError(f"checkpoint {path}: its fallback lacks {key!r}")
        validate_checkpoint(fallback, f"{path} (its fallback)")
    return data
