"""The plugin's options: each ``--ckpt-X`` flag mirrors an ini option ``ckpt_X``.

The command line wins over the ini file.  Reading options imports nothing
heavy, so an idle plugin stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_ckpt.errors import ConfigError
from pytest_ckpt.formats import format_names, parse_format_list

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
    Option("models", "model factories, 'package.module:callable' (ini: one per line; "
           "flag: comma-separated); the flag replaces the ini list",
           kind="linelist", default=[], metavar="SPECS"),
    Option("migrations", "migration checks, 'old.module:factory -> new.module:factory' (ini: one "
           "per line; flag: comma-separated): save with the old model, load into the new one",
           kind="linelist", default=[], metavar="PAIRS"),
    Option("formats", f"checkpoint formats to test, comma-separated (default: all: "
           f"{', '.join(format_names())})", default="", metavar="NAMES"),
    Option("examples", f"Hypothesis examples (freeze-mask pairs) per round-trip check "
           f"(default {DEFAULT_EXAMPLES})", default=str(DEFAULT_EXAMPLES), metavar="N"),
    Option("update", "write or overwrite the golden checkpoints of ckpt_regression checks "
           "(without it a missing golden fails and nothing is written)", kind="bool", default=False),
    Option("golden_dir", "name of the folder, beside each test module, that holds golden "
           "checkpoints (default ckpt_golden)", default="ckpt_golden", metavar="NAME"),
    Option("tmpdir", "directory for temporary checkpoint files (default: the system temp dir)",
           default="", metavar="DIR"),
)


def add_options(parser) -> None:
    group = parser.getgroup("ckpt", "checkpoint round trips (pytest-ckpt)")
    for opt in OPTIONS:
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.ini,
                            help=opt.help)
            parser.addini(opt.ini, opt.help, type="bool", default=opt.default)
        else:
            group.addoption(opt.flag, action="store", default=None, dest=opt.ini,
                            metavar=opt.metavar, help=opt.help)
            ini_type = "linelist" if opt.kind == "linelist" else "string"
            parser.addini(opt.ini, opt.help, type=ini_type, default=opt.default)


def _raw(config, opt: Option):
    value = config.getoption(opt.ini, None)
    if value is not None:
        if opt.kind == "linelist":
            return [v for v in value.replace("\n", ",").split(",") if v.strip()]
        return value
    return config.getini(opt.ini)


@dataclass
class CkptSettings:
    roundtrip: bool = False
    models: list[str] = field(default_factory=list)
    migrations: list[tuple[str, str]] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    formats_explicit: bool = False
    examples: int = DEFAULT_EXAMPLES
    tmpdir: str | None = None
    update: bool = False
    golden_dir: str = "ckpt_golden"
    # Problems found while reading; reported by a failing item, not an abort,
    # so that every other test still runs.
    errors: list[str] = field(default_factory=list)

    @property
    def unknown_formats(self) -> list[str]:
        return [f for f in self.formats if f not in format_names()]


def read_settings(config) -> CkptSettings:
    raw = {opt.name: _raw(config, opt) for opt in OPTIONS}
    s = CkptSettings(
        roundtrip=bool(raw["roundtrip"]),
        models=_entries(raw["models"]),
        formats=parse_format_list(raw["formats"]) or format_names(),
        formats_explicit=bool(parse_format_list(raw["formats"])),
        tmpdir=raw["tmpdir"] or None,
        update=bool(raw["update"]),
        golden_dir=raw["golden_dir"] or "ckpt_golden",
    )
    for line in _entries(raw["migrations"]):
        old, sep, new = line.partition("->")
        if not sep or not old.strip() or not new.strip():
            s.errors.append(f"--ckpt-migrations / ckpt_migrations: {line!r} is not "
                            "'old.module:factory -> new.module:factory'")
        else:
            s.migrations.append((old.strip(), new.strip()))
    try:
        s.examples = parse_examples(raw["examples"])
    except ConfigError as exc:
        s.errors.append(str(exc))
    if s.unknown_formats:
        s.errors.append(
            f"--ckpt-formats / ckpt_formats: unknown format(s) {', '.join(map(repr, s.unknown_formats))}; "
            f"valid formats: {', '.join(format_names())}"
        )
    return s


def _entries(lines) -> list[str]:
    return [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]


def parse_examples(value) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = None
    if n is None or n < 1:
        raise ConfigError(
            f"--ckpt-examples / ckpt_examples must be a whole number of at least 1, got {value!r}"
        )
    return n


def roundtrip_requested(config) -> bool:
    """``--ckpt-roundtrip`` or ``ckpt_roundtrip = true``, read without the rest."""
    return bool(_raw(config, next(o for o in OPTIONS if o.name == "roundtrip")))


def hypothesis_seed(config):
    """``--hypothesis-seed`` as Hypothesis would take it (an int where possible)."""
    seed = config.getoption("hypothesis_seed", None)
    if seed is None:
        return None
    try:
        return int(seed)
    except ValueError:
        return seed
