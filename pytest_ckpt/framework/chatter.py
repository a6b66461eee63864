"""The framework's chatter: warnings worth quoting, noise worth hiding.

Keras prints the legacy-HDF5 notice and NumPy deprecations on every save,
TensorFlow warns about "tf.function retracing" once a few checks have
compiled their own functions: thousands of copies would bury the report.
But a warning such as "Skipping variable loading for optimizer" explains a
failure, so messages are kept, de-duplicated, for the report.
"""

from __future__ import annotations

import logging
import re
import warnings
from contextlib import contextmanager
from typing import Any

from pytest_ckpt.framework.messages import is_noise


@contextmanager
def framework_chatter() -> Any:
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
            if text not in messages and not is_noise(text):
                messages.append(text)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


# TensorFlow's C++ log lines ("I0000 00:00:1795921339.534413    4488 cudart_stub.cc:31] ...")
# and its start-up banners: printed when TensorFlow is imported, they end up
# in a failing test's captured stderr and read like the cause of the failure.
_STARTUP_NOISE = re.compile(
    r"^(?:[IWEFV]\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|.*This TensorFlow binary is optimized to use available CPU instructions.*"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)$")


def without_startup_noise(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not _STARTUP_NOISE.match(line))
