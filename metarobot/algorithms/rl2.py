"""RL² (Duan et al. 2016; Wang et al. 2016): adaptation by memory across episodes.

An LSTM policy (sb3-contrib's ``RecurrentPPO``) is meta-trained on *trials*: runs of
``(inner_steps + 1) * episodes_per_update`` episodes of one training task, during which its
memory is never reset, and it sees its previous action, its previous reward and an
episode-start flag (``metarobot.wrappers.Trials``). PPO's objective over a whole trial rewards
what the policy makes of the earlier episodes of a robot in the later ones; so adapting is
running the episodes with the memory carried from each to the next, and no parameter changes.
Under safe adaptation a memory is kept only while its episodes do as well as a fresh start's,
and a fallback policy may run beside it (``RL2.adapt_many``, ``guard_choice``).

What differs from the ``recurrent`` baseline (the same LSTM, the same SB3 recipe): its memory
spans the robot's episodes, not one episode, and it reads the rewards. grasp (v0)'s ood robots
are served by memory within an episode (bench/RESULTS.md, "Memory or recipe?"), which no
feed-forward metarobot method gave; this is the metarobot method that has it.

Sampling runs in this process (``rl2_envs`` envs, SB3's ``DummyVecEnv``), not through metarobot's
samplers, so ``--workers`` does not apply and the Ray sampler is refused. An iteration is as
many env steps as any other algorithm's (``MetaConfig.steps_per_iteration``), made of SB3
rollouts of ``rl2_envs`` envs (64) x ``max(episode_steps, 128)`` steps; the LSTM's state carries across
rollouts within a trial. A resumed run restarts its envs' trials, so it is not bit-identical
to an uninterrupted one (as the recurrent baseline's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.meta import FALLBACK_KEY, AdaptationResult, MetaLearner, global_rng_kept, job_seed
from metarobot.validation import divergence_hook

State = dict[str, torch.Tensor]

#: the memory an adapted state carries beside the policy's parameters
MEMORY_KEYS = ("rl2.lstm_h", "rl2.lstm_c", "rl2.last_action", "rl2.last_reward")


def guard_choice(
    scores: dict[str, tuple[float, float]], latest: tuple[float, float] | None, fallback_first: bool = False
) -> str:
    """What rl2's guard runs next on a robot: ``"fallback"``, ``"reset"`` (the start state's
    memory) or ``"carry"`` (the memory of rl2's latest episodes). ``scores`` holds each one's
    latest (success, return) where it has run; ``latest`` is rl2's latest episodes' score (None
    before rl2 has run). The fallback runs first where there is one; rl2 first runs from its
    start state; from then on the best-scored runs, an untried carry scored as ``latest``, ties
    going to the memory, then the reset."""
    if fallback_first:
        return "fallback"
    if latest is None:
        return "reset"
    options = dict(scores)
    options.setdefault("carry", latest)
    return max(options, key=lambda o: (options[o], _GUARD_ORDER[o]))


_GUARD_ORDER = {"carry": 2, "reset": 1, "fallback": 0}


class RL2(MetaLearner):
    """RL²: an LSTM policy meta-trained over trials; adapting carries its memory across a robot's episodes.

    ``RL2(family="grasp").train()``."""

    name = "rl2"
    #: the recurrent baseline's recipe, but 64 trials side by side and 8 minibatches (the same
    #: minibatch size and Adam steps per env step as 16 and 2): with 16, each update saw 16
    #: robots for the ~15 rollouts of a trial, and rl2 reached 76-81% on grasp's train split at
    #: k = 0; with 64, 99% (bench/RESULTS.md, "rl2")
    defaults: ClassVar[dict[str, Any]] = {"ppo_minibatches": 8, "log_std_init": 0.0}
    updates_parameters = False
    has_update = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        if cfg.sampler != "local":
            raise MetarobotError("rl2 samples in its own process (SB3 envs); it cannot use the ray sampler")
        self.trial_episodes = (cfg.inner_steps + 1) * cfg.episodes_per_update
        self.n_envs = cfg.rl2_envs
        self._venv = self._make_venv()
        n_steps = max(self.episode_steps, 128)
        sizes = [int(h) for h in cfg.hidden_sizes]
        keep = global_rng_kept() if self.restoring else contextlib.nullcontext()
        with keep:  # SB3 reseeds the global generators: not when a learner is only being loaded
            self.model = self._make_model(n_steps, sizes)
        from stable_baselines3.common.logger import Logger

        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self.policy = self.model.policy  # type: ignore[assignment]  # the meta-parameters
        self.optimizer = self.model.policy.optimizer
        self._eval_env: Any = None

    def _make_model(self, n_steps: int, sizes: list[int]) -> Any:
        from metarobot.recurrent import _contrib

        cfg = self.config
        return _contrib().RecurrentPPO(
            "MlpLstmPolicy",
            self._venv,
            n_steps=n_steps,
            batch_size=n_steps * self.n_envs // cfg.ppo_minibatches,
            device="cpu",
            **cfg.sb3_ppo_kwargs(),
            verbose=0,
            policy_kwargs={
                "lstm_hidden_size": sizes[0],
                "net_arch": {"pi": sizes[1:], "vf": sizes[1:]},
                "log_std_init": cfg.log_std_init,
            },
        )

    def _make_venv(self) -> Any:
        import functools

        from stable_baselines3.common.vec_env import DummyVecEnv

        from metarobot.wrappers import Trials

        cfg = self.config
        return DummyVecEnv(
            [
                functools.partial(Trials, cfg.family, self.trial_episodes, "train", job_seed(cfg.seed, 4_242, i))
                for i in range(self.n_envs)
            ]
        )

    def _warm_start(self, path: Path) -> None:
        raise MetarobotError("rl2 cannot start from --init-from: its policy is an LSTM, not a metarobot MLP policy")

    # -- training ---------------------------------------------------------------------------
    @divergence_hook
    def step(self) -> dict[str, Any]:
        """One iteration: SB3 rollouts and RecurrentPPO updates until the run has made
        ``iteration * steps_per_iteration`` env steps."""
        target = (self.iteration + 1) * self.config.steps_per_iteration(self.episode_steps)
        need = target - int(self.model.num_timesteps)
        if need > 0:
            self.model.learn(need, reset_num_timesteps=False, log_interval=None)  # type: ignore[arg-type]
        trials = [t for env in self._venv.envs for t in env.trial_log]
        for env in self._venv.envs:
            env.trial_log.clear()
        self.env_steps = int(self.model.num_timesteps)
        self.iteration += 1
        logged = self.model.logger.name_to_value
        n = self.config.episodes_per_update

        def phase(rows: list[list[tuple[bool, float]]], which: slice, col: int) -> float:
            vals = [float(e[col]) for t in rows for e in t[which]]
            return float(np.mean(vals)) if vals else float("nan")

        first, last = slice(0, n), slice(self.trial_episodes - n, self.trial_episodes)
        row = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "pre_return": phase(trials, first, 1),
            "pre_success": phase(trials, first, 0),
            "post_return": phase(trials, last, 1),
            "post_success": phase(trials, last, 0),
            "physics_errors": 0,
            "policy_loss": float(logged.get("train/policy_gradient_loss", float("nan"))),
            "value_loss": float(logged.get("train/value_loss", float("nan"))),
            "entropy": -float(logged.get("train/entropy_loss", float("nan"))),
            "clip_fraction": float(logged.get("train/clip_fraction", float("nan"))),
        }
        self.history.append(row)
        return row

    def extra_state(self) -> dict[str, Any]:
        rngs = [env.rng.bit_generator.state for env in self._venv.envs]
        return {"num_timesteps": int(self.model.num_timesteps), "n_updates": int(self.model._n_updates), "rngs": rngs}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.model.num_timesteps = int(state.get("num_timesteps", 0))
        self.model._n_updates = int(state.get("n_updates", 0))
        for env, rng in zip(self._venv.envs, state.get("rngs", [])):
            env.rng.bit_generator.state = rng

    # -- adapting: running a trial ------------------------------------------------------------
    def policy_part(self, state: State) -> State:
        return {k: v for k, v in state.items() if k not in MEMORY_KEYS}

    def trial(
        self,
        task: Task,
        seeds: Sequence[int],
        state: State | None = None,
        noise_seed: int = 0,
        deterministic: bool = False,
        on_step: Callable[[Any], None] | None = None,
        on_episode_end: Callable[[Any], None] | None = None,
    ) -> tuple[list[tuple[bool, float]], int, State]:
        """Run ``len(seeds)`` episodes of ``task`` as one trial, the memory carried from each to
        the next (starting from ``state``'s memory where it holds one); each episode's (success,
        return), the env steps, and the memory at the end. ``on_step(env)`` runs after the
        trial's reset and every step but its last, ``on_episode_end(env)`` when an episode
        ends, before the robot is reset (both for rendering, on an env made to render)."""
        from metarobot.wrappers import Trials

        rendering = on_step is not None or on_episode_end is not None
        if rendering:
            env = Trials(self.config.family, len(seeds), task=task, render_mode="rgb_array")
            env.on_episode_end = (lambda: on_episode_end(env)) if on_episode_end is not None else None
        else:
            if self._eval_env is None:
                self._eval_env = Trials(self.config.family, len(seeds), task=task)
            env = self._eval_env
        try:
            return self._run_trial(env, task, seeds, state, noise_seed, deterministic, on_step)
        finally:
            if rendering:
                env.close()

    def _run_trial(
        self,
        env: Any,
        task: Task,
        seeds: Sequence[int],
        state: State | None,
        noise_seed: int,
        deterministic: bool,
        on_step: Callable[[Any], None] | None,
    ) -> tuple[list[tuple[bool, float]], int, State]:
        env.set_task(task)
        env.episodes = len(seeds)
        env.episode_seeds = [int(s) for s in seeds]
        torch.manual_seed(noise_seed)
        lstm: Any = None
        start = np.ones(1, dtype=bool)
        carried = None
        if state is not None and MEMORY_KEYS[0] in state:  # an earlier trial's memory goes on
            lstm = (state[MEMORY_KEYS[0]].numpy().copy(), state[MEMORY_KEYS[1]].numpy().copy())
            carried = {"last_action": state[MEMORY_KEYS[2]].numpy(), "last_reward": float(state[MEMORY_KEYS[3]])}
            start = np.zeros(1, dtype=bool)
        obs, _ = env.reset(options=carried)
        if on_step is not None:
            on_step(env)
        steps, done = 0, False
        while not done:
            action, lstm = self.model.predict(obs[None], state=lstm, episode_start=start, deterministic=deterministic)
            start = np.zeros(1, dtype=bool)
            obs, _, term, trunc, _ = env.step(action[0])
            steps += 1
            done = term or trunc
            if on_step is not None and not done:
                on_step(env)
        episodes = env.trial_log.pop()
        assert lstm is not None
        memory = {
            MEMORY_KEYS[0]: torch.as_tensor(lstm[0]),
            MEMORY_KEYS[1]: torch.as_tensor(lstm[1]),
            MEMORY_KEYS[2]: torch.as_tensor(env.last_action),
            MEMORY_KEYS[3]: torch.tensor([env.last_reward]),
        }
        return episodes, steps, memory

    def rollout_frames(
        self, task: Task, state: State, episodes: int, width: int, height: int, seed: int = 0
    ) -> tuple[list[list[np.ndarray]], list[tuple[float, bool]]]:
        """``metarobot.render.rollout_frames`` for rl2: ``episodes`` deterministic episodes
        run as one trial, from ``state``'s memory where it holds one (an adapted state)."""
        frames: list[list[np.ndarray]] = [[]]

        def snap(env: Any) -> None:
            frames[-1].append(env.env.render_frame(width, height))

        def end(env: Any) -> None:
            snap(env)
            frames.append([])

        seeds = [seed + ep for ep in range(episodes)]
        eps, _, _ = self.trial(task, seeds, state, deterministic=True, on_step=snap, on_episode_end=end)
        return frames[:episodes], [(ret, ok) for ok, ret in eps]

    def adapt_many(
        self,
        tasks: Sequence[Task],
        steps: int | None = None,
        episodes: int | None = None,
        state: State | None = None,
        seed: int = 0,
        progress: Callable[[], None] | None = None,
        update: bool = True,
        safe: bool | None = None,
        fallback: bool = True,
        same_seeds: bool = False,
    ) -> list[AdaptationResult]:
        """Each task's k = 0..steps, ``episodes`` episodes each, with the memory carried from
        every episode to the next (``update=False``: reset at each k, a policy used as it is).
        No parameter ever changes; what adapts is the memory, and it is kept only where it helps.

        ``safe`` (default: the config's ``safe_adaptation``) is the memory's guard, the rule
        the base class's fallback follows: each k runs whichever of three did best so far
        (success, then return, over each one's latest episodes): the memory carried on from the
        latest episodes (``carry``; until it has run, it is scored as the episodes it would carry
        on from); the start state's memory (``reset``: a fresh trial); and, with a ``fallback``
        policy set, that policy, which runs k = 0 (rl2's own trial then starts at k = 1). Ties
        go to the memory, then the reset. A memory that made the robot's episodes worse than a
        fresh start is so dropped, and the policy used as it is runs on. Without the guard and
        a fallback, k = 0..steps run as one trial. The state handed over is the one that would
        run next: the parameters with the memory it carries, or the fallback's
        (``FALLBACK_KEY``). bench/RESULTS.md, "rl2's guard", has the measurements."""
        steps, episodes, fb = self._adaptation_plan(steps, episodes, fallback and update, same_seeds)
        guard = (self.config.safe_adaptation if safe is None else safe) and update
        params = self.meta_state()
        start_memory: State = {}
        if state is not None:
            own = self.policy_part(state)
            if set(own) != set(params):
                raise MetarobotError("rl2 runs its own LSTM policy's parameters only (no fresh MLP policy: no scratch)")
            start_memory = {k: v for k, v in state.items() if k in MEMORY_KEYS}
            self.policy.load_state_dict(own)
        n = len(tasks)
        seeds = [
            [
                [
                    int(s)
                    for s in np.random.SeedSequence(job_seed(seed, 7_777, 0 if same_seeds else k, i)).generate_state(
                        episodes
                    )
                ]
                for k in range(steps + 1)
            ]
            for i in range(n)
        ]
        results = [AdaptationResult(t, [], [], 0, {}, []) for t in tasks]
        try:
            if not update or (not guard and fb is None):
                self._plain_trials(tasks, seeds, steps, state, seed, update, same_seeds, results)
                for _ in range(steps + 1):
                    if progress is not None:
                        progress()
            else:
                self._guarded_trials(
                    tasks, seeds, steps, episodes, start_memory, seed, fb, results, progress, same_seeds
                )
        finally:
            if state is not None:
                self.policy.load_state_dict(params)
        return results

    def _plain_trials(
        self,
        tasks: Sequence[Task],
        seeds: list[list[list[int]]],
        steps: int,
        state: State | None,
        seed: int,
        update: bool,
        same_seeds: bool,
        results: list[AdaptationResult],
    ) -> None:
        """k = 0..steps as one trial per task (``update``), or one trial per k (memory reset)."""
        for i, task in enumerate(tasks):
            if update:  # one trial: k = 0's episodes run as a policy used as it is would run them
                flat = [s for block in seeds[i] for s in block]
                eps, steps_run, memory = self.trial(task, flat, state, noise_seed=job_seed(seed, 8_888, 0, i))
            else:
                eps, steps_run, memory = [], 0, {}
                for k in range(steps + 1):
                    noise = job_seed(seed, 8_888, 0 if same_seeds else k, i)
                    got, m, memory = self.trial(task, seeds[i][k], None, noise)
                    eps, steps_run = eps + got, steps_run + m
            size = len(seeds[i][0])
            for k in range(steps + 1):
                block = eps[k * size : (k + 1) * size]
                results[i].success.append(float(np.mean([e[0] for e in block])))
                results[i].returns.append(float(np.mean([e[1] for e in block])))
                results[i].ran.append(self.name)
            results[i].env_steps = steps_run
            results[i].final_state = {**self.meta_state(), **memory}

    def _guarded_trials(
        self,
        tasks: Sequence[Task],
        seeds: list[list[list[int]]],
        steps: int,
        episodes: int,
        start_memory: State,
        seed: int,
        fb: MetaLearner | None,
        results: list[AdaptationResult],
        progress: Callable[[], None] | None,
        same_seeds: bool = False,
    ) -> None:
        """``adapt_many``'s guard: k by k, each task runs the best-scored of carry, reset and
        fallback; the fallback's episodes run as one batch through its sampler."""
        n = len(tasks)
        scores: list[dict[str, tuple[float, float]]] = [{} for _ in range(n)]
        latest: list[tuple[float, float] | None] = [None] * n  # rl2's latest episodes' score
        memory: list[State] = [dict(start_memory) for _ in range(n)]
        fb_state = fb.meta_state() if fb is not None else {}

        def choose(i: int, k: int) -> str:
            return guard_choice(scores[i], latest[i], fallback_first=fb is not None and k == 0)

        for k in range(steps + 1):
            picks = [choose(i, k) for i in range(n)]
            fb_rows = [i for i in range(n) if picks[i] == "fallback"]
            if fb is not None and fb_rows:
                jobs = [fb.make_job(tasks[i], fb_state, episodes, job_seed(seed, 7_777, k, i)) for i in fb_rows]
                for i, ro in zip(fb_rows, fb.sampler().run(jobs)):
                    self._record(results[i], scores[i], "fallback", ro.success_rate, ro.mean_return, ro.env_steps)
            for i, task in enumerate(tasks):
                if picks[i] == "fallback":
                    continue
                carried = memory[i] if picks[i] == "carry" else start_memory
                got, m, memory[i] = self.trial(
                    task,
                    seeds[i][k],
                    {**carried} if carried else None,
                    noise_seed=job_seed(seed, 8_888, 0 if same_seeds else k, i),
                )
                score = (float(np.mean([e[0] for e in got])), float(np.mean([e[1] for e in got])))
                first = latest[i] is None  # rl2's first episodes on this robot: not a reset
                latest[i] = score
                self._record(results[i], scores[i], picks[i], score[0], score[1], m, first)
            if progress is not None:
                progress()
        for i, res in enumerate(results):
            last = choose(i, steps + 1)
            if last == "fallback":
                res.final_state = {**fb_state, FALLBACK_KEY: torch.ones(1)}
            else:
                res.final_state = {**self.meta_state(), **(memory[i] if last == "carry" else start_memory)}

    def _record(
        self,
        res: AdaptationResult,
        scores: dict[str, tuple[float, float]],
        which: str,
        success: float,
        ret: float,
        env_steps: int,
        first: bool = False,
    ) -> None:
        scores[which] = (float(success), float(ret))
        res.success.append(float(success))
        res.returns.append(float(ret))
        res.env_steps += int(env_steps)
        reset = which == "reset" and not first
        res.ran.append("fallback" if which == "fallback" else f"{self.name} (memory reset)" if reset else self.name)

    def memory_arrays(self, state: State) -> dict[str, np.ndarray] | None:
        """The memory an adaptation kept (``lstm_h``, ``lstm_c``, ``last_action``, a scalar
        ``last_reward``: what ``RecurrentPPO.predict`` and ``Trials.reset(options=...)`` take to
        go on from it), or None where the guard dropped it."""
        if MEMORY_KEYS[0] not in state:
            return None
        arrays = {k.split(".", 1)[1]: state[k].numpy() for k in MEMORY_KEYS}
        arrays["last_reward"] = arrays["last_reward"].reshape(())
        return arrays

    def _export_sb3(self, path: Path | str, state: State | None) -> Path:
        """The ``RecurrentPPO`` zip (``sb3_contrib.RecurrentPPO.load``); its observation is
        ``metarobot.wrappers.Trials``'. An adapted state's memory is not in the zip."""
        path = Path(path)
        if state is not None:
            kept = self.meta_state()
            self.policy.load_state_dict(self.policy_part(state))
            try:
                self.model.save(str(path))
            finally:
                self.policy.load_state_dict(kept)
        else:
            self.model.save(str(path))
        return path if path.suffix == ".zip" else path.with_suffix(".zip")

    def close(self) -> None:
        super().close()
        self._venv.close()
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None
