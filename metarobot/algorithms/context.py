"""What the context-conditioned algorithms share: a policy that reads ``observation + context``.

The context is appended to every observation (``Job.context``): the true hidden task
parameters for the privileged ``Oracle``, a context inferred from transitions for ``Proto``.
An adapted policy is exported as an ordinary SB3 PPO zip over the env's own observation: the
context is constant for a task, so it folds into the bias of the first layer of the policy and
value networks (``W [o; c] + b = W_o o + (W_c c + b)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from metarobot.family import Task
from metarobot.meta import ACTION_SUMS, MetaLearner
from metarobot.sampling import Job, PolicySpec, as_box

State = dict[str, torch.Tensor]
#: where an adaptation state keeps the context it deploys with (exported policies fold it in)
CONTEXT_KEY = "context.value"


class ContextLearner(MetaLearner):
    """Base of algorithms whose policy is conditioned on a per-task context vector."""

    def _policy_spec(self) -> PolicySpec:
        # the policy reads [obs; context] and gates its action mean with the context
        obs_dim = int(self.family.observation_space_example()[0].shape[0])
        kwargs = self.config.policy_kwargs(self.family.action_mask_slice)
        kwargs["context_slice"] = (obs_dim, obs_dim + self.context_dim)
        return PolicySpec(self.config.family, kwargs, context_dim=self.context_dim)

    @property
    def obs_dim(self) -> int:
        """Floats of the env's own observation (the context follows them in the policy's input)."""
        return int(as_box(self.policy.observation_space).shape[0]) - self.context_dim

    @property
    def training_context_dropout(self) -> float:
        """The probability that a training job runs with an all-zero context."""
        return float(self.config.context_dropout)

    def _jobs(
        self,
        tasks: Sequence[Task],
        states: Sequence[State],
        phase: int,
        n_episodes: int,
        salt: int = 0,
        index: int = 0,
    ) -> list[Job]:
        jobs = super()._jobs(tasks, states, phase, n_episodes, salt, index)
        return drop_contexts(jobs, self.training_context_dropout)

    def policy_part(self, state: State) -> State:
        # jobs sharing one state share its dict: only states without context keys are shared
        # (the meta-parameters), and those are returned as they are
        if not any(k.startswith("context.") or k == ACTION_SUMS for k in state):
            return state
        return {k: v for k, v in state.items() if not (k.startswith("context.") or k == ACTION_SUMS)}

    def export_kwargs(self, context: torch.Tensor) -> dict[str, Any]:
        """Policy settings an exported policy needs beyond the run's (given the folded context)."""
        return {}

    def undeployed_context(self, state: State) -> torch.Tensor:
        """The context an exported state that deploys none (the meta-parameters) folds in."""
        return torch.zeros(self.context_dim)

    def _export_sb3(self, path: Path | str, state: State | None) -> Path:
        """An SB3 PPO zip over the env's own observation, the deployed context folded in."""
        state = state if state is not None else self.meta_state()
        context = state.get(CONTEXT_KEY)
        if context is None:
            context = self.undeployed_context(state)
        folded = fold_context(self.policy_part(state), self.policy, context.float())
        first = self.family.heldout_tasks("train", 1)[0]
        env = DummyVecEnv([lambda: self.family.make_env(first)])
        try:
            kwargs = {k: v for k, v in self.spec.policy_kwargs.items() if k != "context_slice"}
            kwargs.update(self.export_kwargs(context.float()))
            kwargs.update(self.identified_export_kwargs(state))
            from metarobot.policies import MaskedActorCriticPolicy
            from metarobot.ppo import BufferPPO

            model = BufferPPO(
                MaskedActorCriticPolicy,
                env,
                n_steps=self.episode_steps,
                batch_size=self.episode_steps,
                policy_kwargs=kwargs,
                verbose=0,
            )
            model.policy.load_state_dict(folded)
            model.save(str(path))
        finally:
            env.close()
        path = Path(path)
        return path if path.suffix == ".zip" else path.with_suffix(".zip")


def fold_context(state: State, policy: torch.nn.Module, context: torch.Tensor) -> State:
    """``state`` of a policy over ``[obs; context]`` turned into one over ``obs`` alone."""
    out = {k: v.detach().clone() for k, v in state.items()}
    n_ctx = context.numel()
    if "context_gate.weight" in out:  # a constant gate scales the action head
        gate = torch.tanh(out.pop("context_gate.weight") @ context + out.pop("context_gate.bias"))
        out["action_net.weight"] = out["action_net.weight"] * gate[:, None]
        out["action_net.bias"] = out["action_net.bias"] * gate
    for net in ("mlp_extractor.policy_net.0", "mlp_extractor.value_net.0"):
        w, b = out[f"{net}.weight"], out[f"{net}.bias"]
        out[f"{net}.bias"] = b + w[:, -n_ctx:] @ context.to(w.dtype)
        out[f"{net}.weight"] = w[:, :-n_ctx].contiguous()
    return out


def drop_contexts(jobs: Sequence[Job], probability: float) -> list[Job]:
    """``jobs`` with each one's context replaced by zeros with ``probability`` (drawn from the
    job's own seed, so which jobs lose it does not depend on the sampler or worker count)."""
    if probability <= 0:
        return list(jobs)
    out = []
    for job in jobs:
        if job.context is not None and np.random.default_rng([job.seed, 7_919]).random() < probability:
            job = dataclasses.replace(job, context=np.zeros_like(job.context))
        out.append(job)
    return out
