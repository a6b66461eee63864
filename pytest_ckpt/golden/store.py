"""Golden checkpoints on disk: where they live, the manifest, atomic writes.

A golden is a folder holding one checkpoint file (a format that writes a
folder, such as ``orbax``, is kept as ``checkpoint.tar`` and unpacked into
the check's temporary folder), ``outputs.npz`` (a fixed
probe input and the model's outputs on it, no pickles) and ``manifest.txt``:
per variable its stable key, shape, dtype and SHA-256, plus the framework,
backend, Keras version, format, how the values were chosen and the
checksums of the two other files, taken from the bytes this run wrote.

The whole set is written into a fresh folder beside the golden and swapped
in with one atomic exchange of the two folders (Linux ``renameat2``
``RENAME_EXCHANGE``), so the golden's path always holds a whole set, the old
one or the new one, whenever the writer is killed.  A reader copies the set
out of one open folder, so a swap while it reads cannot mix two sets.  The
manifest's checksums catch a set that was edited anyway.

Folders are named from the test's node id (module, classes, function and
parametrize id) and the check's name, each part encoded injectively, case
included: two different tests never share a folder, even on a filesystem
that ignores case.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from pytest_ckpt.checks.comparison import fingerprint
from pytest_ckpt.errors import CkptError
from pytest_ckpt.framework import tempfiles
from pytest_ckpt.framework.formats import get_format
from pytest_ckpt.framework.values import widened

MANIFEST = "manifest.txt"
OUTPUTS = "outputs.npz"
# v3: variables keyed by the identity the format loads by (see golden_check).
HEADER = "# pytest-ckpt golden manifest v3"
_OLD_HEADERS = ("# pytest-ckpt golden manifest v1", "# pytest-ckpt golden manifest v2")
# The checkpoint's file name, as write() makes it: a plain name in the golden folder.
_CHECKPOINT_NAME = re.compile(r"checkpoint(\.[a-z0-9]{1,10}){1,3}")
# Formats the golden check loads into the model the test built, and whose files the
# inspector reads (the check keys variables by what the format stores where).
GOLDEN_FORMATS = ("keras-weights", "keras", "h5", "h5-by-name", "orbax")
# A folder checkpoint in the golden folder: one file, so one checksum and one atomic swap.
_PACKED = ".tar"
# A user's format, as module:attr (dotted names on both sides).
_USER_FORMAT = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
# Where the golden's values come from: distinct deterministic values (a swap
# between two variables always shows) or the model's own (trained weights).
DISTINCT = "distinct"
MODEL = "model"
_MAX_PART = 120


class GoldenError(CkptError):
    """A golden folder or file that cannot be read or written; names the file."""


class _Swapped(Exception):
    """The golden folder was replaced while it was being read."""


def encode(part: str) -> str:
    """One folder-name component, injectively, also where names are compared
    without case (macOS, Windows): anything but letters, digits and
    ``_.-~[]=,`` is %-escaped ("/" too, and "%" itself); "." and ".." are
    escaped; a name with capitals gets the capitals' positions after "@"
    ("TestA" -> "TestA@0.4", so "A" and "a" differ in any case); a long name
    keeps a readable head and a hash of the whole."""
    text = quote(part, safe="_.-~[]=,") or "%00"
    if set(text) == {"."}:
        text = text.replace(".", "%2E")
    # Escapes' hex digits are always capitals: only literal letters need marking.
    capitals = [m.start() for m in re.finditer(r"%[0-9A-F]{2}|([A-Z])", text) if m.group(1)]
    if capitals:
        text = f"{text}@{'.'.join(map(str, capitals))}"  # quote() always escapes "@"
    if len(text) > _MAX_PART:
        digest = hashlib.sha256(part.encode()).hexdigest()[:20]
        text = f"{text[:_MAX_PART - 22]}@{digest}"
    return text


def golden_location(test_file: Path, golden_dir: str, names: list[str], check: str) -> Path:
    """``<dir of test module>/<golden_dir>/<module>/<Class>.../<test[param]>/<check>``."""
    parts = [encode(Path(test_file).stem)] + [encode(n) for n in names] + [encode(check)]
    return Path(test_file).parent / golden_dir / Path(*parts)


def file_checksum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class GoldenVariable:
    key: str
    shape: tuple[int, ...]
    dtype: str
    sha256: str
    name: str = ""  # the layer path it had when written, for people


_FIELDS = ("framework", "backend", "keras_version", "format", "values", "frozen", "checkpoint",
           "checkpoint_sha256", "outputs_sha256")
# What a v1 manifest (before backends, distinct values and freeze states) meant.
_V1_DEFAULTS = {"backend": "tensorflow", "values": MODEL, "frozen": ""}


@dataclass
class Manifest:
    framework: str
    backend: str
    keras_version: str
    format: str
    values: str
    # The layers frozen when it was written (outermost, as index paths "1.2,3"),
    # for --ckpt-masks same.
    frozen: str
    checkpoint: str
    checkpoint_sha256: str
    outputs_sha256: str
    variables: list[GoldenVariable] = field(default_factory=list)

    def dumps(self) -> str:
        lines = [HEADER] + [f"{attr}: {getattr(self, attr)}".rstrip() for attr in _FIELDS]
        lines.append("# key\tshape\tdtype\tsha256\tname")
        for v in self.variables:
            shape = "x".join(map(str, v.shape)) or "scalar"
            lines.append(f"{v.key}\t{shape}\t{v.dtype}\t{v.sha256}\t{v.name}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GoldenError(f"cannot read golden manifest {path}: {exc}") from None
        return cls.parse(data, path)

    @classmethod
    def parse(cls, data: bytes, path: Path) -> Manifest:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GoldenError(f"cannot read golden manifest {path}: {exc}") from None
        lines = text.splitlines()
        if not lines or lines[0] not in (HEADER, *_OLD_HEADERS):
            raise GoldenError(f"{path}: not a pytest-ckpt manifest (first line must be {HEADER!r})")
        fields: dict[str, str] = dict(_V1_DEFAULTS) if lines[0] != HEADER else {}
        variables = []
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                if "\t" in line:
                    key, shape, dtype, sha, name = (line.split("\t") + [""])[:5]
                    dims = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
                    if not re.fullmatch(r"[0-9a-f]{64}", sha):
                        raise ValueError("bad sha256")
                    variables.append(GoldenVariable(key, dims, dtype, sha, name))
                else:
                    name, sep, value = line.partition(":")
                    if not sep:
                        raise ValueError("expected 'name: value'")
                    fields[name] = value.strip()
            except (ValueError, TypeError) as exc:
                raise GoldenError(f"{path}, line {number}: cannot parse {line!r} ({exc})") from None
        missing = [k for k in _FIELDS if k not in fields]
        if missing:
            raise GoldenError(f"{path}: missing field {missing[0]!r}")
        if lines[0] != HEADER:
            raise GoldenError(f"{path}: written by an older pytest-ckpt, which keyed variables by layer "
                              "position; run pytest --ckpt-update to write it again")
        _check_file_fields(fields, path)
        if fields["values"] not in (DISTINCT, MODEL):
            raise GoldenError(f"{path}: values must be {DISTINCT!r} or {MODEL!r}, got {fields['values']!r}")
        try:
            frozen_paths(fields["frozen"])
        except ValueError:
            raise GoldenError(f"{path}: frozen must be index paths like 1.2,3, got {fields['frozen']!r}") from None
        return cls(variables=variables, **{k: fields[k] for k in _FIELDS})


def _check_file_fields(fields: dict[str, str], path: Path) -> None:
    """A manifest is untrusted input (a pull request can edit it): the file it
    names must be a plain name inside the golden folder, before anything is opened."""
    user = _USER_FORMAT.fullmatch(fields["format"]) is not None
    if fields["format"] not in GOLDEN_FORMATS and not user:
        raise GoldenError(f"{path}: field 'format' must be one of {', '.join(GOLDEN_FORMATS)} or a "
                          f"format of your own as module:attr, got {fields['format'][:200]!r}")
    name = fields["checkpoint"]
    if not _CHECKPOINT_NAME.fullmatch(name) or name in (MANIFEST, OUTPUTS):
        raise GoldenError(f"{path}: field 'checkpoint' must be a plain file name in the golden folder "
                          f"like checkpoint.weights.h5, got {name[:200]!r}")
    # A user's format is not imported on a manifest's word: it always writes a folder.
    expected = "checkpoint" + _PACKED if user else checkpoint_name(get_format(fields["format"]))
    if name != expected:
        raise GoldenError(f"{path}: field 'format' says {fields['format']} and field 'checkpoint' names "
                          f"{name}: a {fields['format']} golden is {expected}; edited?")
    for checksum in ("checkpoint_sha256", "outputs_sha256"):
        if not re.fullmatch(r"[0-9a-f]{64}", fields[checksum]):
            raise GoldenError(f"{path}: field {checksum!r} must be a SHA-256 in hex, got {fields[checksum][:80]!r}")


def checkpoint_name(fmt: Any) -> str:
    """The checkpoint's name in a golden folder."""
    return "checkpoint" + (_PACKED if fmt.writes_folder else fmt.suffix)


def pack(source: Path, target: Path) -> None:
    """``source``, a checkpoint (its one file, or its folder), as ``target`` in a golden folder."""
    if not source.is_dir():
        target.write_bytes(source.read_bytes())
        return
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise GoldenError(f"{path} is not a plain file or folder: a golden keeps only those")
            archive.add(path, arcname=str(path.relative_to(source)), recursive=False)


def unpack(archive_path: Path, folder: Path) -> Path:
    """A packed folder checkpoint unpacked into ``folder``; only plain files and folders
    inside it (the archive is untrusted input: a pull request can replace it)."""
    try:
        with tarfile.open(archive_path, "r:") as archive:
            members = archive.getmembers()
            if not any(member.isfile() for member in members):
                raise GoldenError(f"golden checkpoint {archive_path.name} holds no file: written by an "
                                  "interrupted or edited update? run pytest --ckpt-update to write it again")
            for member in members:
                parts = Path(member.name).parts
                if not (member.isfile() or member.isdir()) or Path(member.name).is_absolute() or ".." in parts:
                    raise GoldenError(f"golden checkpoint {archive_path.name} holds {member.name!r}, "
                                      "which is not a plain file or folder inside it")
            folder.mkdir(parents=True)
            archive.extractall(folder, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise GoldenError(f"cannot unpack golden checkpoint {archive_path.name}: {exc}") from None
    return folder


def frozen_paths(text: str) -> list[tuple[int, ...]]:
    """"1.2,3" -> [(1, 2), (3,)]; "" -> []; the root is "."."""
    return [() if p == "." else tuple(int(i) for i in p.split(".")) for p in text.split(",") if p]


def frozen_text(paths: Any) -> str:
    return ",".join("." if not p else ".".join(map(str, p)) for p in sorted(paths))


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_renameat2 = None


def _exchange(a: Path, b: Path) -> None:
    """Swap two existing folders in one step; OSError(ENOSYS or EINVAL) where the
    system or the filesystem cannot."""
    global _renameat2
    if _renameat2 is None:
        if not sys.platform.startswith("linux"):
            raise OSError(errno.ENOSYS, "no atomic exchange of folders on this system")
        try:
            function = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):
            raise OSError(errno.ENOSYS, "the C library has no renameat2") from None
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
        _renameat2 = function
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(b))


def _publish(staged: Path, target: Path) -> None:
    """Make ``staged`` (a whole set) the folder at ``target``; afterwards
    ``staged`` holds what is to be deleted: the old set, or our own set when
    another writer's landed first."""
    try:
        os.rename(staged, target)  # no golden yet: one atomic rename
        return
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    try:
        _exchange(staged, target)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    # No atomic exchange here (not Linux, or a filesystem without it): two
    # renames, with a window in which the folder does not exist.  A reader in
    # it reports a missing golden; a kill in it leaves the old set at
    # ``.old-*`` beside the folder.  Unavoidable without an exchange.
    old = target.with_name(f".old-{uuid.uuid4().hex}-{target.name}")
    tempfiles.register(old)
    try:
        os.rename(target, old)
    except FileNotFoundError:
        pass  # another writer is in its own window
    try:
        os.rename(staged, target)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        # Another writer's whole set landed first: keep it, discard ours.
    finally:
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        tempfiles.release(old)


def save_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """``.npz`` bytes that load without pickle (strings stored as unicode arrays)."""
    clean: dict[str, Any] = {}
    for name, array in arrays.items():
        value: Any = widened(np.asarray(array))
        if value.dtype == object:
            value = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in value.ravel()],
                             dtype=str).reshape(value.shape)
        clean[name] = value
    buffer = io.BytesIO()
    np.savez(buffer, **clean)
    return buffer.getvalue()


class GoldenFolder:
    """One check's golden files."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        self.check_not_blocked()
        return self.manifest_path.exists()

    def check_not_blocked(self) -> None:
        """A file where this folder or one of its parents should be is named, not
        reported as a missing golden or as an unwritable folder further down."""
        for path in (self.path, *self.path.parents):
            if path.exists():
                if not path.is_dir():
                    raise GoldenError(f"{path} is a file, where the golden folder should be "
                                      f"(on the way to {self.path}); move it away")
                return

    def read(self, into: Path) -> tuple[Manifest, Path, dict[str, np.ndarray]]:
        """Manifest, checkpoint and stored probe arrays, each checked against the manifest.

        The files are copied into the folder ``into`` (the checkpoint path
        returned is the copy's) from one open folder: an update swapping the
        golden meanwhile cannot hand us its manifest and another set's files.
        """
        for _ in range(3):
            try:
                manifest = self._copy_out(into)
                break
            except _Swapped:
                continue  # the set we were copying was replaced and deleted: read the new one
        else:
            raise GoldenError(f"golden {self.path} kept being replaced while it was read; "
                              "is a pytest --ckpt-update running?")
        outputs_path = into / OUTPUTS
        try:
            with np.load(outputs_path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:
            raise GoldenError(f"cannot read golden outputs {self.path / OUTPUTS}: {exc}") from None
        checkpoint = into / manifest.checkpoint
        if checkpoint.name.endswith(_PACKED):
            # A folder of its own: the same check may read the golden twice into one work folder.
            checkpoint = unpack(checkpoint, Path(tempfile.mkdtemp(prefix="checkpoint-", dir=into)) / "ckpt")
        return manifest, checkpoint, arrays

    def _copy_out(self, into: Path) -> Manifest:
        if self.path.is_symlink():
            raise GoldenError(f"golden folder {self.path} is a symbolic link: a golden must be a plain "
                              "folder, so that a link cannot make a check read another one")
        try:
            folder = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            folder = None  # missing, or no folder descriptors here (Windows): by path
        if folder is not None and os.open not in os.supports_dir_fd:
            os.close(folder)
            folder = None

        def opener(name: Any, flags: Any) -> Any:
            # A link could lead out of the golden folder: never followed.
            flags |= getattr(os, "O_NOFOLLOW", 0)
            return os.open(name, flags, dir_fd=folder) if folder is not None else os.open(self.path / name, flags)

        def swapped() -> bool:
            try:
                return folder is not None and not os.path.samestat(os.fstat(folder), os.stat(self.path))
            except OSError:
                return True

        try:
            try:
                with open(MANIFEST, "rb", opener=opener) as f:
                    data = f.read()
            except OSError as exc:
                if swapped():
                    raise _Swapped() from None
                raise GoldenError(f"cannot read golden manifest {self.manifest_path}: {exc}") from None
            manifest = Manifest.parse(data, self.manifest_path)
            for name, expected in ((manifest.checkpoint, manifest.checkpoint_sha256),
                                   (OUTPUTS, manifest.outputs_sha256)):
                self._copy_file(name, expected, into, opener, swapped)
            return manifest
        finally:
            if folder is not None:
                os.close(folder)

    def _copy_file(self, name: str, expected: str, into: Path, opener: Callable[[Any, int], int],
                   swapped: Callable[[], bool]) -> None:
        """One listed file copied out of the open folder, its checksum checked."""
        shown = self.path / name
        h = hashlib.sha256()
        try:
            with open(name, "rb", opener=opener) as source, open(into / name, "wb") as copy:
                for block in iter(lambda: source.read(1 << 20), b""):
                    h.update(block)
                    copy.write(block)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            if swapped():
                raise _Swapped() from None
            if shown.exists() and not shown.is_file():
                raise GoldenError(f"golden file {shown} is not a file (listed in {self.manifest_path})") from None
            if not shown.exists():
                raise GoldenError(f"golden file {shown} is missing (listed in {self.manifest_path})") from None
            raise GoldenError(f"cannot read golden file {shown}: {exc}") from None
        except OSError as exc:
            if shown.is_symlink():
                raise GoldenError(f"golden file {shown} is a symbolic link (listed in {self.manifest_path}): "
                                  "a golden's files must be plain files in its folder") from None
            raise GoldenError(f"cannot read golden file {shown}: {exc}") from None
        if h.hexdigest() != expected:
            raise GoldenError(f"golden file {shown} does not match its manifest "
                              f"{self.manifest_path} (edited, truncated or half-written?)")

    def write(self, save: Any, manifest: Manifest, arrays: dict[str, np.ndarray]) -> Manifest:
        """``save(path)`` writes the checkpoint; the manifest gets the files' checksums."""
        name = checkpoint_name(get_format(manifest.format, manifest.framework))
        self.check_not_blocked()
        if self.path.exists() and not os.access(self.path, os.W_OK):
            # Replacing a folder needs no write access to it, only to its parent:
            # a read-only golden is one its owner does not want replaced.
            raise GoldenError(f"cannot write golden folder {self.path}: it is read-only")
        staged = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            staged = tempfiles.register(self.path.with_name(f".tmp-{uuid.uuid4().hex}-{self.path.name}"))
            staged.mkdir()
            # The staged folder is this run's alone: its files are the bytes we wrote.
            save(staged / name)
            manifest.checkpoint = name
            manifest.checkpoint_sha256 = file_checksum(staged / name)
            data = save_arrays(arrays)
            (staged / OUTPUTS).write_bytes(data)
            manifest.outputs_sha256 = hashlib.sha256(data).hexdigest()
            (staged / MANIFEST).write_text(manifest.dumps())
            _publish(staged, self.path)
            _remove_abandoned(self.path)
        except Exception as exc:  # PermissionError, or h5py's OSError from inside Keras
            raise GoldenError(f"cannot write golden folder {self.path}: "
                              f"{type(exc).__name__}: {exc}") from None
        finally:
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
                tempfiles.release(staged)
        return manifest


# Older than any update still running: a staged set takes seconds to write.
ABANDONED_AFTER_SECONDS = 3600


def _remove_abandoned(target: Path) -> None:
    """Delete the ``.tmp-*`` and ``.old-*`` sets of ``target`` that a killed update left behind
    (SIGKILL skips our clean-up), so they are not committed by accident."""
    pattern = re.compile(rf"\.(tmp|old)-[0-9a-f]{{32}}-{re.escape(target.name)}")
    now = time.time()
    for sibling in target.parent.iterdir():
        try:
            if pattern.fullmatch(sibling.name) and now - sibling.stat().st_mtime > ABANDONED_AFTER_SECONDS:
                shutil.rmtree(sibling, ignore_errors=True)
        except OSError:
            continue  # removed by another writer meanwhile


def variable_records(entries: Any, values: Any) -> list[GoldenVariable]:
    return [GoldenVariable(e.key, e.shape, e.dtype, fingerprint(v), e.display)
            for e, v in zip(entries, values)]
