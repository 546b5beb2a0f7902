"""Policy networks and the shipped pretrained meta-policies (installed as ``metarobot.policies``)."""

from metarobot.policies.masked import MaskedActorCriticPolicy, zero_schedule

__all__ = ["MaskedActorCriticPolicy", "zero_schedule"]
