"""Meta-training settings: one dataclass, a docstring per field, validated on construction."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from metarobot.errors import MetarobotError
from metarobot.validation import hidden_sizes, load_yaml_mapping, validate_meta_config

ALGOS = ("maml", "fomaml", "reptile", "multitask")


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Settings of one meta-training run (also what test-time adaptation replays)."""

    family: str = "reach"
    """Task family to meta-train on."""
    algo: str = "maml"
    """maml (second order), fomaml (first order), reptile, or multitask (the PPO baseline)."""
    iterations: int = 330
    """Meta-iterations (outer updates)."""
    meta_batch: int = 10
    """Training tasks sampled per iteration."""
    episodes_per_update: int = 10
    """Episodes (env slots of one full episode each) per task per inner update."""
    inner_steps: int = 1
    """Inner (adaptation) updates per task."""
    inner_lr: float = 0.1
    """Step size of the inner policy-gradient SGD step (maml, fomaml)."""
    outer_lr: float = 1e-3
    """Adam step size of the outer update."""
    outer_epochs: int = 5
    """Passes of the outer PPO objective over each meta-batch."""
    outer_minibatches: int = 5
    """Outer Adam steps per epoch, each on a disjoint group of the meta-batch's tasks."""
    clip_range: float = 0.2
    """PPO clip range of the outer objective (and of reptile/multitask PPO updates)."""
    gamma: float = 0.97
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    reptile_step: float = 0.5
    """Reptile's outer step: the meta-parameters move this fraction toward the adapted mean."""
    ppo_lr: float = 1e-3
    """Adam step size of the PPO updates of reptile's inner loop and of multitask."""
    ppo_epochs: int = 10
    """PPO epochs per update (reptile inner loop, multitask)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the tanh MLP policy and value networks."""
    log_std_init: float = -1.0
    """Initial log standard deviation of the Gaussian policy."""
    workers: int = 2
    """Sampling worker processes (0: sample in the main process)."""
    seed: int = 0
    """Seed of task sampling, env resets and policy noise."""
    device: str = "cpu"
    """Torch device of the meta-parameters."""
    eval_tasks: int = 10
    """Held-out test tasks of the final pre/post-adaptation summary."""

    def __post_init__(self) -> None:
        validate_meta_config(self)  # every field: type, range, device, this machine's limits

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetaConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise MetarobotError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        data = dict(data)
        if "hidden_sizes" in data:
            data["hidden_sizes"] = hidden_sizes(data["hidden_sizes"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise MetarobotError(f"bad settings: {exc}") from None

    def replace(self, **changes: Any) -> MetaConfig:
        return self.from_dict({**self.to_dict(), **changes})

    def steps_per_iteration(self, episode_steps: int) -> int:
        """Env steps one iteration samples (the budget ``multitask`` matches)."""
        phases = self.inner_steps + 1
        return phases * self.meta_batch * self.episodes_per_update * episode_steps

    def policy_kwargs(self, action_mask_slice: tuple[int, int] | None) -> dict[str, Any]:
        import torch

        sizes = [int(h) for h in self.hidden_sizes]
        return {
            "net_arch": {"pi": sizes, "vf": sizes},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": self.log_std_init,
            "ortho_init": True,
            "action_mask_slice": action_mask_slice,
        }


def load_yaml_config(path: Path) -> dict[str, Any]:
    """Settings from a YAML mapping (keys as in ``MetaConfig`` or as CLI options)."""
    data = load_yaml_mapping(Path(path), "config")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
