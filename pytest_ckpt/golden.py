"""Golden checkpoints on disk: the folder layout, the manifest, atomic writes.

A golden is a folder holding one checkpoint file, ``outputs.npz`` (a fixed
probe input and the model's outputs on it) and ``manifest.txt``: per
variable its stable key, shape, dtype and SHA-256, plus the framework, the
Keras version, the format and the checksums of the two other files.  Every
file is written to a temporary name in the same folder and renamed into
place, the manifest last, so a reader sees the old set or the new one; the
manifest's checksums catch a set that was edited or torn anyway.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_ckpt.errors import CkptError
from pytest_ckpt.formats import get_format

MANIFEST = "manifest.txt"
OUTPUTS = "outputs.npz"
HEADER = "# pytest-ckpt golden manifest v1"
# Formats whose checkpoint is one file, so that one rename publishes it.
GOLDEN_FORMATS = ("keras-weights", "keras", "h5", "h5-by-name")


class GoldenError(CkptError):
    """A golden folder or file that cannot be read or written; names the file."""


def sanitize(name: str) -> str:
    """A test id as a folder name: 'test_x[a/b-1]' -> 'test_x-a_b-1'."""
    name = name.replace("[", "-").replace("]", "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-") or "test"


def golden_path(test_file: Path, golden_dir: str, test_name: str, index: int) -> Path:
    """``<dir of test module>/<golden_dir>/<module>/<test name>[-N]``; N counts repeated checks."""
    suffix = f"-{index}" if index > 1 else ""
    return Path(test_file).parent / golden_dir / Path(test_file).stem / f"{sanitize(test_name)}{suffix}"


def checksum(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()


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


@dataclass
class Manifest:
    framework: str
    keras_version: str
    format: str
    checkpoint: str
    checkpoint_sha256: str
    outputs_sha256: str
    variables: list[GoldenVariable] = field(default_factory=list)

    def dumps(self) -> str:
        lines = [HEADER]
        for attr in ("framework", "keras_version", "format", "checkpoint",
                     "checkpoint_sha256", "outputs_sha256"):
            lines.append(f"{attr}: {getattr(self, attr)}")
        lines.append("# key\tshape\tdtype\tsha256\tname")
        for v in self.variables:
            shape = "x".join(map(str, v.shape)) or "scalar"
            lines.append(f"{v.key}\t{shape}\t{v.dtype}\t{v.sha256}\t{v.name}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            text = path.read_text()
        except OSError as exc:
            raise GoldenError(f"cannot read golden manifest {path}: {exc}") from None
        lines = text.splitlines()
        if not lines or lines[0] != HEADER:
            raise GoldenError(f"{path}: not a pytest-ckpt manifest (first line must be {HEADER!r})")
        fields: dict[str, str] = {}
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
                    np.dtype(dtype)
                    variables.append(GoldenVariable(key, dims, dtype, sha, name))
                else:
                    name, sep, value = line.partition(": ")
                    if not sep:
                        raise ValueError("expected 'name: value'")
                    fields[name] = value
            except (ValueError, TypeError) as exc:
                raise GoldenError(f"{path}, line {number}: cannot parse {line!r} ({exc})") from None
        try:
            return cls(variables=variables, **{k: fields[k] for k in (
                "framework", "keras_version", "format", "checkpoint",
                "checkpoint_sha256", "outputs_sha256")})
        except KeyError as exc:
            raise GoldenError(f"{path}: missing field {exc.args[0]!r}") from None


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then rename into place: readers never see half a file."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class GoldenFolder:
    """One check's golden files."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def read(self) -> tuple[Manifest, Path, dict[str, np.ndarray]]:
        """Manifest, checkpoint path and stored outputs, each checked against the manifest."""
        manifest = Manifest.load(self.manifest_path)
        checkpoint = self.path / manifest.checkpoint
        outputs_path = self.path / OUTPUTS
        for file, expected in ((checkpoint, manifest.checkpoint_sha256),
                               (outputs_path, manifest.outputs_sha256)):
            if not file.exists():
                raise GoldenError(f"golden file {file} is missing (listed in {self.manifest_path})")
            if file_checksum(file) != expected:
                raise GoldenError(f"golden file {file} does not match its manifest "
                                  f"{self.manifest_path} (edited, truncated or half-written?)")
        try:
            with np.load(outputs_path) as data:
                outputs = {k: data[k] for k in data.files}
        except Exception as exc:
            raise GoldenError(f"cannot read golden outputs {outputs_path}: {exc}") from None
        return manifest, checkpoint, outputs

    def write(self, model, format_name: str, framework: str, keras_version: str,
              variables: list[GoldenVariable], probe: dict[str, np.ndarray]) -> Manifest:
        fmt = get_format(format_name, framework)
        checkpoint = self.path / f"checkpoint{fmt.suffix}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            _atomic_write(checkpoint, lambda tmp: fmt.save(model, tmp))
            buffer = io.BytesIO()
            np.savez(buffer, **probe)
            _atomic_write(self.path / OUTPUTS, lambda tmp: tmp.write_bytes(buffer.getvalue()))
            manifest = Manifest(framework, keras_version, format_name, checkpoint.name,
                                file_checksum(checkpoint), file_checksum(self.path / OUTPUTS),
                                variables)
            _atomic_write(self.manifest_path, lambda tmp: tmp.write_text(manifest.dumps()))
        except Exception as exc:  # PermissionError, or h5py's OSError from inside Keras
            raise GoldenError(f"cannot write golden folder {self.path}: "
                              f"{type(exc).__name__}: {exc}") from None
        for stale in self.path.glob("checkpoint*"):
            if stale != checkpoint and not stale.name.startswith(".tmp-"):
                stale.unlink()
        return manifest
