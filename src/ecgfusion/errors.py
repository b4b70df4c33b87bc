"""Errors a user can act on.

Every error raised for bad input is an :class:`EcgFusionError` whose message is one line that
names the file (or key) and the fix; the CLI prints it and exits non-zero, never a traceback.
"""

from __future__ import annotations


class EcgFusionError(Exception):
    """Base class: the message is shown to the user as is, on one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class DataError(EcgFusionError):
    """A record, database, CSV or cache is missing, corrupt or not what it claims to be."""


class ConfigError(EcgFusionError):
    """A config key, type or value is wrong."""


class LeakageError(EcgFusionError):
    """A patient-disjoint protocol has the same patient in two parts."""


class ShapeError(EcgFusionError, ValueError):
    """A tensor reached a model boundary with the wrong shape."""
