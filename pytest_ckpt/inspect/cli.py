"""``pytest-ckpt inspect FILE`` and ``pytest-ckpt diff A B`` (also ``python -m pytest_ckpt``).

Exit codes: 0 fine / identical, 1 the checkpoints differ, 2 a file could not be read
(one line ``error: FILE: what is wrong`` on stderr), 141 the output was cut short by a closed
pipe (``| head``).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import hashlib
import io
import json
import math
import os
import select
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from pytest_ckpt.framework.messages import one_line
from pytest_ckpt.inspect import readers as checkpoint_files
from pytest_ckpt.inspect.readers import (
    BLOCK_BYTES,
    Checkpoint,
    CheckpointFileError,
    StoredVariable,
    block_indexes,
    dtype_name,
    is_tf_checkpoint,
    open_checkpoint,
)
from pytest_ckpt.report.diagnosis import MAX_ROWS


def _size(ckpt: Checkpoint) -> str:
    sizes = [v.nbytes for v in ckpt.variables]
    unsized = sizes.count(None)
    text = f"{sum(s for s in sizes if s is not None):,} bytes"
    return text + (f" + {unsized} variable-length" if unsized else "")


def inspect(path: str, as_json: bool = False) -> int:
    with open_checkpoint(path) as ckpt:
        if as_json:
            print(json.dumps({
                "path": ckpt.path, "format": ckpt.format, "notes": ckpt.notes,
                "variables": [{"key": v.key, "group": v.group, "name": v.name or None,
                               "position": v.position, "shape": list(v.shape),
                               "dtype": dtype_name(v.dtype), "bytes": v.nbytes,
                               "optimizer": v.optimizer}
                              for v in ckpt.variables]}, indent=1))
            return 0
        print(f"{ckpt.path}: format {ckpt.format}, {len(ckpt.variables)} variables, {_size(ckpt)}")
        for note in ckpt.notes:
            print(f"  note: {note}")
        group = None
        for v in ckpt.variables:
            if v.group != group:
                group = v.group
                print(f"  [{group or '/'}]" + (" optimizer state" if v.optimizer else ""))
            stored = v.key.removeprefix(f"{group}/") if group else v.key
            where = f"#{v.position} " if v.position is not None else ""
            own_name = f"  {v.name}" if v.name and v.name != stored else ""
            print(f"    {where}{stored}  {v.shape} {dtype_name(v.dtype)}{own_name}")
    return 0


def _same(p: np.ndarray, q: np.ndarray) -> bool:
    """Equal values, NaN equal to NaN; object arrays (ragged rows, strings) element by element."""
    if p.shape != q.shape or p.dtype.hasobject != q.dtype.hasobject:
        return False
    if not p.dtype.hasobject:
        # equal_nan costs an isnan pass: only for blocks that differ at all.
        return np.array_equal(p, q) or (p.dtype.kind in "fc" and q.dtype.kind in "fc"
                                        and np.array_equal(p, q, equal_nan=True))
    for x, y in zip(p.flat, q.flat):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
                    and x.dtype == y.dtype and _same(x, y)):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _fill(v: StoredVariable) -> Any:
    try:
        return v.fill()
    except Exception:  # then the values are read, and a damaged file reported there
        return None


def _compare(a: Checkpoint, x: StoredVariable, b: Checkpoint, y: StoredVariable) -> Any:
    """(equal, max |x-y| or None when not numeric, digest of x, digest of y), block by block."""
    numeric = x.dtype.kind in "iufc"  # bool, bytes, strings and objects have no |A-B|
    limit = BLOCK_BYTES if x.sliceable and y.sliceable else None
    equal, worst = True, 0.0
    digests = None if x.dtype.hasobject else (hashlib.sha1(), hashlib.sha1())
    blocks: Iterable[tuple[Any, Any]] = ((a.read(x, index), b.read(y, index))
                                         for index in block_indexes(x.shape, x.dtype.itemsize, limit))
    if math.prod(x.shape):
        fills = _fill(x), _fill(y)
        if fills[0] is not None and fills[1] is not None:
            # Nothing stored on either side: every element is its fill value.  No digest, as a
            # digest of the one value would not match that of the same values stored.
            blocks, digests = [fills], None
    for p, q in blocks:
        if digests:
            digests[0].update(p.tobytes())
            digests[1].update(q.tobytes())
        if _same(p, q):
            continue
        equal = False
        if numeric and p.shape == q.shape:
            wide = np.result_type(p.dtype, np.float64)
            with np.errstate(all="ignore"):
                gap = np.abs(p.astype(wide) - q.astype(wide))
            worst = float(np.fmax(worst, np.fmax.reduce(gap, axis=None)))
    digest_x, digest_y = (d.hexdigest() for d in digests) if digests else (None, None)
    return equal, (worst if numeric else None), digest_x, digest_y


def _load_order_rows(a: Checkpoint, b: Checkpoint) -> list[str]:
    """Where legacy load_weights() would assign a different saved weight to the same place."""
    if a.load_order is None or b.load_order is None:
        return []
    rows = []
    groups_a, groups_b = list(a.load_order), list(b.load_order)
    for k in range(max(len(groups_a), len(groups_b))):
        ga = groups_a[k] if k < len(groups_a) else "nothing"
        gb = groups_b[k] if k < len(groups_b) else "nothing"
        if ga != gb:
            rows.append(f"layer group position #{k}: A has {ga}, B has {gb}")
    for group in (g for g in groups_a if g in b.load_order):
        names_a, names_b = a.load_order[group], b.load_order[group]
        for i in range(max(len(names_a), len(names_b))):
            wa = names_a[i] if i < len(names_a) else "nothing"
            wb = names_b[i] if i < len(names_b) else "nothing"
            if wa != wb:
                rows.append(f"group {group}, position #{i}: A has {wa}, B has {wb}")
    names_a, names_b = a.optimizer_order or [], b.optimizer_order or []
    if a.optimizer_order is not None and b.optimizer_order is not None:
        for i in range(max(len(names_a), len(names_b))):
            wa = names_a[i] if i < len(names_a) else "nothing"
            wb = names_b[i] if i < len(names_b) else "nothing"
            if wa != wb:
                rows.append(f"optimizer_weights, position #{i}: A has {wa}, B has {wb}")
    return rows


def _print_rows(title: str, rows: list[str]) -> None:
    if rows:
        print(f"{title} ({len(rows)}):")
        for row in rows[:MAX_ROWS]:
            print(f"  {row}")
        if len(rows) > MAX_ROWS:
            print(f"  ... and {len(rows) - MAX_ROWS} more")


def diff(path_a: str, path_b: str) -> int:
    with open_checkpoint(path_a) as a, open_checkpoint(path_b) as b:
        va, vb = a.by_key(), b.by_key()
        only_a = [k for k in va if k not in vb]
        only_b = [k for k in vb if k not in va]
        shape, differing, digests_a, digests_b = [], {}, {}, {}
        for k in (k for k in va if k in vb):
            x, y = va[k], vb[k]
            if x.shape != y.shape or x.dtype != y.dtype:
                shape.append(f"{k}: {x.shape} {dtype_name(x.dtype)} "
                             f"vs {y.shape} {dtype_name(y.dtype)}")
                continue
            equal, worst, digests_a[k], digests_b[k] = _compare(a, x, b, y)
            if not equal:
                differing[k] = worst
        value = []
        for k, worst in differing.items():
            gap = "" if worst is None else f": max |A-B| = {worst:.6g}"
            # A swap shows as B holding exactly what A stored under another key.
            same_as = [j for j, d in digests_a.items()
                       if j != k and d is not None and d == digests_b[k]
                       and (va[j].shape, va[j].dtype) == (vb[k].shape, vb[k].dtype)]
            value.append(f"{k}{gap}" + (f" (B holds A's value of {same_as[0]})" if same_as else ""))
        order = _load_order_rows(a, b)
        # Which of several checkpoints in a folder was read (a step, a prefix): said before the rows.
        read = [f"{side}: {note}" for side, ckpt in (("A", a), ("B", b)) for note in ckpt.read_from]
    for line in read:
        print(line)
    _print_rows("only in A", only_a)
    _print_rows("only in B", only_b)
    _print_rows("shape or dtype differs", shape)
    _print_rows("values differ", value)
    _print_rows("load order differs (legacy load_weights assigns by position)", order)
    total = len(va) + len(only_b)
    same = total - len(only_a) - len(only_b) - len(shape) - len(value)
    summary = f"{same} of {total} variables identical by key and value"
    if order:
        summary += f", but the positional load order differs in {len(order)} places"
    print(summary)
    return 1 if (only_a or only_b or shape or value or order) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytest-ckpt",
                                     description="Look inside Keras checkpoint files.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="print a checkpoint's stored tree (metadata only)")
    p.add_argument("file", help="a checkpoint file, TensorFlow checkpoint prefix or folder")
    p.add_argument("--json", action="store_true", help="print the tree as JSON")
    p = sub.add_parser("diff", help="compare two checkpoints by key, by value and by load order")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("report", help="merge the JSON results of runs or shards (--ckpt-report x.json) "
                                      "into one matrix")
    p.add_argument("files", nargs="+", metavar="FILE")
    return parser


def report(files: list[str]) -> int:
    """The merged matrix on stdout (Markdown); duplicated and missing cells on stderr."""
    from pytest_ckpt.framework.formats import format_names
    from pytest_ckpt.report.matrix import MergeError, merge

    try:
        table, problems = merge(files, format_names())
    except MergeError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(table)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def _run(args: Any) -> int:
    first = args.file if args.command == "inspect" else args.a
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library warnings would break the one-line contract
            if args.command == "inspect":
                return inspect(args.file, args.json)
            return diff(args.a, args.b)
    except CheckpointFileError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise
    except Exception as exc:  # a bug of ours; still one line, and marked as ours
        print(f"error: {first}: internal error in pytest-ckpt: {one_line(exc)}", file=sys.stderr)
        return 2


# --- isolation -------------------------------------------------------------------------------
# libhdf5 loops forever or crashes on some corrupt files (h5py#2088, HDFGroup/hdf5#1707), inside
# one C call that no Python code can interrupt.  So HDF5 is read in a child process that reports
# progress; the parent turns a child that stalls or dies into one error line.

STALL_ENV = "PYTEST_CKPT_STALL_SECONDS"


def _send(channel: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(channel, data):]


def _child(args: Any, channel: int) -> None:
    """Run the command, sending progress and finally its outcome to ``channel``."""
    faulthandler.disable()  # a crash is the parent's to report, in one line
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # libhdf5 and TensorFlow write to the file descriptors directly
    os.dup2(devnull, 2)
    last: dict[str, Any] = {"path": None, "at": 0.0}

    def beat(path: Any) -> None:
        now = time.monotonic()
        if (path is not None and path != last["path"]) or now - last["at"] > 0.5:
            last.update(at=now, path=path or last["path"])
            _send(channel, {"reading": last["path"]})

    checkpoint_files.progress = beat
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = _run(args)
    _send(channel, {"rc": rc, "out": out.getvalue(), "err": err.getvalue()})


def _spawned_child() -> None:
    channel = os.dup(1)
    try:
        _child(_parser().parse_args(json.loads(sys.argv[1])), channel)
    finally:
        os._exit(0)


def _start_child(args: Any, argv: Any, spawn: bool) -> Any:
    """(channel to read, kill, wait for the exit status) of a child running the command."""
    if not spawn:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                _child(args, write_end)
            finally:
                os._exit(0)  # skip the parent's atexit work, and libhdf5's own
        os.close(write_end)

        def reap() -> Any:
            os.close(read_end)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

        return read_end, lambda: os.kill(pid, signal.SIGKILL), reap
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from pytest_ckpt.inspect.cli import _spawned_child; _spawned_child()",
         json.dumps(argv)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=env)

    out = proc.stdout
    assert out is not None  # stdout=PIPE

    def wait() -> Any:
        out.close()
        return proc.wait()

    return out.fileno(), proc.kill, wait


def _isolated(args: Any, argv: Any, spawn: bool) -> int:
    stall = float(os.environ.get(STALL_ENV, "120"))
    channel, kill, wait = _start_child(args, argv, spawn)
    reading = args.file if args.command == "inspect" else args.a
    buffer, outcome, stalled = bytearray(), None, False
    poller = select.poll()  # unlike select(), not limited to descriptors below 1024
    poller.register(channel, select.POLLIN)
    try:
        while True:
            if not poller.poll(stall * 1000):
                stalled = True
                break
            chunk = os.read(channel, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            *lines, rest = buffer.split(b"\n")
            buffer = bytearray(rest)
            for line in lines:
                message = json.loads(line)
                reading = message.get("reading", reading)
                outcome = message if "rc" in message else outcome
    finally:
        if outcome is None:  # stalled, or we are interrupted
            kill()
        status = wait()
    if stalled:
        print(f"error: {reading}: no progress for {stall:g} s, stopped (libhdf5 can loop forever "
              f"on a corrupt file; {STALL_ENV} sets the limit)", file=sys.stderr)
        return 2
    if outcome is None:
        how = f"signal {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        print(f"error: {reading}: the reading process died ({how}; libhdf5 can crash on a "
              "corrupt file)", file=sys.stderr)
        return 2
    sys.stdout.write(outcome["out"])
    sys.stderr.write(outcome["err"])
    return outcome["rc"]


def main(argv: Any=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        return exc.code if isinstance(exc.code, int) else 2
    for stream in (sys.stdout, sys.stderr):
        # Stored names may hold any bytes; a UnicodeEncodeError must not end the listing.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if args.command == "report":  # JSON files of ours: no checkpoint reading, no isolation
        return report(args.files)
    paths = [args.file] if args.command == "inspect" else [args.a, args.b]
    try:
        # TensorFlow's reader has no such loops (it checks CRCs), and importing it in a child for
        # every call would cost seconds: TF checkpoints alone are read in this process.
        tf_inputs = [is_tf_checkpoint(p) for p in paths]
        if not hasattr(os, "fork") or all(tf_inputs):
            rc = _run(args)
        else:
            # A fork can deadlock a child that uses a framework's threads: a child that will use
            # TensorFlow is not forked from a process where TF runs, nor any child where JAX runs
            # (JAX warns on every fork).  Those children are fresh interpreters instead.
            spawn = "jax" in sys.modules or (any(tf_inputs) and "tensorflow" in sys.modules)
            rc = _isolated(args, argv, spawn=spawn)
        sys.stdout.flush()  # a closed pipe shows here, not in a traceback at exit
        return rc
    except BrokenPipeError:  # `pytest-ckpt inspect big.h5 | head`
        # Nothing more can be written: the rest of the buffer goes to /dev/null, not to an
        # "Exception ignored" at exit.  128 + SIGPIPE is what the shell reports for a command
        # cut short this way; 1 would claim that the files differ.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # fork or pipe failing: still one line
        print(f"error: {paths[0]}: cannot start reading it: {one_line(exc)}", file=sys.stderr)
        return 2
