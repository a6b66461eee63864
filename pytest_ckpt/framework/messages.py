"""Facts from Keras's words: the one place that reads what Keras only says in text.

Decisions elsewhere are made from typed facts.  Where Keras gives a fact
only as a warning or an error message, it is parsed here, once, each
pattern tested against the message Keras 3.15 and tf-keras 2.21 print
(``tests/unit/framework/test_messages.py``).  A message Keras rewords makes the
fact unknown (None), never a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SKIPPED = re.compile(r"Skipping variable loading for optimizer '([^']*)', because it has (\d+) "
                      r"variables whereas the saved optimizer has (\d+) variables")
_UNKNOWN_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")
# Keras 3's notice on every legacy HDF5 save: noise, not a finding.
# Notices printed on every legacy HDF5 save and every Orbax restore.
_LEGACY_NOTICE = re.compile(r"You are saving your model as an HDF5 file via `model\.save\(\)`"
                            r"|^Sharding info not provided when restoring\.")


@dataclass(frozen=True)
class OptimizerSkipped:
    """Keras did not load the optimizer's state: it has ``loading`` variables, the file ``saved``."""

    optimizer: str
    loading: int
    saved: int


def optimizer_skipped(messages: list[str]) -> OptimizerSkipped | None:
    for text in messages:
        found = _SKIPPED.search(text)
        if found:
            return OptimizerSkipped(found.group(1), int(found.group(2)), int(found.group(3)))
    return None


def unknown_class(message: str) -> str | None:
    """The class ``load_model`` could not find, from its error message."""
    found = _UNKNOWN_CLASS.search(message)
    return found.group(1) if found else None


def unknown_class_line(message: str) -> str | None:
    """The whole sentence naming the class, to keep when a long message is cut."""
    found = re.search(_UNKNOWN_CLASS.pattern + r"[^\n]*", message)
    return found.group(0) if found else None


_DUPLICATE_PATH = re.compile(r"The following variable path is found twice in the model: '([^']+)'")


def duplicate_path(message: str) -> str | None:
    """The variable path ``get_state_tree`` found twice, from its error message."""
    found = _DUPLICATE_PATH.search(message)
    return found.group(1) if found else None


def is_noise(message: str) -> bool:
    """A notice Keras or Orbax prints on every save or restore of a format: never part of a report."""
    return bool(_LEGACY_NOTICE.search(message))


def describe(exc: BaseException) -> tuple[str, str]:
    """(exception class name, message), the message cut to a readable length."""
    message = str(exc).strip()
    if len(message) > 600:
        # Keras puts the class it could not find after the whole config: keep that line.
        unknown = unknown_class_line(message[600:])
        message = message[:600] + " ..." + (f" {unknown[:300]}" if unknown else "")
    return type(exc).__name__, message


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(exc: BaseException) -> str:
    """``Class: first line of the message``, without terminal colour codes (JAX's tracebacks)."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines[0] = f"{lines[0]} {lines[1]}"  # Keras's wrapper line: the cause is the next one
    return f"{type(exc).__name__}: {lines[0][:400] if lines else ''}".rstrip(": ")


def one_line(exc: BaseException) -> str:
    """``Class: message`` on one line, for messages that quote it inline."""
    return " ".join("{}: {}".format(*describe(exc)).split())
