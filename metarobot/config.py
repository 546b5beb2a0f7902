"""Meta-training settings: one dataclass, a doc per field, validated on construction.

Every setting is declared once, here, with its doc (``setting(default, doc)``); the CLI's
``meta-train`` options are derived from these fields. ``MetaConfig.resolve`` is the one place
that turns what a user asked for into a run's settings, for the Python API, YAML and the CLI
alike: dataclass defaults < the algorithm's defaults < the family's ``meta_defaults`` < the
family's ``algo_defaults`` for that algorithm < what was given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metarobot.errors import MetarobotError
from metarobot.validation import hidden_sizes, load_yaml_mapping, validate_meta_config

SAMPLERS = ("local", "ray")


def setting(default: Any, doc: str) -> Any:
    """A config field with its documentation (shown by ``--help``)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def default_algo(family: str, from_file: bool = False) -> str:
    """The algorithm a run of ``family`` gets when none is named: the family's own (its
    ``meta_defaults["algo"]``, the method that measured best on it), else maml. ``from_file``:
    for a robot read from the user's file, the family's ``file_algo`` where it names one."""
    from metarobot.registry import get_family

    fam = get_family(family)
    if from_file and fam.file_algo:
        return str(fam.file_algo)
    return str(fam.meta_defaults.get("algo", MetaConfig.algo))


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Settings of one meta-training run (also what test-time adaptation replays)."""

    family: str = setting("reach", "Task family to meta-train on.")
    algo: str = setting(
        "maml",
        "Meta-learning algorithm (see `metarobot algorithms`): maml, fomaml, metasgd, cavia, reptile, multitask, "
        "rma, rma-online, identify, rl2, or a plug-in; a family may name its own default, the method that measured "
        "best on it (`metarobot families`).",
    )
    iterations: int = setting(330, "Meta-iterations (outer updates).")
    meta_batch: int = setting(10, "Training tasks sampled per iteration.")
    episodes_per_update: int = setting(10, "Episodes (env slots of one full episode each) per task per inner update.")
    inner_steps: int = setting(1, "Inner (adaptation) updates per task.")
    inner_lr: float = setting(
        0.1,
        "Step size of the inner policy-gradient SGD step (maml, fomaml; cavia: of its context step, default 10; "
        "metasgd: where its learned per-element step sizes start).",
    )
    outer_lr: float = setting(1e-3, "Adam step size of the outer update.")
    outer_epochs: int = setting(5, "Passes of the outer PPO objective over each meta-batch.")
    outer_minibatches: int = setting(
        5, "Outer Adam steps per epoch, each on a disjoint group of the meta-batch's tasks."
    )
    clip_range: float = setting(0.2, "PPO clip range of the outer objective (and of reptile/multitask PPO updates).")
    gamma: float = setting(0.97, "Discount factor.")
    gae_lambda: float = setting(0.95, "GAE lambda.")
    vf_coef: float = setting(0.5, "Weight of the value loss.")
    ent_coef: float = setting(0.0, "Weight of the entropy bonus.")
    reptile_step: float = setting(
        0.5, "Reptile's outer step: the meta-parameters move this fraction toward the adapted mean."
    )
    ppo_lr: float = setting(1e-3, "Adam step size of the PPO updates of reptile's inner loop and of multitask.")
    ppo_epochs: int = setting(10, "PPO epochs per update (reptile inner loop, multitask).")
    ppo_minibatches: int = setting(
        4,
        "Minibatches per epoch of multitask's PPO update, which the oracle and the teacher stages of rma "
        "and rma-online run too (more: more, smaller Adam steps per sample).",
    )
    rl2_envs: int = setting(
        64,
        "rl2: trials run side by side (SB3 envs), each on a training task of its own; its PPO update "
        "sees that many robots at once (64: on grasp's train split 99% where 16 reached 76%).",
    )
    hidden_sizes: tuple[int, ...] = setting((64, 64), "Hidden layer sizes of the tanh MLP policy and value networks.")
    log_std_init: float = setting(-1.0, "Initial log standard deviation of the Gaussian policy.")
    context_dim: int = setting(
        8, "Size of the task context a context-inference algorithm (proto) infers, or that cavia adapts by gradient."
    )
    context_aux_coef: float = setting(
        1.0,
        "proto: weight of the auxiliary loss that predicts the hidden task parameters from the context "
        "(training only; 0 turns it off).",
    )
    context_action_coef: float = setting(
        0.0,
        "rma-online: weight of the loss that makes the teacher act on the estimate as it acts on the truth "
        "(squared difference of its action means on the visited states), beside the regression of the "
        "hidden parameters; it weighs each estimation error by what it changes in the actions.",
    )
    context_head: int = setting(
        0,
        "proto, rma, rma-online: hidden units of the head that maps the mean transition embedding to the "
        "hidden parameters (0: a linear head, whose estimate is the mean of one estimate per transition; "
        "> 0: one tanh layer, which can combine what different transitions tell).",
    )
    context_aux_steps: int = setting(20, "proto: extra supervised steps of the hidden-parameter head per iteration.")
    context_dropout: float = setting(
        0.0,
        "oracle, and rma's teacher: the probability that a training job runs with an all-zero context, so "
        "the policy also learns what to do before anything is known (rma runs it so until its first estimate).",
    )
    teacher_fraction: float = setting(
        0.6,
        "rma without --init-from: the share of the iterations that trains the privileged teacher (stage 1) "
        "before the estimator of the hidden parameters is fitted on the student's own episodes (stage 2).",
    )
    init_from: str | None = setting(
        None,
        "Start the meta-parameters from this checkpoint's policy (e.g. maml warm-started from the multitask "
        "policy: policies/pretrained/reach-multitask.pt); same architecture required.",
    )
    fallback: str | None = setting(
        None,
        "A checkpoint of the family whose policy acts without context (its multitask policy; 'multitask': "
        "the one shipped for the family): adapting "
        "runs it first and keeps it wherever it did better than this method (success, then return); the "
        "run's checkpoints carry it (adapt/evaluate/render --fallback override it).",
    )
    safe_adaptation: bool = setting(
        True,
        "Test-time updates: keep an update only if its episodes returned at least as much as the "
        "state it came from; otherwise retry at half the step.",
    )
    carry_context: bool = setting(
        True,
        "Context methods (rma, rma-online, identify, proto) when adapting: later episodes start from "
        "what earlier ones showed. false: every episode infers the robot afresh (rma-online: within "
        "the episode), for families whose hidden parameters earlier episodes do not tell.",
    )
    identify_actions: bool = setting(
        False,
        "Let the family's action identification set the action it models (grasp-v1: how hard to "
        "squeeze, bracketed from slips and breaks over the robot's episodes); the policy decides when.",
    )
    workers: int = setting(2, "Sampling worker processes (0: sample in the main process).")
    sampler: str = setting("local", "Where episodes are sampled: local (worker processes) or ray (a Ray cluster).")
    ray_address: str | None = setting(
        None, "Ray cluster to join with --sampler ray (e.g. ray://HOST:10001) [default: a local Ray instance]."
    )
    seed: int = setting(0, "Seed of task sampling, env resets and policy noise.")
    device: str = setting("cpu", "Torch device of the meta-parameters.")
    eval_tasks: int = setting(10, "Held-out test tasks of the final pre/post-adaptation summary.")

    def __post_init__(self) -> None:
        from metarobot.algorithms import algorithm_names

        if self.algo not in algorithm_names():
            raise MetarobotError(f"unknown algo {self.algo!r}; choose from {', '.join(algorithm_names())}")
        if self.sampler not in SAMPLERS:
            raise MetarobotError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        if not isinstance(self.safe_adaptation, bool):
            raise MetarobotError(f"safe-adaptation must be true or false, got {self.safe_adaptation!r}")
        if not isinstance(self.carry_context, bool):
            raise MetarobotError(f"carry-context must be true or false, got {self.carry_context!r}")
        if not isinstance(self.identify_actions, bool):
            raise MetarobotError(f"identify-actions must be true or false, got {self.identify_actions!r}")
        if self.identify_actions:
            from metarobot.online import action_identification_of

            action_identification_of(self.family)  # a one-line error where the family has none
        for name in ("init_from", "fallback", "ray_address"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise MetarobotError(f"{name.replace('_', '-')} must be a path or address, got {value!r}")
        validate_meta_config(self)  # every other field: type, range, device, this machine's limits

    @classmethod
    def resolve(cls, settings: Mapping[str, Any] | None = None, **given: Any) -> MetaConfig:
        """The settings of a run from what the user gave (API keywords, YAML, CLI options):
        dataclass defaults < the algorithm's ``defaults`` < the family's ``meta_defaults`` < the
        family's ``algo_defaults[algo]`` < ``settings``/``given``. The same input gives the same
        run whichever way it came in."""
        from metarobot.algorithms import get_algorithm
        from metarobot.registry import get_family

        asked = {**(settings or {}), **given}
        unknown = set(asked) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise MetarobotError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        base = cls()
        family = get_family(str(asked.get("family", base.family)))
        algo = get_algorithm(str(asked.get("algo", default_algo(family.name))))
        algo.check_family(family)
        merged = {**algo.defaults, **family.meta_defaults, **family.algo_defaults.get(algo.name, {}), **asked}
        return cls.from_dict({**base.to_dict(), **merged})

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Each setting's documentation (what ``--help`` shows)."""
        return {f.name: str(f.metadata.get("doc", "")) for f in dataclasses.fields(cls)}

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

    def sb3_ppo_kwargs(self) -> dict[str, Any]:
        """The keywords of an SB3 PPO (or sb3-contrib ``RecurrentPPO``) that these settings give:
        the PPO update's step size, epochs, discount, GAE, clip range, loss weights and seed."""
        return {
            "learning_rate": self.ppo_lr,
            "n_epochs": self.ppo_epochs,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "clip_range": self.clip_range,
            "ent_coef": self.ent_coef,
            "vf_coef": self.vf_coef,
            "seed": self.seed,
        }

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
