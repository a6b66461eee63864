"""Temporary folders and files that are removed however the run ends.

A check works in a fresh folder under the system temp dir (or
``--ckpt-tmpdir``); a golden is written to temporary names beside its final
ones.  Normal exits and Ctrl-C (KeyboardInterrupt unwinds through the
``finally`` blocks) clean up on their own; a cancelled CI job sends SIGTERM,
whose default action kills the process on the spot.  So every live path is
registered, and a SIGTERM handler removes them before letting the signal
do what it would have done.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_live: set[Path] = set()
_installed = False
_previous = None


def _remove_all() -> None:
    for path in list(_live):
        _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    _live.discard(path)


def _on_sigterm(signum: Any, frame: Any) -> None:
    _remove_all()
    previous = _previous
    if callable(previous):
        previous(signum, frame)
        return
    # The default action (or SIG_IGN): put it back and deliver the signal again.
    signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if previous != signal.SIG_IGN:
        os.kill(os.getpid(), signal.SIGTERM)


def _install() -> None:
    global _installed, _previous
    if _installed:
        return
    _installed = True
    atexit.register(_remove_all)
    if threading.current_thread() is threading.main_thread():
        _previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)


def register(path: Path) -> Path:
    _install()
    _live.add(Path(path))
    return Path(path)


def release(path: Path) -> None:
    """``path`` is gone or has become permanent (a golden renamed into place)."""
    _live.discard(Path(path))


@contextmanager
def workdir(tmp_root: str | Path | None, prefix: str = "pytest-ckpt-") -> Any:
    """A fresh temporary folder, removed afterwards whatever happens."""
    path = register(Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_root)))
    try:
        yield path
    finally:
        _remove(path)
