"""Test items that ``--ckpt-roundtrip`` generates: one per model factory x format.

Node ids read ``ckpt-roundtrip::package.module:factory::format``, so ``-k``
selects by factory or format.  Nothing heavy happens at collection: the
factory is imported and its models built when the first item runs.
"""

from __future__ import annotations

import warnings

import pytest

from pytest_ckpt.errors import CkptError, UnknownFormatError
from pytest_ckpt.factories import declared_framework
from pytest_ckpt.formats import MIGRATION_FORMATS, format_names
from pytest_ckpt.options import CkptSettings, hypothesis_seed
from pytest_ckpt.state import STATE_KEY

SUITE_NAME = "ckpt-roundtrip"
MIGRATION_SUITE_NAME = "ckpt-migration"


class ReportedFailure(Exception):
    """A failure whose message is the whole story: shown without a traceback."""


class _CkptNode:
    def reportinfo(self):
        # The third element heads failure sections.  It must not be a suffix
        # of the node id, or -v output rewrites its dots as "::".
        return self.path, None, self.headline()

    def headline(self) -> str:
        return f"ckpt: {self.name}"

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (ReportedFailure, CkptError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class RoundTripItem(_CkptNode, pytest.Item):
    """One factory (or one migration pair) in one format."""

    def __init__(self, *, specs: tuple[str, ...], format_name: str, **kwargs):
        super().__init__(**kwargs)
        self.specs = specs
        self.format_name = format_name

    def headline(self) -> str:
        kind = "migration" if len(self.specs) == 2 else "round trip"
        return f"{kind} {' -> '.join(self.specs)} [{self.format_name}]"

    def runtest(self) -> None:
        # Heavy imports happen here, on the first item that runs.
        from pytest_ckpt.formats import get_format
        from pytest_ckpt.property import check_format, choose_seed
        from pytest_ckpt.report import render

        state = self.config.stash[STATE_KEY]
        pair = state.pairs.get(*self.specs)
        for framework in {pair.save_framework, pair.load_framework}:
            try:
                get_format(self.format_name, framework)
            except UnknownFormatError as exc:
                # Collected because the framework could not be told before
                # building; now it can.
                pytest.skip(str(exc))
        seed = choose_seed(hypothesis_seed(self.config))
        outcome = check_format(pair, self.format_name,
                               examples=state.settings.examples, seed=seed,
                               tmp_root=state.settings.tmpdir)
        if outcome.failure is not None:
            raise ReportedFailure(render(outcome.failure, seed=seed,
                                         reproduce=self.reproduce_command(seed)))

    def reproduce_command(self, seed) -> str:
        if len(self.specs) == 2:
            target = f"--ckpt-models= --ckpt-migrations '{self.specs[0]} -> {self.specs[1]}'"
        else:
            target = f"--ckpt-models {self.specs[0]} --ckpt-migrations="
        seed_arg = f" --hypothesis-seed={seed}" if seed is not None else ""
        return f"pytest --ckpt-roundtrip {target} --ckpt-formats {self.format_name}{seed_arg}"


class SettingsErrorItem(_CkptNode, pytest.Item):
    """Stands for a configuration mistake: fails with the message, alone."""

    def __init__(self, *, message: str, **kwargs):
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        raise ReportedFailure(self.message)


class FactoryCollector(_CkptNode, pytest.Collector):
    """A factory's items, one per format; under a migration, the new factory's."""

    def __init__(self, *, specs: tuple[str, ...], formats: list[str], **kwargs):
        super().__init__(**kwargs)
        self.specs = specs
        self.formats = formats

    def collect(self):
        group = " -> ".join(self.specs)
        for name in self.formats:
            item = RoundTripItem.from_parent(self, name=name, specs=self.specs, format_name=name)
            if self.config.pluginmanager.hasplugin("xdist"):
                # With --dist loadgroup, one worker gets all of a factory's
                # items and builds its models once.
                item.add_marker(pytest.mark.xdist_group(group))
            yield item


class MigrationCollector(_CkptNode, pytest.Collector):
    """``ckpt-migration::<old>``: holds the new factory, so both are parts of the id."""

    def __init__(self, *, new_spec: str, formats: list[str], **kwargs):
        super().__init__(**kwargs)
        self.new_spec = new_spec
        self.formats = formats

    def collect(self):
        yield FactoryCollector.from_parent(self, name=self.new_spec,
                                           specs=(self.name, self.new_spec), formats=self.formats)


class RoundTripSuite(_CkptNode, pytest.Collector):
    def __init__(self, *, settings: CkptSettings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def collect(self):
        s = self.settings
        for i, message in enumerate(s.errors):
            yield SettingsErrorItem.from_parent(self, name=f"settings-error-{i + 1}", message=message)
        if not s.models and not s.migrations:
            yield SettingsErrorItem.from_parent(
                self, name="no-models",
                message="--ckpt-roundtrip: no model factories registered; list them in the ini "
                        "option ckpt_models (one 'package.module:callable' per line) or pass "
                        "--ckpt-models",
            )
        if any("ckpt_examples" in e for e in s.errors):
            return  # no sensible example count: do not guess one
        formats = [f for f in s.formats if f not in s.unknown_formats]
        for spec in s.models:
            yield FactoryCollector.from_parent(self, name=spec, specs=(spec,),
                                               formats=self._applicable(spec, formats))

    def _applicable(self, spec: str, formats: list[str]) -> list[str]:
        """The formats that apply to the factory's framework, when it can be told."""
        framework = declared_framework(spec)
        if framework is None:
            return formats
        keep = [f for f in formats if f in format_names(framework)]
        dropped = [f for f in formats if f not in keep]
        if dropped and self.settings.formats_explicit:
            warnings.warn(pytest.PytestWarning(
                f"--ckpt-formats: {', '.join(dropped)} do(es) not apply to {framework} model factory "
                f"{spec}; formats for {framework}: {', '.join(format_names(framework))}"))
        return keep


class MigrationSuite(RoundTripSuite):
    def collect(self):
        s = self.settings
        if any("ckpt_examples" in e for e in s.errors):
            return  # reported once, by the round-trip suite
        formats = [f for f in s.formats if f in MIGRATION_FORMATS]
        if s.migrations and not formats:
            warnings.warn(pytest.PytestWarning(
                f"ckpt_migrations: none of the selected formats ({', '.join(s.formats)}) is read "
                f"by both frameworks ({', '.join(MIGRATION_FORMATS)}); no migration is checked"))
        for old, new in s.migrations:
            yield MigrationCollector.from_parent(self, name=old, new_spec=new, formats=formats)


def generate_items(session, settings: CkptSettings) -> list[pytest.Item]:
    items: list[pytest.Item] = []
    for cls, name in ((RoundTripSuite, SUITE_NAME), (MigrationSuite, MIGRATION_SUITE_NAME)):
        suite = cls.from_parent(session, name=name, nodeid=name, settings=settings)
        # genitems emits collect reports, so counts and "-k ... deselected" add up.
        items.extend(session.genitems(suite))
    return items
