"""The framework's chatter: warnings worth quoting, noise worth hiding.

Keras prints the legacy-HDF5 notice and NumPy deprecations on every save,
TensorFlow warns about "tf.function retracing" once a few checks have
compiled their own functions: thousands of copies would bury the report.
But a warning such as "Skipping variable loading for optimizer" explains a
failure, so messages are kept, de-duplicated, for the report.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager


@contextmanager
def framework_chatter():
    """Collect the framework's warnings (yielded list) and keep its logs quiet."""
    loggers = [logging.getLogger(name) for name in ("absl", "tensorflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    messages: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        for w in caught:
            text = str(w.message).strip()
            if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
                continue
            if text not in messages and "legacy" not in text:
                messages.append(text)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
