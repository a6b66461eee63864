"""Errors pytest-ckpt raises, each naming its culprit."""

from __future__ import annotations


class CkptError(Exception):
    """Base class: a problem with the user's setup, reported without a traceback."""


class FactoryError(CkptError):
    """A model factory could not be imported, raised, or built an unusable model."""


class UnknownFormatError(CkptError):
    """A format name that no format answers to."""


class ConfigError(CkptError):
    """An option or ini value that makes no sense."""


class RoundTripFailure(AssertionError):
    """Some variable did not survive save/load; carries the result for the report."""

    def __init__(self, result):
        self.result = result
        super().__init__(result.summary())
