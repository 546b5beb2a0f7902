"""Contexts that a rollout computes as it goes: the per-step side of the sampler protocol.

A context-conditioned policy reads ``[obs; context]``. For most algorithms the context is fixed
for a job (the oracle's true parameters, proto's or rma's estimate from earlier episodes): a
``ConstantContext``. An *online* estimator (``rma-online``) updates it after every step from the
transitions seen so far -- earlier episodes' (its prior) and this episode's -- so a robot is
identified within its first steps, as RMA's own adaptation module does on hardware.

Both are ``ContextStream``s over ``n`` env slots stepped in lockstep: ``contexts()`` gives the
``(n, d)`` rows the policy reads now, ``observe(rows, transitions)`` adds transitions
``(o, a, r, o' - o)`` (``transition_rows``) of the slots ``rows``. Sampling workers and
``render`` drive them the same way, so what is rendered is what was measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch


class ContextStream(Protocol):
    def contexts(self) -> np.ndarray:
        """``(n, d)`` float32: the context each env slot's policy reads now."""

    def observe(self, rows: np.ndarray, transitions: np.ndarray) -> None:
        """Add one transition per slot in ``rows`` (``transitions`` is ``(len(rows), D)``)."""


def transition_rows(obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """``(o, a, r, o' - o)`` rows, laid out as ``proto.transitions`` lays out a rollout's."""
    reward = np.asarray(reward, dtype=np.float32).reshape(-1, 1)
    return np.concatenate([obs, action, reward, next_obs - obs], axis=1).astype(np.float32)


class ConstantContext:
    """The same context for every slot and step (or none: zero columns)."""

    def __init__(self, context: np.ndarray | None, n: int) -> None:
        row = np.zeros((1, 0), np.float32) if context is None else np.asarray(context, np.float32).reshape(1, -1)
        self._rows = np.repeat(row, n, axis=0)

    def contexts(self) -> np.ndarray:
        return self._rows

    def observe(self, rows: np.ndarray, transitions: np.ndarray) -> None:
        pass


@dataclasses.dataclass
class OnlineEstimator:
    """A picklable transition encoder and head that a worker runs online (see module doc).

    The estimate of a slot after ``m`` transitions of its own is
    ``head((prior_sum + sum of their embeddings) / (prior_count + m))``, the same running mean
    of per-transition embeddings that ``proto``/``rma`` take over whole episodes; all zeros
    while nothing at all has been seen (the teacher was trained to act on that too)."""

    encoder_state: dict[str, torch.Tensor]
    head_state: dict[str, torch.Tensor]
    obs_dim: int
    act_dim: int
    embed_dim: int
    prior_sum: torch.Tensor
    prior_count: float

    def build(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        from metarobot.algorithms.proto import TransitionEncoder, head_from_state

        encoder = TransitionEncoder(self.obs_dim, self.act_dim, self.embed_dim)
        encoder.load_state_dict(self.encoder_state)
        return encoder.eval(), head_from_state(self.head_state).eval()

    def start(self, n: int) -> OnlineStream:
        return OnlineStream(self, n)


class OnlineStream:
    """``n`` slots' running embedding sums, each starting from the estimator's prior."""

    def __init__(self, spec: OnlineEstimator, n: int) -> None:
        from metarobot.algorithms.proto import head_out_dim

        self.encoder, self.head = spec.build()
        self.sums = np.repeat(spec.prior_sum.detach().numpy().reshape(1, -1).astype(np.float64), n, axis=0)
        self.counts = np.full(n, float(spec.prior_count))
        self.out_dim = head_out_dim(spec.head_state)
        self._cache: np.ndarray | None = None

    def contexts(self) -> np.ndarray:
        if self._cache is None:
            out = np.zeros((len(self.counts), self.out_dim), np.float32)
            seen = self.counts > 0
            if seen.any():
                mean = torch.as_tensor(self.sums[seen] / self.counts[seen, None], dtype=torch.float32)
                with torch.no_grad():
                    out[seen] = self.head(mean).numpy()
            self._cache = out
        return self._cache

    def observe(self, rows: np.ndarray, transitions: np.ndarray) -> None:
        if len(rows) == 0:
            return
        with torch.no_grad():
            emb = self.encoder(torch.as_tensor(transitions, dtype=torch.float32)).double().numpy()
        np.add.at(self.sums, rows, emb)
        np.add.at(self.counts, rows, 1.0)
        self._cache = None


class Identification(Protocol):
    """A family's model of how a robot's hidden parameters show in its transitions, and of the
    controller that uses them (classic system identification; the ``identify`` algorithm).

    The estimate is a function of sums of per-transition statistics (least-squares normal
    equations, say), so it runs online as ``OnlineEstimator`` does, and earlier adaptation
    episodes' sums are its prior."""

    #: floats of the estimate (the context the policy reads)
    dim: int
    #: floats of one transition's statistics
    stats_dim: int

    def statistics(self, transitions: np.ndarray) -> np.ndarray:
        """``(m, stats_dim)``: each transition's ``(o, a, r, o' - o)`` row's statistics."""

    def estimate(self, sums: np.ndarray) -> np.ndarray:
        """``(n, dim)`` float32 estimates from ``(n, stats_dim)`` sums of statistics."""

    def action(self, obs: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        """The model's action for observations ``(..., obs_dim)`` under ``estimate`` ``(..., dim)``."""


def identification_of(family: str) -> Identification:
    """The identification model of the family named ``family`` (a one-line error if it has none)."""
    from metarobot.errors import MetarobotError
    from metarobot.registry import get_family

    ident = get_family(family).identification()
    if ident is None:
        raise MetarobotError(
            f"family {family!r} has no identification model (reach-v2, navigate and navigate-v1 have one)"
        )
    return ident


@dataclasses.dataclass
class IdentifiedContext:
    """A picklable online context of a family's ``Identification``: each slot's sums start at
    ``prior`` (the sums of earlier adaptation episodes) and grow with every transition."""

    family: str
    prior: np.ndarray

    def start(self, n: int) -> IdentifiedStream:
        return IdentifiedStream(identification_of(self.family), self.prior, n)


class _StatisticSums:
    """``n`` slots' sums of a model's per-transition statistics, each starting at ``prior``."""

    def __init__(self, statistics: Callable[[np.ndarray], np.ndarray], prior: np.ndarray, n: int) -> None:
        self._statistics = statistics
        self.prior = np.asarray(prior, np.float64).reshape(1, -1)
        self.sums = np.repeat(self.prior, n, axis=0)

    def observe(self, rows: np.ndarray, transitions: np.ndarray) -> None:
        if len(rows) == 0:
            return
        np.add.at(self.sums, rows, self._statistics(np.asarray(transitions, np.float64)))


class IdentifiedStream(_StatisticSums):
    """``n`` slots' sums of identification statistics and the estimates they give."""

    def __init__(self, ident: Identification, prior: np.ndarray, n: int) -> None:
        super().__init__(ident.statistics, prior, n)
        self.ident = ident
        self._cache: np.ndarray | None = None

    def contexts(self) -> np.ndarray:
        if self._cache is None:
            self._cache = np.asarray(self.ident.estimate(self.sums), np.float32)
        return self._cache

    def observe(self, rows: np.ndarray, transitions: np.ndarray) -> None:
        super().observe(rows, transitions)
        self._cache = None


class ActionIdentification(Protocol):
    """A family's model of an action whose right value is a hidden property of the robot that
    shows only in what the action does: grasp-v1's squeeze, which holds an object inside a
    window (too light: it slips; too hard: it breaks) whose place depends on the object's mass,
    both frictions, the motors' strength and the object's fragility.

    The identification sets that action itself (``apply``): the policy still decides *when* to
    squeeze, the identification *how hard*, from sums of per-transition statistics over every
    transition seen on the robot (earlier adaptation episodes' and this episode's), as
    ``Identification`` does for a context. ``command`` may spread the ``n`` env slots of a job
    over what is still possible, so that one batch of episodes explores in parallel."""

    #: floats of one transition's statistics
    stats_dim: int

    def statistics(self, transitions: np.ndarray) -> np.ndarray:
        """``(m, stats_dim)``: each ``(o, a, r, o' - o)`` row's statistics (rows of the action sent)."""

    def command(self, sums: np.ndarray, n: int) -> np.ndarray:
        """``(len(sums),)``: the value each slot ``j`` of ``n`` (row ``j`` of ``sums``) sends now."""

    def apply(self, actions: Any, values: Any) -> Any:
        """``actions`` ``(n, act_dim)`` with the identified values ``(n,)`` put in where they
        apply: a new array (numpy for the sampler, torch for an exported policy)."""


def action_identification_of(family: str) -> ActionIdentification:
    """The action identification model of the family named ``family`` (a one-line error if none)."""
    from metarobot.errors import MetarobotError
    from metarobot.registry import get_family

    ident = get_family(family).action_identification()
    if ident is None:
        raise MetarobotError(f"family {family!r} has no identified action (grasp-v1 has one: its squeeze)")
    return ident


@dataclasses.dataclass
class IdentifiedActions:
    """A picklable action identification for a job: each slot's sums start at ``prior`` (the
    sums of earlier adaptation episodes) and grow with every transition."""

    family: str
    prior: np.ndarray

    def start(self, n: int) -> ActionStream:
        return ActionStream(action_identification_of(self.family), self.prior, n)


class ActionStream(_StatisticSums):
    """``n`` slots' sums of action-identification statistics; ``apply`` sets the identified
    action of each slot, ``added`` is what the job's own transitions added (per slot)."""

    def __init__(self, ident: ActionIdentification, prior: np.ndarray, n: int) -> None:
        super().__init__(ident.statistics, prior, n)
        self.ident = ident

    def apply(self, actions: np.ndarray) -> np.ndarray:
        return self.ident.apply(actions, self.ident.command(self.sums, len(self.sums)))

    @property
    def added(self) -> np.ndarray:
        """``(n, stats_dim)``: the statistics of this job's transitions, per slot."""
        return self.sums - self.prior
