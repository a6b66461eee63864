"""pytest hooks of pytest-ckpt, and nothing else.

Importing this module must stay cheap: it is imported on every pytest run
once the package is installed.  No TensorFlow, Keras, Hypothesis, h5py or
NumPy here or in what it imports at module level.
"""

from __future__ import annotations

import pytest

from pytest_ckpt import options
from pytest_ckpt.state import STATE_KEY, SessionState

pytest_plugins = ["pytest_ckpt.fixtures"]


def pytest_addoption(parser):
    options.add_options(parser)


def pytest_configure(config):
    config.stash[STATE_KEY] = SessionState(options.read_settings(config))
    if config.stash[STATE_KEY].settings.roundtrip and config.pluginmanager.hasplugin("xdist"):
        from pytest_ckpt.xdist_scheduling import XdistHooks

        config.pluginmanager.register(XdistHooks(), "ckpt-xdist")


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    # A factory's items should share one worker (its models are built once
    # per process): see xdist_scheduling.  Only the default distribution
    # mode is changed; an explicit --dist is left alone.
    if (
        getattr(config.option, "numprocesses", None)
        and getattr(config.option, "dist", None) == "no"
        and options.roundtrip_requested(config)
    ):
        config.option.dist = "loadgroup"
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    # tryfirst: before -k/-m deselection and xdist's grouping see the items.
    state = config.stash[STATE_KEY]
    if state.settings.roundtrip:
        from pytest_ckpt.items import generate_items

        items.extend(generate_items(session, state.settings))


def pytest_report_header(config):
    s = config.stash[STATE_KEY].settings
    if not s.roundtrip:
        return None
    return (f"ckpt: round trips on: {len(s.models)} model factories and {len(s.migrations)} "
            f"migrations x {len(s.formats)} formats, {s.examples} examples each")
