"""Saves that get killed: does the folder still hold a whole checkpoint?

A checkpoint A (one set of distinct values) is saved into a folder; then B
(other values) is saved over it by a process that is killed, for real
(SIGKILL), at a point of that save.  A fresh process then builds the model
and loads the folder: it must hold exactly A or exactly B, every model and
optimizer variable.  An error (A is gone) or a mix is a failure.

Kill points are the save's file operations, seen through Python's audit
hooks (``open`` for writing, ``os.rename``/``os.replace``, removals, folder
creation) and through h5py, whose C library writes without them (a file
created, a file about to close): the process is killed just before the
operation, or just after h5py created a file.  A first run of the save
counts them; up to ``points`` of them, spread evenly from the first to the
end of the save, are each killed in a process of their own.  Killing at
points the save itself names keeps the check deterministic: the same
points on every run, whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_ckpt.errors import ConfigError, CrashCheckError
from pytest_ckpt.framework.chatter import without_startup_noise
from pytest_ckpt.framework.formats import FormatNotApplicable, refuse_adapters_only
from pytest_ckpt.framework.tempfiles import workdir

POINTS = 8
_EXPECTED = "expected.npz"


class CrashState:
    """What a fresh process found in the folder after the kill."""

    OLD = "old"  # exactly A: the interrupted save left the previous checkpoint
    NEW = "new"  # exactly B: the save had finished what mattered
    LOST = "lost"  # loading raised: the previous checkpoint is gone
    MIXED = "mixed"  # some variables hold neither A's value nor B's, or some A and some B


@dataclass
class KillPoint:
    index: int  # 0-based: killed at the index-th file operation; len(events): after the save
    event: str  # what the save was about to do there, or had just done
    files: dict[str, int] = field(default_factory=dict)  # what the folder held after the kill
    state: str = ""
    error: str | None = None
    neither: list[str] = field(default_factory=list)  # variables holding neither A nor B
    # In a mix of A and B: the side fewer variables hold (the old ones, else the new ones).
    stale: list[str] = field(default_factory=list)
    mixed: bool = False

    @property
    def ok(self) -> bool:
        return self.state in (CrashState.OLD, CrashState.NEW)


@dataclass
class CrashOutcome:
    factory: str
    format: str
    events: list[str]
    points: list[KillPoint]
    # Files of A that save B changed while keeping them (same inode): rewritten in place, by
    # whatever means, so a kill part-way leaves them half old, half new even where no kill point
    # could split the writes (a memory map, positioned writes from C).
    in_place: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[KillPoint]:
        return [p for p in self.points if not p.ok]

    @property
    def passed(self) -> bool:
        return not self.failures and not self.in_place


def check_crash(factory: str, format_name: str, *, points: int = POINTS,
                tmp_root: str | Path | None = None) -> CrashOutcome:
    """Save A, kill the save of B at up to ``points`` points, load each in a fresh process."""
    if not isinstance(factory, str):
        raise ConfigError(f"check_crash needs the model factory as 'module:attr', not {type(factory).__name__}: "
                          "each save and load runs in a fresh process, which imports it by that name")
    with workdir(tmp_root, prefix="ckpt-crash-") as work:
        counted = _child(["save", factory, format_name, str(work / "count"), str(work), "-1"])
        if counted.returncode == _NOT_APPLICABLE:
            raise FormatNotApplicable(_answer(counted)["not_applicable"])
        if counted.returncode != 0:
            raise CrashCheckError(f"saving {factory} in format {format_name} failed before any kill:\n"
                                  f"{_tail(counted.stderr)}")
        answer = _answer(counted)
        if answer["outside"]:
            raise CrashCheckError(
                f"format {format_name} writes outside the folder it is given ({', '.join(answer['outside'][:3])}): "
                "a checkpoint whose files live elsewhere cannot be checked here, and a save killed "
                "part-way there is not seen; keep every file of a checkpoint in its folder")
        events = answer["events"]
        if not events:
            raise FormatNotApplicable(
                f"no file operation of the save in format {format_name} was seen (C code that writes "
                "without Python, such as TensorFlow's file system), so no kill could land inside it: "
                "this check cannot vouch for it")
        chosen = _choose(len(events), set(answer["writes"]), points)
        found = [_kill_at(factory, format_name, work, k, events) for k in chosen]
        _load_all(factory, format_name, work, found)
        return CrashOutcome(factory, format_name, events, found, answer["in_place"])


def _spread(items: list[int], wanted: int) -> list[int]:
    """Up to ``wanted`` of ``items``, evenly spread, first and last included."""
    if len(items) <= wanted:
        return list(items)
    if wanted <= 1:
        return items[:wanted]
    return sorted({items[round(i * (len(items) - 1) / (wanted - 1))] for i in range(wanted)})


def _choose(count: int, writes: set[int], wanted: int) -> list[int]:
    """The kill points among ``count`` events (and the end, ``count``): every boundary between
    files first (an in-place writer's old file is truncated there, a two-file save is half
    done there), then writes inside files spread over what is left (a file rewritten in place
    is half old, half new there)."""
    boundaries = [i for i in range(count) if i not in writes] + [count]
    inside = [i for i in range(count) if i in writes]
    # Half the points at least go to writes when there are any: a few small files written
    # safely beside one rewritten in place must not use up every point on their boundaries.
    for_writes = min(len(inside), max(wanted - len(boundaries), wanted // 2))
    return sorted(set(_spread(boundaries, wanted - for_writes)) | set(_spread(inside, for_writes)))


def _kill_at(factory: str, format_name: str, work: Path, index: int, events: list[str]) -> KillPoint:
    folder = work / f"kill-{index}"
    done = _child(["save", factory, format_name, str(folder), str(folder), str(index)])
    if done.returncode not in (-signal.SIGKILL, 0):
        raise CrashCheckError(f"the save of {factory} in format {format_name} failed:\n{_tail(done.stderr)}")
    event = events[index] if index < len(events) else "after the save returned"
    files = {str(p.relative_to(folder / "ckpt-folder")): p.stat().st_size
             for p in sorted((folder / "ckpt-folder").rglob("*")) if p.is_file()}
    return KillPoint(index, event, files)


def _load_all(factory: str, format_name: str, work: Path, found: list[KillPoint]) -> None:
    folders = [str(work / f"kill-{p.index}") for p in found]
    done = _child(["load", factory, format_name, json.dumps(folders)])
    if done.returncode != 0:
        raise CrashCheckError(f"the loading process of {factory} in format {format_name} failed:\n"
                              f"{_tail(done.stderr)}")
    for point, verdict in zip(found, _answer(done)):
        point.state, point.error, point.neither = verdict["state"], verdict["error"], verdict["neither"]
        point.stale = verdict.get("stale", [])


def _tail(text: str) -> str:
    return "\n".join(without_startup_noise(text).strip().splitlines()[-15:])


# A child's answer follows this marker on stdout: what the user's code prints comes before it.
_MARK = "\n@@pytest-ckpt-answer@@"


def _answer(done: subprocess.CompletedProcess[str]) -> Any:
    if _MARK not in done.stdout:
        raise CrashCheckError(f"a child process of the killed-save check gave no answer:\n{_tail(done.stderr)}")
    return json.loads(done.stdout.rsplit(_MARK, 1)[1])


def _say(answer: Any) -> None:
    sys.stdout.write(_MARK + json.dumps(answer) + "\n")
    sys.stdout.flush()


def _child(args: list[str]) -> subprocess.CompletedProcess[str]:
    from pytest_ckpt.checks.isolation import child_env

    env = child_env(0)
    env["PYTEST_CKPT_SYS_PATH"] = json.dumps(sys.path)
    return subprocess.run([sys.executable, "-c", "from pytest_ckpt.checks.crash import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=os.getcwd(), timeout=600)


# -- the children ---------------------------------------------------------------------


_NOT_APPLICABLE = 3  # a child's exit status: the format does not apply (its message on stdout)


def main() -> None:
    sys.path[:] = json.loads(os.environ.get("PYTEST_CKPT_SYS_PATH", "[]")) or sys.path
    what, factory, format_name, *rest = sys.argv[1:]
    try:
        if what == "save":
            _save_child(factory, format_name, Path(rest[0]), Path(rest[1]), int(rest[2]))
        else:
            _say([_load_one(factory, format_name, Path(f)) for f in json.loads(rest[0])])
    except FormatNotApplicable as exc:
        _say({"not_applicable": str(exc)})
        sys.exit(_NOT_APPLICABLE)


def _model_and_format(factory: str, format_name: str) -> tuple[Any, Any]:
    from pytest_ckpt.framework.detection import backend_of, framework_of
    from pytest_ckpt.framework.factories import as_callable, build
    from pytest_ckpt.framework.formats import get_format

    call, name = as_callable(factory)
    model = build(call, name)
    framework = framework_of(model) or "keras3"
    fmt = get_format(format_name, framework, backend_of(framework))
    refuse_adapters_only(fmt, "the killed-save check")
    optimizer = getattr(model, "optimizer", None)
    unfit = fmt.unfit(model, f"the model of factory {name}")
    if unfit is not None:
        raise FormatNotApplicable(unfit)
    if optimizer is not None and not getattr(optimizer, "built", False):
        # Training builds it at its first step; checkpoints are saved after that.
        optimizer.build(model.trainable_variables)
    return model, fmt


# Where training stands, for formats that restore it: compared as one more value.
_EPOCH = "fit: the epoch training goes on from"


def _state(model: Any) -> list[tuple[str, Any]]:
    """Every model and optimizer variable, with a name that is the same in every process."""
    found = [(f"model/{i}:{v.path if hasattr(v, 'path') else v.name}", v) for i, v in enumerate(model.weights)]
    optimizer = getattr(model, "optimizer", None)
    variables = getattr(optimizer, "variables", None) or []
    found += [(f"optimizer/{i}", v) for i, v in enumerate(variables() if callable(variables) else variables)]
    return found


def _read(variable: Any) -> np.ndarray:
    from pytest_ckpt.framework.bulk import read
    from pytest_ckpt.framework.values import widened

    value = widened(read(variable))
    assert value is not None
    return np.asarray(value, dtype=np.float64) if value.dtype.kind in "fiub" else value


def _fill(state: list[tuple[str, Any]], seed: int) -> dict[str, np.ndarray]:
    """Every variable a value of its own: A and B differ everywhere."""
    from pytest_ckpt.framework.values import numpy_dtype

    rng = np.random.default_rng(seed)
    held = {}
    for name, v in state:
        shape, dtype = tuple(int(d) for d in v.shape), numpy_dtype(v)
        if dtype.kind in "iu":
            v.assign(rng.integers(1, 100, size=shape).astype(dtype))
        elif dtype.kind != "b":
            value = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
            v.assign(value.astype(dtype))
        held[name] = _read(v)
    return held


def _save_child(factory: str, format_name: str, folder: Path, work: Path, kill_at: int) -> None:
    model, fmt = _model_and_format(factory, format_name)
    target = folder / "ckpt-folder"
    target.mkdir(parents=True)
    path = fmt.path_in(target)
    state = _state(model)
    a = _fill(state, 1)
    fmt.save(model, path)
    b = _fill(state, 2)
    if fmt.restores_epoch:  # each save is the end of the next epoch: fit goes on from 1, then 2
        a[_EPOCH], b[_EPOCH] = np.array(1.0), np.array(2.0)
    both: dict[str, Any] = {**{f"a/{k}": v for k, v in a.items()}, **{f"b/{k}": v for k, v in b.items()}}
    np.savez(work / _EXPECTED, **both)
    events: list[str] = []
    outside: list[str] = []
    # Only the counting run (no kill) needs the files' identities: a killed run never reports.
    kept = _identities(target) if kill_at < 0 else {}
    _watch(str(target), events, kill_at, outside)
    fmt.save(model, path)
    _at(events, kill_at, "after the save returned", record=False)
    now = _identities(target) if kill_at < 0 else {}
    in_place = sorted(name for name, (inode, digest) in kept.items()
                      if name in now and now[name][0] == inode and now[name][1] != digest)
    # Scratch files the save removed again (Keras stages a .keras file in a temporary folder)
    # are no part of the checkpoint; what is left outside the folder is.
    _say({"events": events, "writes": _WRITES, "in_place": in_place,
          "outside": sorted({p for p in outside if os.path.exists(p)})})


def _identities(folder: Path) -> dict[str, tuple[tuple[int, int], str]]:
    """Each file under ``folder``: (device, inode) and a digest of its bytes."""
    import hashlib

    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            found[str(path.relative_to(folder))] = ((stat.st_dev, stat.st_ino),
                                                    hashlib.sha256(path.read_bytes()).hexdigest())
    return found


# Indices of the events that are writes inside a file (the rest open, create, close,
# rename or remove files: the boundaries between a save's files).
_WRITES: list[int] = []


def _at(events: list[str], kill_at: int, what: str, record: bool = True, write: bool = False) -> None:
    if len(events) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if record:
        if write:
            _WRITES.append(len(events))
        events.append(what)


def _watch(root: str, events: list[str], kill_at: int, outside: list[str]) -> None:
    """Count (and at ``kill_at``, die at) each file operation under ``root``; note writes elsewhere."""
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    work = os.path.dirname(root)

    def inside(path: Any) -> str | None:
        text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
        return os.path.relpath(text, root) if text.startswith(root) else None


    def note_outside(path: Any) -> None:
        text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
        if text and not text.startswith(work) and len(outside) < 10:
            outside.append(text)

    def hook(event: str, args: tuple) -> None:
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = (args[1] or ""), (args[2] or 0)
            writing = any(c in str(mode) for c in "wax+") or flags & writes
            if writing and inside(args[0]) is not None:
                _at(events, kill_at, f"about to open {inside(args[0])} for writing")
            elif writing:
                note_outside(args[0])
        elif event in ("os.rename", "os.replace") and len(args) > 1 and inside(args[0]) is not None:
            _at(events, kill_at, f"about to {event.split('.')[1]} {inside(args[0])} -> {inside(args[1])}")
        elif event in ("os.remove", "os.rmdir", "shutil.rmtree", "os.mkdir", "os.truncate") and args \
                and inside(args[0]) is not None:
            _at(events, kill_at, f"about to {event.split('.')[1]} {inside(args[0])}")

    sys.addaudithook(hook)
    _watch_renamed(inside, events, kill_at)
    _watch_opened(inside, events, kill_at)
    _watch_descriptors(inside, events, kill_at)
    _watch_h5py(inside, events, kill_at, note_outside)


def _watch_renamed(inside: Any, events: list[str], kill_at: int) -> None:
    """Just after a rename under the folder: a file renamed before it was flushed and closed
    is empty or short under its final name there."""
    def after(real: Any) -> Any:
        def call(source: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            done = real(source, target, *args, **kwargs)
            if inside(target) is not None:
                _at(events, kill_at, f"just renamed {inside(source) or source} -> {inside(target)}")
            return done
        return call

    os.rename, os.replace = after(os.rename), after(os.replace)  # type: ignore[assignment]


def _watch_opened(inside: Any, events: list[str], kill_at: int) -> None:
    """After a file is opened for writing (truncated, nothing written), and before a zip's
    index is written: the states in-place writers leave when killed."""
    import builtins
    import io
    import zipfile

    opened, close = io.open, zipfile.ZipFile.close

    def opening(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = opened(file, mode, *args, **kwargs)
        where = inside(file)
        if where is not None and any(c in mode for c in "wax+"):
            _at(events, kill_at, f"{where} just opened for writing, nothing written yet")
            # Each write is a point too: code that rewrites a file in place ("r+") never truncates it.
            return _WatchedFile(handle, where, events, kill_at)
        return handle

    def closing(self: Any) -> None:
        where = inside(getattr(self, "filename", None) or "")
        if where is not None and self.mode in "wax" and self.fp is not None:
            _at(events, kill_at, f"about to close {where} (a zip's index is written at close)")
        close(self)

    builtins.open = io.open = opening  # type: ignore[assignment]
    zipfile.ZipFile.close = closing  # type: ignore[method-assign]


class _WatchedFile:
    """A file object whose writes and truncations are kill points; the rest passes through."""

    def __init__(self, handle: Any, where: str, events: list[str], kill_at: int) -> None:
        self._handle, self._where, self._events, self._kill_at = handle, where, events, kill_at

    def _point(self, what: str) -> None:
        offset = self._handle.tell() if self._handle.seekable() else "?"
        _at(self._events, self._kill_at, f"about to {what} {self._where} at byte {offset}", write=True)

    def write(self, data: Any) -> Any:
        self._point(f"write {len(data)} bytes to")
        return self._handle.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def truncate(self, size: Any = None) -> Any:
        self._point("truncate")
        return self._handle.truncate(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _WatchedFile:
        self._handle.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._handle.__exit__(*exc)

    def __iter__(self) -> Any:
        return iter(self._handle)


def _watch_descriptors(inside: Any, events: list[str], kill_at: int) -> None:
    """os.open with O_TRUNC or O_CREAT, and each os.write to such a descriptor: code that writes
    below the file objects (NumPy's tofile does, and so may a user's)."""
    opened, write = os.open, os.write
    watched: dict[int, str] = {}
    writes = os.O_WRONLY | os.O_RDWR

    def opening(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = opened(path, flags, *args, **kwargs)
        where = inside(path)
        if where is not None and flags & writes:
            watched[fd] = where
            _at(events, kill_at, f"{where} just opened (os.open), nothing written yet")
        return fd

    def writing(fd: int, data: Any) -> int:
        where = watched.get(fd)
        if where is not None:
            _at(events, kill_at, f"about to write {len(data)} bytes to {where} (os.write)", write=True)
        return write(fd, data)

    def watching(name: str, real: Any) -> Any:
        def call(fd: int, *args: Any) -> Any:
            where = watched.get(fd)
            if where is not None:
                _at(events, kill_at, f"about to {name} {where}", write=True)
            return real(fd, *args)
        return call

    os.open, os.write = opening, writing  # type: ignore[assignment]
    for name in ("pwrite", "writev", "pwritev", "ftruncate"):
        if hasattr(os, name):
            setattr(os, name, watching(f"{name} (os.{name})", getattr(os, name)))


def _watch_h5py(inside: Any, events: list[str], kill_at: int, note_outside: Any) -> None:
    try:
        import h5py
    except ImportError:
        return
    create, close = h5py.File.__init__, h5py.File.close

    def created(self: Any, name: Any, mode: str = "r", *args: Any, **kwargs: Any) -> None:
        where = inside(name)
        if where is not None and mode != "r":
            verb = "create" if mode in ("w", "w-", "x") else "open"
            _at(events, kill_at, f"about to {verb} {where} with h5py (mode {mode})")
        elif mode != "r" and isinstance(name, (str, bytes, os.PathLike)):
            note_outside(name)
        create(self, name, mode, *args, **kwargs)
        if where is not None and mode != "r":
            _at(events, kill_at, f"{where} just opened by h5py (mode {mode}), nothing written yet")

    def closing(self: Any) -> None:
        where = inside(getattr(self, "filename", "")) if self.id.valid else None
        if where is not None and self.mode != "r":
            _at(events, kill_at, f"about to close {where} (h5py writes its data out at close)")
        close(self)

    h5py.File.__init__, h5py.File.close = created, closing
    _watch_h5py_writes(h5py, inside, events, kill_at)


def _watch_h5py_writes(h5py: Any, inside: Any, events: list[str], kill_at: int) -> None:
    """Each dataset h5py writes (created with data, or assigned in place in mode r+)."""
    assign, create = h5py.Dataset.__setitem__, h5py.Group.create_dataset

    def where(node: Any) -> str | None:
        try:
            return inside(node.file.filename)
        except Exception:  # a closed or in-memory file: not a checkpoint file of the folder
            return None

    def assigning(self: Any, key: Any, value: Any) -> None:
        at = where(self)
        if at is not None:
            _at(events, kill_at, f"about to write dataset {self.name} of {at} (h5py)", write=True)
        assign(self, key, value)

    def creating(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
        at = where(self)
        if at is not None and (kwargs.get("data") is not None or len(args) > 2):
            # Group["x"] = array creates an anonymous dataset first, then links it.
            shown = name if name is not None else f"{self.name} (new)"
            _at(events, kill_at, f"about to write dataset {shown} of {at} (h5py)", write=True)
        return create(self, name, *args, **kwargs)

    h5py.Dataset.__setitem__, h5py.Group.create_dataset = assigning, creating


def _load_one(factory: str, format_name: str, folder: Path) -> dict[str, Any]:
    from pytest_ckpt.framework.messages import one_line

    expected = np.load(folder / _EXPECTED)
    model, fmt = _model_and_format(factory, format_name)
    path = fmt.path_in(folder / "ckpt-folder")
    try:
        holder = fmt.load(model, path)
    except Exception as exc:
        return {"state": CrashState.LOST, "error": one_line(exc)[:400], "neither": []}
    got = dict((name, _read(v)) for name, v in _state(holder))
    if fmt.restores_epoch:
        epoch = fmt.resume_epoch(holder)
        got[_EPOCH] = np.array(float("nan") if epoch is None else float(epoch))
    a = {k[2:]: expected[k] for k in expected.files if k.startswith("a/")}
    b = {k[2:]: expected[k] for k in expected.files if k.startswith("b/")}
    holds_a = {k for k, v in got.items() if k in a and np.array_equal(v, a[k], equal_nan=True)}
    holds_b = {k for k, v in got.items() if k in b and np.array_equal(v, b[k], equal_nan=True)}
    if holds_a == set(a):
        return {"state": CrashState.OLD, "error": None, "neither": []}
    if holds_b == set(b):
        return {"state": CrashState.NEW, "error": None, "neither": []}
    neither = sorted(set(a) - holds_a - holds_b)
    only_a, only_b = sorted(holds_a - holds_b), sorted(holds_b - holds_a)
    stale = only_a if len(only_a) <= len(only_b) else only_b
    return {"state": CrashState.MIXED, "error": None, "neither": neither, "stale": stale}
