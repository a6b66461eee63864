"""Errors pytest-ckpt raises, each naming its culprit."""

from __future__ import annotations


class CkptError(Exception):
    """Base class: a problem with the user's setup, reported without a traceback."""


class FactoryError(CkptError):
    """A model factory could not be imported, raised, or built an unusable model."""


class UnknownFormatError(CkptError):
    """A format name that no format answers to."""


class UserFormatError(UnknownFormatError):
    """A user's format (``module:attr``) that cannot be imported, made or used."""


class CrashCheckError(CkptError):
    """A killed-save check that could not run: the save or the load failed with no kill at all,
    or the format writes outside its folder.  A problem of that format, not of the factory."""


class ConfigError(CkptError):
    """An option or ini value that makes no sense."""


class LoaderError(CkptError):
    """The loading side failed in a way that is no verdict (its process died, or a bug of ours)."""
