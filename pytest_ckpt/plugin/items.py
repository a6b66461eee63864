"""Test items that ``--ckpt-roundtrip`` generates: one per model factory x format.

Node ids read ``ckpt-roundtrip::package.module:factory::format`` (and
``ckpt-migration::old:f::new:g::format``), so ``-k`` selects by factory or
format and ``-m ckpt`` selects them all.  Nothing heavy happens at
collection: the formats a factory gets are decided from its module's source
text and Keras's configuration; the factory is imported when its item runs.
"""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ckpt.checks.kinds import CheckKind
from pytest_ckpt.errors import CkptError, CrashCheckError, FactoryError, UserFormatError
from pytest_ckpt.framework.detection import KERAS3, TENSORFLOW, configured_backend, framework_from_source
from pytest_ckpt.framework.formats import applicable, is_user_format
from pytest_ckpt.plugin.options import Settings
from pytest_ckpt.plugin.session import SESSION_KEY, reproduce_line

ROUNDTRIP = "ckpt-roundtrip"
MIGRATION = "ckpt-migration"
RESUME = "ckpt-resume"
CRASH = "ckpt-crash"


class ReportedFailure(Exception):
    """A failure whose message is the whole story: shown without a traceback."""


if TYPE_CHECKING:
    _NodeBase = pytest.Item
else:
    _NodeBase = object  # mixed into pytest's own node classes below


class _CkptNode(_NodeBase):
    def reportinfo(self) -> Any:
        # The third element heads failure sections.  It must not be a suffix
        # of the node id, or -v output rewrites its dots as "::".
        return self.path, None, self.headline()

    def headline(self) -> str:
        return f"ckpt: {self.name}"

    def repr_failure(self, excinfo: Any, style: Any=None) -> Any:
        if isinstance(excinfo.value, (ReportedFailure, CkptError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


def verdict_word(outcome: Any) -> str:
    """"pass", or "FAIL: " and the verdicts found, for the matrix and JUnit."""
    if outcome.failure is None:
        return "pass"
    words = outcome.failure.verdict_words()
    if outcome.not_reproducible:
        words.insert(0, "not deterministic")
    return "FAIL: " + ", ".join(words)


def excluded_note(outcome: Any) -> str | None:
    if not outcome.excluded:
        return None
    from pytest_ckpt.framework.unsaved import unsaved_note

    return unsaved_note(outcome.excluded)


class CheckItem(_CkptNode, pytest.Item):
    """One factory (or one migration pair) in one format."""

    def __init__(self, *, specs: tuple[str, ...], format_name: str, kind: CheckKind, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.specs = specs
        self.format_name = format_name
        self.kind = CheckKind(kind)
        self.add_marker(pytest.mark.ckpt)

    @property
    def is_migration(self) -> bool:
        return self.kind is CheckKind.MIGRATION

    def headline(self) -> str:
        return f"{self.kind.words} {' -> '.join(self.specs)} [{self.format_name}]"

    def runtest(self) -> None:
        # Heavy imports happen here, on the first item that runs.
        from pytest_ckpt.checks.resume import check_resume
        from pytest_ckpt.checks.roundtrip import check_format
        from pytest_ckpt.report.diagnosis import render, render_resume

        session = self.config.stash[SESSION_KEY]
        s = session.settings
        # Properties travel to the xdist controller (the results matrix) and
        # into JUnit XML.
        self.user_properties += [("ckpt_kind", self.kind.value),
                                 ("ckpt_factory", " -> ".join(self.specs)),
                                 ("ckpt_format", self.format_name),
                                 ("ckpt_seed", str(session.seed))]
        known = session.factory_errors.get(self.specs)
        if known is not None:
            self.user_properties.append(("ckpt_verdict", "FAIL: factory"))
            raise ReportedFailure(f"{known[0]}\n(the same error as in {known[1]})")
        if self.kind is CheckKind.CRASH:
            return self._run_crash(session)
        check = check_resume if self.kind is CheckKind.RESUME else check_format
        extra: dict[str, Any] = {"load_factory": self.specs[1]} if self.is_migration else {}
        with self._setup_errors(session):
            outcome = check(self.specs[0], self.format_name, examples=s.examples,
                            seed=session.seed_for(self.nodeid), masks=s.masks, tmp_root=s.tmpdir,
                            isolation=s.isolation, **extra)
        self.user_properties += [("ckpt_verdict", verdict_word(outcome)),
                                 ("ckpt_examples_run", str(outcome.examples_run))]
        notes = [n for n in (outcome.isolation_note, outcome.outputs_note, excluded_note(outcome)) if n]
        if notes:
            self.user_properties.append(("ckpt_note", "; ".join(notes)))
        if outcome.failure is not None:
            show = render_resume if self.kind is CheckKind.RESUME else render
            raise ReportedFailure(show(outcome.failure, seed=session.seed,
                                       reproduce=self.reproduce_command(),
                                       not_reproducible=outcome.not_reproducible,
                                       notes=tuple(notes) + self.seed_notes(), others=outcome.others))

    @contextmanager
    def _setup_errors(self, session: Any) -> Iterator[None]:
        """What stops a check before any verdict: a skip, or one failing item naming the culprit."""
        from pytest_ckpt.checks.resume import NotCompiled
        from pytest_ckpt.framework.formats import FormatNotApplicable

        try:
            yield
        except (FormatNotApplicable, NotCompiled) as exc:
            # Collected because the framework could not be told before
            # building; now it can.  (Or a resume check of a model that
            # is not compiled: nothing to train.)
            self.user_properties.append(("ckpt_verdict", "skip"))
            pytest.skip(str(exc))
        except (UserFormatError, CrashCheckError) as exc:
            # This format's problem: the factory's other formats still run.
            self.user_properties.append(("ckpt_verdict", "FAIL: format"))
            raise ReportedFailure(str(exc)) from None
        except FactoryError as exc:
            session.factory_errors[self.specs] = (str(exc), self.nodeid)
            self.user_properties.append(("ckpt_verdict", "FAIL: factory"))
            raise ReportedFailure(str(exc)) from None

    def _run_crash(self, session: Any) -> None:
        from pytest_ckpt.checks.crash import check_crash
        from pytest_ckpt.report.crash import render_crash, verdict

        with self._setup_errors(session):
            outcome = check_crash(self.specs[0], self.format_name, tmp_root=session.settings.tmpdir)
        self.user_properties.append(("ckpt_verdict", verdict(outcome)))
        if not outcome.passed:
            raise ReportedFailure(render_crash(outcome, reproduce=self.reproduce_command()))

    def seed_notes(self) -> tuple[str, ...]:
        session = self.config.stash[SESSION_KEY]
        if session.derandomized:
            return ("this run is derandomized (a Hypothesis profile with derandomize=True, such as "
                    "the 'ci' profile loaded when CI is set); the reproduce line replays it "
                    "anywhere",)
        return ()

    def reproduce_command(self) -> str:
        """A command that, pasted at the project root, runs this item alone and fails the same way."""
        session = self.config.stash[SESSION_KEY]
        s = session.settings
        parts = ["--ckpt-only"]
        parts += {CheckKind.RESUME: ["--ckpt-resume", "--no-ckpt-roundtrip"],
                  CheckKind.CRASH: ["--ckpt-crash", "--no-ckpt-roundtrip", "--no-ckpt-resume"]}.get(
            self.kind, ["--ckpt-roundtrip", "--no-ckpt-resume"])
        if s.crash and self.kind is not CheckKind.CRASH:
            parts.append("--no-ckpt-crash")
        if self.is_migration:
            parts += ["--ckpt-models=", "--ckpt-migrations", shlex.quote(f"{self.specs[0]} -> {self.specs[1]}")]
        else:
            parts += ["--ckpt-models", shlex.quote(self.specs[0]), "--ckpt-migrations="]
        parts += ["--ckpt-formats", self.format_name, "--ckpt-examples", str(s.examples),
                  "--ckpt-masks", s.masks]
        if s.isolation.weaker_note:
            parts.append(f"--ckpt-isolation={s.isolation.value}")
        profile = self.config.getoption("hypothesis_profile", None)
        if profile:
            parts.append(f"--hypothesis-profile={shlex.quote(str(profile))}")
        return reproduce_line(parts, session.seed)


class SettingsErrorItem(_CkptNode, pytest.Item):
    """Stands for a configuration mistake: fails with the message, alone."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message
        self.add_marker(pytest.mark.ckpt)

    def runtest(self) -> None:
        raise ReportedFailure(self.message)


class FactoryCollector(_CkptNode, pytest.Collector):
    """A factory's items, one per format; under a migration, the new factory's."""

    def __init__(self, *, specs: tuple[str, ...], formats: list[str], kind: CheckKind, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.specs = specs
        self.formats = formats
        self.kind = kind

    def collect(self) -> Any:
        for name in self.formats:
            yield CheckItem.from_parent(self, name=name, specs=self.specs, format_name=name,
                                        kind=self.kind)


class MigrationCollector(_CkptNode, pytest.Collector):
    """``ckpt-migration::<old>``: holds the new factory, so both are parts of the id."""

    def __init__(self, *, new_spec: str, formats: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.new_spec = new_spec
        self.formats = formats

    def collect(self) -> Any:
        yield FactoryCollector.from_parent(self, name=self.new_spec, specs=(self.name, self.new_spec),
                                           formats=self.formats, kind=CheckKind.MIGRATION)


def _framework(spec: str) -> str | None:
    module, _, _ = spec.partition(":")
    return framework_from_source(module.strip())


class RoundTripSuite(_CkptNode, pytest.Collector):
    kind = CheckKind.ROUNDTRIP

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings

    def collect(self) -> Any:
        yield from self.settings_items()
        if self.settings.blocked:
            return  # no usable example count, masks policy or temp dir: do not guess one
        backend = configured_backend()
        for spec in self.settings.models:
            yield FactoryCollector.from_parent(self, name=spec, specs=(spec,), kind=self.kind,
                                               formats=self._formats(spec, backend))

    def settings_items(self) -> Any:
        s = self.settings
        for i, message in enumerate(s.errors):
            yield SettingsErrorItem.from_parent(self, name=f"settings-error-{i + 1}", message=message)
        if not s.models and not s.migrations:
            yield SettingsErrorItem.from_parent(
                self, name="no-models",
                message="--ckpt-roundtrip: no model factories registered; list them in the ini "
                        "option ckpt_models (one 'package.module:callable' per line) or pass "
                        "--ckpt-models")

    def _formats(self, spec: str, backend: str) -> list[str]:
        """The selected formats that apply to the factory, when that can be told without importing."""
        framework = _framework(spec)
        usable = applicable(framework, backend)
        keep = [f for f in self.settings.formats if f in usable or is_user_format(f)]
        dropped = [f for f in self.settings.formats if f not in keep]
        if dropped and self.settings.formats_explicit:
            warnings.warn(stacklevel=2, message=pytest.PytestWarning(
                f"--ckpt-formats: {', '.join(dropped)} do(es) not apply to {framework} model factory "
                f"{spec} on the {backend} backend; formats for it: {', '.join(usable)}"))
        return keep


class ResumeSuite(RoundTripSuite):
    kind = CheckKind.RESUME

    def settings_items(self) -> Any:
        return ()  # reported once, by the round-trip suite (or below when it is off)


class MigrationSuite(RoundTripSuite):
    def collect(self) -> Any:
        s = self.settings
        if s.blocked:
            return  # reported once, by the round-trip suite
        formats = [f for f in s.formats if f in applicable(None, None, migration=True)]
        if s.migrations and not formats:
            warnings.warn(stacklevel=2, message=pytest.PytestWarning(
                f"ckpt_migrations: none of the selected formats ({', '.join(s.formats)}) is read "
                f"by both frameworks ({', '.join(applicable(None, None, migration=True))}); "
                "no migration is checked"))
        for old, new in s.migrations:
            yield MigrationCollector.from_parent(self, name=old, new_spec=new, formats=formats)


def generate_items(session: Any, settings: Settings) -> list[pytest.Item]:
    items: list[pytest.Item] = []
    suites = []
    if settings.roundtrip:
        suites += [(RoundTripSuite, ROUNDTRIP), (MigrationSuite, MIGRATION)]
    if settings.resume:
        suites.append((ResumeSuite if settings.roundtrip else _ResumeOnlySuite, RESUME))
    if settings.crash:
        # The settings errors are reported once, by the first suite.
        suites.append((CrashSuite if settings.roundtrip or settings.resume else _CrashOnlySuite, CRASH))
    for cls, name in suites:
        suite = cls.from_parent(session, name=name, nodeid=name, settings=settings)
        # genitems emits collect reports, so counts and "-k ... deselected" add up.
        items.extend(session.genitems(suite))
    return items


class _ResumeOnlySuite(RoundTripSuite):
    """Resume checks without round trips: the settings errors are reported here."""

    kind = CheckKind.RESUME


class CrashSuite(ResumeSuite):
    kind = CheckKind.CRASH


class _CrashOnlySuite(RoundTripSuite):
    kind = CheckKind.CRASH


def header_line(session_state: Any, steals: bool = False) -> str:
    s = session_state.settings
    if s.blocked:
        return ("ckpt: round trips not run: the settings are not usable (see the failing "
                "ckpt-roundtrip::settings-error items)")
    parts = [f"ckpt: seed {session_state.seed}"]
    if s.models and s.roundtrip:
        parts.append(f"round trips: {len(s.models)} factories x {len(s.formats)} formats asked for")
    if s.models and s.resume:
        parts.append(f"resume checks: {len(s.models)} factories x {len(s.formats)} formats asked for")
    if s.migrations and s.roundtrip:
        parts.append(f"migrations: {len(s.migrations)}")
    parts.append(f"{s.examples} examples per check after the fixed pairs, masks {s.masks}")
    parts.append("loads in fresh processes" if s.isolation.weaker_note is None else
                 "loads in the saving process (--ckpt-isolation=inline: weaker, blind to builds that "
                 "depend on the process)")
    backend = configured_backend()
    unusable = [f for f in s.formats
                if f in applicable(KERAS3, TENSORFLOW) and f not in applicable(KERAS3, backend)]
    if unusable:
        parts.append(f"{', '.join(unusable)} not collected for Keras 3 factories: Keras runs on "
                     f"{backend} and they need tensorflow")
    if steals:
        parts.append("xdist schedules by work stealing (checks differ in cost; "
                     "--dist load keeps xdist's default)")
    return "; ".join(parts)
