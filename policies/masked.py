"""Policy networks: an SB3 ``ActorCriticPolicy`` whose Gaussian ignores padded action dims.

Families pad the action to their maximum joint count and put a 0/1 joint mask in the
observation. Padded dims are not sent to the robot, so their sampled values carry no
information: this policy leaves them out of the log-probability and the entropy, which keeps
the policy-gradient signal of real joints free of that noise.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs


def zero_schedule(_: float) -> float:
    """A learning-rate schedule for policies whose optimiser is owned elsewhere (picklable)."""
    return 0.0


class MaskedActorCriticPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` plus ``action_mask_slice``: ``(start, stop)`` of the 0/1 action
    mask inside the (flat) observation, or ``None`` for families without padding.

    ``context_slice``: ``(start, stop)`` of a task context inside the observation (the oracle's
    hidden parameters, an inferred prototype). The context then also *gates* the action mean
    per action dimension, ``mean = tanh(G c + g) * action_net(latent)``: a reversed motor or a
    different gain is a sign or a scale of one action, which a gate expresses directly and an
    MLP over ``[obs; c]`` has to learn as a product (slowly). ``G`` starts at zero.

    ``prior``: the name of a family whose identification model's controller
    (``family.identification().action``) is added to the action mean, so the network learns a
    residual on it. The controller reads the observation and the estimate: the context columns,
    or ``prior_context`` (a fixed estimate: an exported policy's).

    ``identified_actions``: ``{"family": NAME, "values": [...]}``, the values of the family's
    identified action (``family.action_identification()``; grasp-v1: the squeeze) that an
    adaptation found; the exported policy sends them where they apply, as the sampler did while
    adapting. Its log-probabilities stay those of its own actions."""

    def __init__(
        self,
        *args: Any,
        action_mask_slice: tuple[int, int] | None = None,
        context_slice: tuple[int, int] | None = None,
        prior: str | None = None,
        prior_context: list[float] | None = None,
        identified_actions: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.action_mask_slice = tuple(action_mask_slice) if action_mask_slice is not None else None
        self.context_slice = tuple(context_slice) if context_slice is not None else None
        self.prior = prior
        self.prior_context = None if prior_context is None else [float(v) for v in prior_context]
        self.identified_actions = None if identified_actions is None else dict(identified_actions)
        super().__init__(*args, **kwargs)
        self._identified: Any = None
        if self.identified_actions is not None:
            from metarobot.online import action_identification_of

            self._identified = action_identification_of(str(self.identified_actions["family"]))
        self._prior_action: Any = None
        if prior is not None:
            from metarobot.online import identification_of

            if self.context_slice is None and self.prior_context is None:
                raise ValueError("a policy with a prior needs context_slice or prior_context")
            self._prior_action = identification_of(prior).action
        if self.context_slice is not None:
            start, stop = self.context_slice
            self.context_gate = torch.nn.Linear(stop - start, int(self.action_space.shape[0]))  # type: ignore[index]
            torch.nn.init.zeros_(self.context_gate.weight)
            torch.nn.init.constant_(self.context_gate.bias, 1.0)
            # the optimiser SB3 built does not know the gate yet
            self.optimizer = self.optimizer_class(
                self.parameters(), lr=self.optimizer.param_groups[0]["lr"], **self.optimizer_kwargs
            )  # type: ignore[call-arg]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["action_mask_slice"] = self.action_mask_slice
        data["context_slice"] = self.context_slice
        if self.prior is not None:
            data["prior"] = self.prior
            data["prior_context"] = self.prior_context
        if self.identified_actions is not None:
            data["identified_actions"] = self.identified_actions
        return data

    def _send_identified(self, actions: torch.Tensor) -> torch.Tensor:
        """``actions`` with the identified values put in where they apply (an exported policy's)."""
        if self._identified is None:
            return actions
        values = torch.as_tensor(self.identified_actions["values"], dtype=actions.dtype)  # type: ignore[index]
        flat = actions.reshape(-1, actions.shape[-1])
        return self._identified.apply(flat, values.expand(flat.shape[0])).reshape(actions.shape)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self._send_identified(super()._predict(observation, deterministic))

    def _distribution(self, latent_pi: torch.Tensor, obs: torch.Tensor) -> Any:
        """The action distribution, its mean gated by the context where there is one, plus the
        prior controller's action where there is one."""
        if self.context_slice is None and self.prior is None:
            return self._get_action_dist_from_latent(latent_pi)
        obs = obs.to(latent_pi.dtype)
        mean = self.action_net(latent_pi)
        if self.context_slice is not None:
            start, stop = self.context_slice
            own, context = obs[..., :start], obs[..., start:stop]
            mean = mean * torch.tanh(self.context_gate(context))
        else:  # an exported policy: the estimate it deploys with is fixed
            own = obs
            context = torch.as_tensor(self.prior_context, dtype=obs.dtype).expand(*obs.shape[:-1], -1)
        if self._prior_action is not None:
            mean = mean + self._prior_action(own, context)
        return self.action_dist.proba_distribution(mean, self.log_std)  # type: ignore[call-arg]

    def get_distribution(self, obs: Any) -> Any:  # type: ignore[override]
        if self.context_slice is None and self.prior is None:
            return super().get_distribution(obs)
        latent_pi, _ = self._latents(obs)
        return self._distribution(latent_pi, obs)

    def extract_features(self, obs: torch.Tensor, features_extractor: Any = None) -> Any:  # type: ignore[override]
        # SB3 casts Box observations to float32; keep the parameters' dtype instead, so a
        # float64 copy (finite-difference checks) computes in float64 throughout
        if features_extractor is None and isinstance(self.observation_space, spaces.Box):
            obs = obs.to(self.log_std.dtype)
            if self.share_features_extractor:
                return self.features_extractor(obs)
            return self.pi_features_extractor(obs), self.vf_features_extractor(obs)
        if features_extractor is None:
            return super().extract_features(obs)
        return super().extract_features(obs, features_extractor)

    def _action_mask(self, obs: torch.Tensor) -> torch.Tensor | None:
        if self.action_mask_slice is None or not isinstance(self.action_dist, DiagGaussianDistribution):
            return None
        start, stop = self.action_mask_slice
        return obs[..., start:stop]

    def _log_prob_entropy(
        self, distribution: Any, actions: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self._action_mask(obs)
        if mask is None:
            return distribution.log_prob(actions), distribution.entropy()
        normal = distribution.distribution
        log_prob = (normal.log_prob(actions) * mask).sum(dim=-1)
        entropy = (normal.entropy() * mask).sum(dim=-1)
        return log_prob, entropy

    def _latents(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.extract_features(obs)
        if self.share_features_extractor:
            return self.mlp_extractor(features)  # type: ignore[no-any-return]
        pi_features, vf_features = features
        return self.mlp_extractor.forward_actor(pi_features), self.mlp_extractor.forward_critic(vf_features)

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent_pi, latent_vf = self._latents(obs)
        values = self.value_net(latent_vf)
        distribution = self._distribution(latent_pi, obs)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob, _ = self._log_prob_entropy(distribution, actions, obs)
        actions = actions.reshape((-1, *self.action_space.shape))  # type: ignore[misc]
        return self._send_identified(actions), values, log_prob

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert isinstance(obs, torch.Tensor)  # a Box observation (SB3's type also allows dicts)
        latent_pi, latent_vf = self._latents(obs)
        distribution = self._distribution(latent_pi, obs)
        values = self.value_net(latent_vf)
        log_prob, entropy = self._log_prob_entropy(distribution, actions, obs)
        return values, log_prob, entropy
