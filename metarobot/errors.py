"""User-facing errors: the CLI turns these into a one-line message and exit code 2."""


class MetarobotError(Exception):
    """Bad input or an unusable file: the message names the problem and is shown as is."""


class PhysicsError(MetarobotError):
    """The simulation blew up (NaN or exploding state)."""
