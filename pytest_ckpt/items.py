"""Test items that ``--ckpt-roundtrip`` generates: one per model factory x format.

Node ids read ``ckpt-roundtrip::package.module:factory::format``, so ``-k``
selects by factory or format.  Nothing heavy happens at collection: the
factory is imported and its models built when the first item runs.
"""

from __future__ import annotations

import pytest

from pytest_ckpt.errors import CkptError
from pytest_ckpt.options import CkptSettings, hypothesis_seed
from pytest_ckpt.state import STATE_KEY

SUITE_NAME = "ckpt-roundtrip"


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
    def __init__(self, *, spec: str, format_name: str, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.format_name = format_name

    def headline(self) -> str:
        return f"round trip {self.spec} [{self.format_name}]"

    def runtest(self) -> None:
        # Heavy imports happen here, on the first item that runs.
        from pytest_ckpt.formats import get_format
        from pytest_ckpt.property import check_format, choose_seed
        from pytest_ckpt.report import render

        state = self.config.stash[STATE_KEY]
        pair = state.pairs.get(self.spec)
        seed = choose_seed(hypothesis_seed(self.config))
        outcome = check_format(pair, get_format(self.format_name),
                               examples=state.settings.examples, seed=seed,
                               tmp_root=state.settings.tmpdir)
        if outcome.failure is not None:
            raise ReportedFailure(render(outcome.failure, seed=seed,
                                         reproduce=self.reproduce_command(seed)))

    def reproduce_command(self, seed) -> str:
        seed_arg = f" --hypothesis-seed={seed}" if seed is not None else ""
        return (f"pytest --ckpt-roundtrip --ckpt-models {self.spec} "
                f"--ckpt-formats {self.format_name}{seed_arg}")


class SettingsErrorItem(_CkptNode, pytest.Item):
    """Stands for a configuration mistake: fails with the message, alone."""

    def __init__(self, *, message: str, **kwargs):
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        raise ReportedFailure(self.message)


class FactoryCollector(_CkptNode, pytest.Collector):
    def __init__(self, *, formats: list[str], **kwargs):
        super().__init__(**kwargs)
        self.formats = formats

    def collect(self):
        for name in self.formats:
            item = RoundTripItem.from_parent(self, name=name, spec=self.name, format_name=name)
            if self.config.pluginmanager.hasplugin("xdist"):
                # With --dist loadgroup, one worker gets all of a factory's
                # items and builds its models once.
                item.add_marker(pytest.mark.xdist_group(self.name))
            yield item


class RoundTripSuite(_CkptNode, pytest.Collector):
    def __init__(self, *, settings: CkptSettings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def collect(self):
        s = self.settings
        for i, message in enumerate(s.errors):
            yield SettingsErrorItem.from_parent(self, name=f"settings-error-{i + 1}", message=message)
        if not s.models:
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
            yield FactoryCollector.from_parent(self, name=spec, formats=formats)


def generate_items(session, settings: CkptSettings) -> list[pytest.Item]:
    suite = RoundTripSuite.from_parent(session, name=SUITE_NAME, nodeid=SUITE_NAME,
                                       settings=settings)
    # genitems emits collect reports, so counts and "-k ... deselected" add up.
    return list(session.genitems(suite))
