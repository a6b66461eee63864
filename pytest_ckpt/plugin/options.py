"""The plugin's options: each ``--ckpt-X`` flag mirrors an ini option ``ckpt_X``.

The command line wins over the ini file; every bool flag has a ``--no-``
twin to turn an ini ``true`` off.  Reading options imports nothing heavy,
so an idle plugin stays cheap.  Values that make no sense become errors that
one failing item reports, so every other test still runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_ckpt.checks.isolation import Isolation
from pytest_ckpt.errors import ConfigError
from pytest_ckpt.framework.formats import format_names, is_user_format, parse_format_list
from pytest_ckpt.search.masks import INDEPENDENT, POLICIES

DEFAULT_EXAMPLES = 20


@dataclass(frozen=True)
class Option:
    name: str  # "formats" -> --ckpt-formats / ckpt_formats
    help: str
    kind: str = "string"  # "bool", "string", "linelist"
    default: object = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--ckpt-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "ckpt_" + self.name


OPTIONS = (
    Option("roundtrip", "collect a round-trip test for every registered model factory x format",
           kind="bool", default=False),
    Option("resume", "collect a resume check for every registered factory x format: training "
           "resumed from a checkpoint must equal training that never stopped (compiled models)",
           kind="bool", default=False),
    Option("crash", "collect a killed-save check for every registered factory x format: a save "
           "killed part-way over a checkpoint must leave the old one or the new one, never an error "
           "or a mix", kind="bool", default=False),
    Option("only", "collect only pytest-ckpt's generated items, no test files (what reproduce "
           "lines use)", kind="bool", default=False),
    Option("models", "model factories, 'package.module:callable' (ini: one per line; "
           "flag: comma-separated); the flag replaces the ini list",
           kind="linelist", default=[], metavar="SPECS"),
    Option("migrations", "migration checks, 'old.module:factory -> new.module:factory' (ini: one "
           "per line; flag: comma-separated): save with the old model, load into the new one",
           kind="linelist", default=[], metavar="PAIRS"),
    Option("formats", f"checkpoint formats to test, comma-separated (default: all that apply: "
           f"{', '.join(format_names())})", kind="linelist", default=[], metavar="NAMES"),
    Option("examples", f"Hypothesis examples (freeze-mask pairs) per check, after the fixed pairs "
           f"(default {DEFAULT_EXAMPLES})", default=str(DEFAULT_EXAMPLES), metavar="N"),
    Option("masks", "how load masks relate to save masks: 'independent' (drawn separately, the "
           "default) or 'same' (load with the freeze state used at save)", default=INDEPENDENT,
           metavar="POLICY"),
    Option("isolation", "where checks load: 'process' (the default: a fresh process, with its own "
           "hash seed and module state, as users load) or 'inline' (the saving process: faster, and "
           "blind to builds that depend on the process)", default="process", metavar="MODE"),
    Option("update", "write or overwrite the golden checkpoints of ckpt_regression checks "
           "(without it a missing golden fails and nothing is written)", kind="bool", default=False),
    Option("golden_dir", "name of the folder, beside each test module, that holds golden "
           "checkpoints (default ckpt_golden)", default="ckpt_golden", metavar="NAME"),
    Option("report", "also write the end-of-session results matrix (factory x format) to this "
           "Markdown file", default="", metavar="PATH"),
    Option("tmpdir", "existing, writable directory for temporary checkpoint files (default: the "
           "system temp dir)", default="", metavar="DIR"),
)


def add_options(parser: Any) -> None:
    group = parser.getgroup("ckpt", "checkpoint round trips (pytest-ckpt)")
    for opt in OPTIONS:
        if opt.kind == "bool":
            group.addoption(opt.flag, action=argparse.BooleanOptionalAction, default=None,
                            dest=opt.ini, help=opt.help)
            parser.addini(opt.ini, opt.help, type="bool", default=opt.default)
        else:
            group.addoption(opt.flag, action="store", default=None, dest=opt.ini,
                            metavar=opt.metavar, help=opt.help)
            parser.addini(opt.ini, opt.help, type="linelist" if opt.kind == "linelist" else "string",
                          default=opt.default)


def _raw(config: Any, opt: Option) -> Any:
    value = config.getoption(opt.ini, None)
    if value is not None:
        if opt.kind == "linelist":
            return [v for v in str(value).replace("\n", ",").split(",") if v.strip()]
        return value
    return config.getini(opt.ini)


@dataclass
class Settings:
    roundtrip: bool = False
    resume: bool = False
    crash: bool = False
    only: bool = False
    models: list[str] = field(default_factory=list)
    migrations: list[tuple[str, str]] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    formats_explicit: bool = False
    examples: int = DEFAULT_EXAMPLES
    masks: str = INDEPENDENT
    isolation: Isolation = Isolation.PROCESS
    tmpdir: str | None = None
    update: bool = False
    golden_dir: str = "ckpt_golden"
    report: str | None = None
    # Problems found while reading; reported by a failing item, not an abort,
    # so that every other test still runs.
    errors: list[str] = field(default_factory=list)
    # Checks cannot run at all (no example count, no usable temp dir).
    blocked: bool = False

    @property
    def generates(self) -> bool:
        """Whether any kind of check item is asked for."""
        return self.roundtrip or self.resume or self.crash


def read_settings(config: Any) -> Settings:
    raw = {opt.name: _raw(config, opt) for opt in OPTIONS}
    s = Settings(
        roundtrip=bool(raw["roundtrip"]),
        resume=bool(raw["resume"]),
        crash=bool(raw["crash"]),
        only=bool(raw["only"]),
        models=list(dict.fromkeys(_entries(raw["models"]))),  # listed twice: one item, not two with one id
        update=bool(raw["update"]),
        golden_dir=(raw["golden_dir"] or "ckpt_golden").strip(),
    )
    formats = parse_format_list(raw["formats"])
    # Users' formats (module:attr) are imported when their checks run, not at collection.
    unknown = [f for f in formats if f not in format_names() and not is_user_format(f)]
    if unknown:
        s.errors.append(f"--ckpt-formats / ckpt_formats: unknown format(s) "
                        f"{', '.join(map(repr, unknown))}; valid formats: {', '.join(format_names())}, "
                        "or your own as module:attr")
    s.formats = [f for f in formats if f not in unknown] or ([] if formats else format_names())
    s.formats_explicit = bool(formats)
    for line in _entries(raw["migrations"]):
        old, sep, new = line.partition("->")
        if not sep or not old.strip() or not new.strip():
            s.errors.append(f"--ckpt-migrations / ckpt_migrations: {line!r} is not "
                            "'old.module:factory -> new.module:factory'")
        else:
            s.migrations.append((old.strip(), new.strip()))
    # (setting, parser, whether a bad value leaves the checks unable to run at all)
    parsers: list[tuple[str, Callable[[Any], Any], bool]] = [
        ("examples", parse_examples, True), ("masks", parse_masks, True), ("isolation", parse_isolation, True),
        ("report", check_report, False), ("tmpdir", check_tmpdir, True)]
    for name, parse, blocks in parsers:
        try:
            setattr(s, name, parse(raw[name]))
        except ConfigError as exc:
            s.errors.append(str(exc))
            s.blocked = s.blocked or blocks
    return s


def _entries(lines: Any) -> list[str]:
    return [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]


def parse_examples(value: Any) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = None
    if n is None or n < 1:
        raise ConfigError(f"--ckpt-examples / ckpt_examples must be a whole number of at least 1, "
                          f"got {value!r}")
    return n


def parse_masks(value: Any) -> str:
    policy = str(value or INDEPENDENT).strip()
    if policy not in POLICIES:
        raise ConfigError(f"--ckpt-masks / ckpt_masks must be one of {', '.join(POLICIES)}, "
                          f"got {value!r}")
    return policy


def parse_isolation(value: Any) -> Isolation:
    text = str(value or Isolation.PROCESS.value).strip()
    try:
        return Isolation(text)
    except ValueError:
        raise ConfigError(f"--ckpt-isolation / ckpt_isolation must be one of "
                          f"{', '.join(i.value for i in Isolation)}, got {value!r}") from None


def check_report(value: Any) -> str | None:
    """None or a file path whose folder exists: found now, not after the whole run."""
    text = str(value or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if path.is_dir():
        problem = "is a directory"
    elif not path.parent.is_dir():
        problem = f"is in a folder that does not exist ({path.parent})"
    elif path.exists() and not path.is_file():
        problem = "is not a regular file (a pipe or a device would block or refuse the write)"
    else:
        return str(path)
    raise ConfigError(f"--ckpt-report / ckpt_report: {text!r} {problem}; give a file path in an "
                      "existing folder")


def check_tmpdir(value: Any) -> str | None:
    """None (the system temp dir) or an existing directory we can write to."""
    text = str(value or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.exists():
        problem = "does not exist"
    elif not path.is_dir():
        problem = "is not a directory"
    else:
        try:  # a real write: permission bits say nothing about root or read-only mounts
            os.rmdir(tempfile.mkdtemp(prefix=".pytest-ckpt-probe-", dir=path))
            return str(path)
        except OSError as exc:
            problem = f"is not writable ({exc.strerror or exc})"
    raise ConfigError(f"--ckpt-tmpdir / ckpt_tmpdir: {text!r} {problem}; give an existing, writable "
                      "directory (or leave it unset for the system temp dir)")


def hypothesis_seed(config: Any) -> Any:
    """``--hypothesis-seed`` as given (Hypothesis's own plugin adds the option).

    It is only ever hashed with a node id into each check's seed, so it need
    not be parsed: "1" and "abc" both replay.
    """
    return config.getoption("hypothesis_seed", None)
