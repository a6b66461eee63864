"""Golden checkpoints on disk: where they live, the manifest, atomic writes.

A golden is a folder holding one checkpoint file, ``outputs.npz`` (a fixed
probe input and the model's outputs on it, no pickles) and ``manifest.txt``:
per variable its stable key, shape, dtype and SHA-256, plus the framework,
backend, Keras version, format, how the values were chosen and the
checksums of the two other files.  Every file is written to a temporary
name in the same folder and renamed into place, the manifest last, so a
reader sees the old set or the new one; the manifest's checksums catch a
set that was edited or torn anyway.

Folders are named from the test's node id (module, classes, function and
parametrize id) and the check's name, each part encoded injectively: two
different tests never share a folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from pytest_ckpt import tempfiles
from pytest_ckpt.comparison import fingerprint
from pytest_ckpt.errors import CkptError
from pytest_ckpt.formats import get_format

MANIFEST = "manifest.txt"
OUTPUTS = "outputs.npz"
HEADER = "# pytest-ckpt golden manifest v2"
_OLD_HEADERS = ("# pytest-ckpt golden manifest v1",)
# Formats whose checkpoint is one file, so that one rename publishes it.
GOLDEN_FORMATS = ("keras-weights", "keras", "h5", "h5-by-name")
# Where the golden's values come from: distinct deterministic values (a swap
# between two variables always shows) or the model's own (trained weights).
DISTINCT = "distinct"
MODEL = "model"
_MAX_PART = 120


class GoldenError(CkptError):
    """A golden folder or file that cannot be read or written; names the file."""


def encode(part: str) -> str:
    """One folder-name component, injectively: anything but letters, digits and
    ``_.-~[]=,`` is %-escaped ("/" too, and "%" itself); "." and ".." are
    escaped; a long name keeps a readable head and a hash of the whole."""
    text = quote(part, safe="_.-~[]=,") or "%00"
    if set(text) == {"."}:
        text = text.replace(".", "%2E")
    if len(text) > _MAX_PART:
        digest = hashlib.sha256(part.encode()).hexdigest()[:20]
        text = f"{text[:_MAX_PART - 22]}@{digest}"  # quote() always escapes "@"
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
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
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
        if fields["values"] not in (DISTINCT, MODEL):
            raise GoldenError(f"{path}: values must be {DISTINCT!r} or {MODEL!r}, got {fields['values']!r}")
        try:
            frozen_paths(fields["frozen"])
        except ValueError:
            raise GoldenError(f"{path}: frozen must be index paths like 1.2,3, got {fields['frozen']!r}") from None
        return cls(variables=variables, **{k: fields[k] for k in _FIELDS})


def frozen_paths(text: str) -> list[tuple[int, ...]]:
    """"1.2,3" -> [(1, 2), (3,)]; "" -> []; the root is "."."""
    return [() if p == "." else tuple(int(i) for i in p.split(".")) for p in text.split(",") if p]


def frozen_text(paths) -> str:
    return ",".join("." if not p else ".".join(map(str, p)) for p in sorted(paths))


def _atomic_write(path: Path, write) -> str:
    """``write(tmp_path)`` then rename into place: readers never see half a file.
    Returns the SHA-256 of what was written, taken before the rename: after it,
    ``path`` may already hold another writer's file."""
    tmp = tempfiles.register(path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}"))
    try:
        write(tmp)
        checksum = file_checksum(tmp)
        os.replace(tmp, path)
        return checksum
    finally:
        if tmp.exists():
            tmp.unlink()
        tempfiles.release(tmp)


def save_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """``.npz`` bytes that load without pickle (strings stored as unicode arrays)."""
    clean = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            value = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in value.ravel()],
                             dtype=str).reshape(value.shape)
        clean[name] = value
    buffer = io.BytesIO()
    np.savez(buffer, **clean)
    return buffer.getvalue()


class GoldenFolder:
    """One check's golden files."""

    def __init__(self, path: Path):
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

    def read(self) -> tuple[Manifest, Path, dict[str, np.ndarray]]:
        """Manifest, checkpoint path and stored probe arrays, each checked against the manifest."""
        manifest = Manifest.load(self.manifest_path)
        checkpoint = self.path / manifest.checkpoint
        outputs_path = self.path / OUTPUTS
        for file, expected in ((checkpoint, manifest.checkpoint_sha256),
                               (outputs_path, manifest.outputs_sha256)):
            if not file.is_file():
                what = "is not a file" if file.exists() else "is missing"
                raise GoldenError(f"golden file {file} {what} (listed in {self.manifest_path})")
            try:
                matches = file_checksum(file) == expected
            except OSError as exc:
                raise GoldenError(f"cannot read golden file {file}: {exc}") from None
            if not matches:
                raise GoldenError(f"golden file {file} does not match its manifest "
                                  f"{self.manifest_path} (edited, truncated or half-written?)")
        try:
            with np.load(outputs_path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:
            raise GoldenError(f"cannot read golden outputs {outputs_path}: {exc}") from None
        return manifest, checkpoint, arrays

    def write(self, save, manifest: Manifest, arrays: dict[str, np.ndarray]) -> Manifest:
        """``save(path)`` writes the checkpoint; the manifest gets the files' checksums."""
        fmt = get_format(manifest.format, manifest.framework)
        checkpoint = self.path / f"checkpoint{fmt.suffix}"
        self.check_not_blocked()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            manifest.checkpoint_sha256 = _atomic_write(checkpoint, save)
            data = save_arrays(arrays)
            manifest.outputs_sha256 = _atomic_write(self.path / OUTPUTS, lambda tmp: tmp.write_bytes(data))
            manifest.checkpoint = checkpoint.name
            _atomic_write(self.manifest_path, lambda tmp: tmp.write_text(manifest.dumps()))
        except Exception as exc:  # PermissionError, or h5py's OSError from inside Keras
            raise GoldenError(f"cannot write golden folder {self.path}: "
                              f"{type(exc).__name__}: {exc}") from None
        for stale in self.path.glob("checkpoint*"):
            if stale != checkpoint and not stale.name.startswith(".tmp-"):
                stale.unlink()
        return manifest


def variable_records(entries, values) -> list[GoldenVariable]:
    return [GoldenVariable(e.key, e.shape, e.dtype, fingerprint(v), e.display)
            for e, v in zip(entries, values)]
