"""The ``recurrent`` baseline: sb3-contrib's ``RecurrentPPO`` (an LSTM policy) trained with
domain randomisation -- a new training task every episode -- for the same env-step budget as
the method it is compared with. It adapts the way a recurrent policy does: by what its memory
picks up within an episode (it is never updated at test time). ``pip install sb3-contrib``
(part of the ``dev`` extra) brings it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.registry import get_family


def _contrib() -> Any:
    try:
        import sb3_contrib
    except ImportError:
        raise MetarobotError('the recurrent baseline needs sb3-contrib: pip install "sb3-contrib>=2.3"') from None
    return sb3_contrib


def sb3_recipe(family: str, seed: int = 0, n_envs: int = 16, minibatches: int = 2) -> tuple[Any, dict[str, Any]]:
    """The recurrent baseline's SB3 training recipe, apart from its policy: ``n_envs`` envs of
    tasks resampled from ``family``'s train split, and the keywords of an SB3 on-policy
    algorithm (rollout, ``minibatches`` minibatches, epochs, learning rate, discount, seed).
    ``make_recurrent`` builds the baseline on it, and ``bench/recipe_control.py`` a
    feed-forward PPO, so that the two differ by memory only."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from metarobot.wrappers import ResampleTasks

    fam = get_family(family)
    venv = DummyVecEnv([functools.partial(ResampleTasks, family, "train", seed + i) for i in range(n_envs)])
    n_steps = max(fam.episode_steps, 128)
    kwargs = {
        "n_steps": n_steps,
        "batch_size": n_steps * n_envs // minibatches,
        "n_epochs": 10,
        "learning_rate": 1e-3,
        "gamma": 0.97,
        "seed": seed,
        "device": "cpu",
        "verbose": 0,
    }
    return venv, kwargs


def make_recurrent(family: str, seed: int = 0, n_envs: int = 16, minibatches: int = 2) -> Any:
    """An untrained ``RecurrentPPO`` on ``n_envs`` envs of tasks resampled from ``family``'s
    train split, ``minibatches`` minibatches per rollout (``sb3_recipe``).

    16 envs and two minibatches by default: sb3-contrib runs the LSTM one time step at a time
    over each padded minibatch, so a minibatch costs about its sequence length whatever its
    width. On navigate-v1, 4 envs and four minibatches cost 9.7 ms of CPU per env step on the
    2-core VM, 16 envs and two minibatches 2.2 ms (``bench/recurrent_cost.py``)."""
    venv, kwargs = sb3_recipe(family, seed=seed, n_envs=n_envs, minibatches=minibatches)
    return _contrib().RecurrentPPO(
        "MlpLstmPolicy",
        venv,
        policy_kwargs={"lstm_hidden_size": 64, "net_arch": {"pi": [64], "vf": [64]}},
        **kwargs,
    )


def train_recurrent(
    family: str,
    env_steps: int,
    seed: int = 0,
    n_envs: int = 16,
    partial: Path | None = None,
    chunk: int = 250_000,
    on_chunk: Callable[[Any], None] | None = None,
) -> Any:
    """A ``RecurrentPPO`` (``make_recurrent``) trained on tasks resampled from ``family``'s train split.

    With ``partial``, training runs in chunks of about ``chunk`` env steps and the model is saved
    there after each (then ``on_chunk(model)`` runs); a ``partial`` zip that exists already is
    loaded and training continues from its step count (the envs restart their episodes, so a
    resumed run is not bit-identical to an uninterrupted one)."""
    model = make_recurrent(family, seed=seed, n_envs=n_envs)
    if partial is None:
        model.learn(int(env_steps))
        return model
    if Path(partial).is_file():
        model = _contrib().RecurrentPPO.load(str(partial), env=model.get_env(), device="cpu")
    while model.num_timesteps < env_steps:
        model.learn(min(chunk, int(env_steps) - model.num_timesteps), reset_num_timesteps=False)
        model.save(str(partial))
        if on_chunk is not None:
            on_chunk(model)
    return model


def load_recurrent(path: Path) -> Any:
    if not Path(path).is_file():
        raise MetarobotError(f"recurrent checkpoint {path} does not exist")
    try:
        return _contrib().RecurrentPPO.load(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - a zip that is not a RecurrentPPO, in any of many ways
        raise MetarobotError(f"{path} is not a RecurrentPPO zip: {str(exc).splitlines()[0]}") from None


class RecurrentBaseline:
    """``adapt_many`` for a ``RecurrentPPO`` model (duck-typed like ``MetaLearner.adapt_many``,
    so the evaluation protocol runs it): ``episodes`` episodes per step k, never an update and
    no fallback."""

    def __init__(self, model: Any, family: str) -> None:
        self.model = model
        self.family = get_family(family)
        self._env: Any = None

    def adapt_many(
        self,
        tasks: Sequence[Task],
        steps: int,
        episodes: int,
        state: Any = None,
        seed: int = 0,
        progress: Callable[[], None] | None = None,
        update: bool = False,
        fallback: bool = False,
        same_seeds: bool = False,
    ) -> list[Any]:
        from metarobot.meta import AdaptationResult, job_seed

        results = [AdaptationResult(t, [], [], 0, {}) for t in tasks]
        for k in range(steps + 1):
            for i, (task, res) in enumerate(zip(tasks, results)):
                success, returns, n_steps = self._episodes(
                    task, episodes, job_seed(seed, 7_777, 0 if same_seeds else k, i)
                )
                res.success.append(success)
                res.returns.append(returns)
                res.env_steps += n_steps
            if progress is not None:
                progress()
        return results

    def episode_policy(self) -> Callable[[np.ndarray], np.ndarray]:
        """A fresh episode's policy: observation -> action, carrying the LSTM's state from step
        to step (a subclass runs another kind of memory the same way)."""
        memory: dict[str, Any] = {"lstm": None, "start": np.ones(1, dtype=bool)}

        def act(obs: np.ndarray) -> np.ndarray:
            action, memory["lstm"] = self.model.predict(
                obs[None], state=memory["lstm"], episode_start=memory["start"], deterministic=False
            )
            memory["start"] = np.zeros(1, dtype=bool)
            return action[0]  # type: ignore[no-any-return]

        return act

    def _episodes(self, task: Task, n: int, seed: int) -> tuple[float, float, int]:
        if self._env is None:
            self._env = self.family.make_env(task)
        env = self._env
        env.set_task(task)
        torch.manual_seed(seed)
        seeds = np.random.SeedSequence(seed).generate_state(n)
        wins, rets, steps = [], [], 0
        for s in seeds:
            obs, _ = env.reset(seed=int(s))
            act = self.episode_policy()
            total, info, done = 0.0, {}, False
            while not done:
                obs, reward, term, trunc, info = env.step(act(obs))
                total += float(reward)
                steps += 1
                done = term or trunc
            wins.append(bool(info.get("is_success", False)))
            rets.append(total)
        return float(np.mean(wins)), float(np.mean(rets)), steps

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
