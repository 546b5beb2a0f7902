"""The task families' environments (installed as ``metarobot.envs``)."""
