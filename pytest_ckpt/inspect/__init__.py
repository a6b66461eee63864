"""The ``pytest-ckpt`` command: checkpoint file readers, ``inspect`` and ``diff``."""
