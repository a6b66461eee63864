"""Where the loading side of a check runs: a fresh process (the default) or this one.

A checkpoint is loaded by another process than the one that saved it.  So
each pytest process (each xdist worker) keeps long-lived loading processes:
fresh interpreters that import the user's factory modules themselves, with
their own hash seed (another ``set`` iteration order), name counters and
module state.  Starting one costs an interpreter and a framework import
(seconds), paid once per worker; each check then builds its loading model
there, and each example is one load and a report of digests.

Two loading processes with two hash seeds, both unlike this process's
seed: a build that depends on the process (towers built from a set of
feature names) shows as a build whose layout differs from the saving
model's, and the check loads in a process where it does.  With one process
a two-element set would come out in the saving order half the time.

Messages are pickled over two pipes; the children's stdout goes to their
stderr, so a print in a factory cannot corrupt them.
"""

from __future__ import annotations

import atexit
import enum
import hashlib
import os
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from pytest_ckpt.errors import CkptError, LoaderError


class Isolation(enum.Enum):
    """Where a check's loading model lives."""

    PROCESS = "process"  # a fresh process: the user's situation
    INLINE = "inline"  # this process, with fresh name counters: faster, and weaker

    @property
    def weaker_note(self) -> str | None:
        if self is Isolation.PROCESS:
            return None
        return ("loaded in the saving process (--ckpt-isolation=inline): builds that depend on the "
                "process (hash seed, module state) cannot show")


ISOLATIONS = tuple(i.value for i in Isolation)
# Loading processes per pytest process: see the module docstring.
POOL_SIZE = 2


class Loader(Protocol):
    """A loading side: ``call("build", ...)``, ``call("load", ...)``... of :class:`LoadSide`."""

    @property
    def hash_seed(self) -> int | None: ...

    def call(self, method: str, *args: Any) -> Any: ...


class InlineLoader:
    """The loading side in this process."""

    hash_seed = None

    def __init__(self) -> None:
        from pytest_ckpt.checks.loading import LoadSide  # NumPy and the frameworks: only when checking

        self.side = LoadSide()

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.side, method)(*args)


PRELOAD_ENV = "PYTEST_CKPT_PRELOAD"


def child_env(hash_seed: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = str(hash_seed)
    # The frameworks this process runs: the child imports them while it waits for work.
    env[PRELOAD_ENV] = ",".join(m for m in ("tensorflow", "keras", "tf_keras", "torch", "jax") if m in sys.modules)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = sys.modules.get("keras")
    backend = getattr(getattr(keras, "backend", None), "backend", None)
    if callable(backend):  # the backend this process runs, whatever chose it
        env["KERAS_BACKEND"] = str(backend())
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    return env


class ProcessLoader:
    """A long-lived loading process; restarted when it dies."""

    def __init__(self, hash_seed: int) -> None:
        self.hash_seed = hash_seed
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        code = ("import sys; from pytest_ckpt.checks.isolation import serve; "
                f"serve({to_child_r}, {from_child_w})")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=(to_child_r, from_child_w),
                # Its stdout to our stderr: a print in a factory lands in the captured stderr.
                env=child_env(self.hash_seed), stdin=subprocess.DEVNULL, stdout=2)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        self._call("init", list(sys.path), os.getcwd())

    def call(self, method: str, *args: Any) -> Any:
        self.send(method, *args)
        return self.receive(method)

    def start(self) -> None:
        """Have a live process (started early, it imports the frameworks while we work)."""
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            self._start()

    def send(self, method: str, *args: Any) -> None:
        """Ask without waiting for the answer (see :meth:`receive`): loading processes work
        side by side."""
        self.start()
        assert self._send is not None
        try:
            self._send.send((method, args))
        except (OSError, BrokenPipeError):
            pass  # it died: receive() says how

    def _call(self, method: str, *args: Any) -> Any:
        assert self._send is not None
        self._send.send((method, args))
        return self.receive(method)

    def receive(self, method: str) -> Any:
        assert self._recv is not None and self._proc is not None
        try:
            status, value = self._recv.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self._proc.wait()
            self.close()
            how = f"signal {-code}" if code < 0 else f"exit status {code}"
            raise LoaderError(f"the loading process died ({how}) during {method}; its output is "
                              "in the captured stderr") from None
        if status == "ok":
            return value
        if status == "raise":
            raise value
        raise LoaderError(f"the loading process failed during {method}:\n{value}")

    def close(self) -> None:
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = self._send = self._recv = None


def hash_seeds(count: int) -> list[int]:
    """Seeds unlike this process's: derived from our pid, never 0 (no randomization)
    and never the PYTHONHASHSEED we run under."""
    mine = os.environ.get("PYTHONHASHSEED", "")
    seeds: list[int] = []
    salt = 0
    while len(seeds) < count:
        digest = hashlib.sha256(f"{os.getpid()}/{salt}".encode()).digest()
        seed = int.from_bytes(digest[:4], "big") % 4294967295 + 1
        salt += 1
        if str(seed) != mine and seed not in seeds:
            seeds.append(seed)
    return seeds


class _Pool:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loaders = [ProcessLoader(seed) for seed in hash_seeds(POOL_SIZE)]
        self.lock = threading.Lock()

    def close(self) -> None:
        for loader in self.loaders:
            loader.close()


_pool: _Pool | None = None


def process_loaders(start: bool = False) -> list[ProcessLoader]:
    """This process's loading processes (started on first use, stopped at exit)."""
    global _pool
    if _pool is None or _pool.pid != os.getpid():
        _pool = _Pool()
        atexit.register(_pool.close)
    if start:
        for loader in _pool.loaders:
            loader.start()
    return _pool.loaders


# -- the child's side ---------------------------------------------------------------------


def _preload() -> None:
    """Import the frameworks the parent runs before the first request is read further:
    the parent sends its first build right after starting us, and builds its own model
    meanwhile."""
    import importlib

    for name in filter(None, os.environ.get(PRELOAD_ENV, "").split(",")):
        try:
            importlib.import_module(name)
        except Exception:  # the factory's own import will say what is wrong
            pass


def serve(read_fd: int, write_fd: int) -> None:
    """The loading process's loop: one request, one answer, until the pipe closes."""
    from pytest_ckpt.checks.loading import LoadSide

    receive, answer = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    side = LoadSide()
    preloaded = False
    while True:
        try:
            method, args = receive.recv()
        except (EOFError, OSError):
            return
        try:
            if method == "init":
                sys.path[:] = args[0]
                os.chdir(args[1])
                answer.send(("ok", None))
                if not preloaded:  # while the parent builds its own model
                    _preload()
                    preloaded = True
                continue
            answer.send(("ok", getattr(side, method)(*args)))
        except CkptError as exc:
            answer.send(("raise", exc))
        except BaseException:  # a bug of ours, or of Keras: reported, not a crash
            answer.send(("fail", traceback.format_exc(limit=-30)))
