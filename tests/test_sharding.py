"""Generated items across pytest-split shards: each in exactly one shard, the merged matrix
equal to the unsharded one (real runs, real files)."""

import json
import subprocess
import sys

import pytest

from pytest_ckpt.framework.formats import format_names
from pytest_ckpt.report.matrix import Results, merge
from tests.test_plugin import ini, run

C = "tests.cases"
FACTORIES = [f"{C}:two_dense_auto_named", "pytest_ckpt.models:classic_nested", "pytest_ckpt.models:lstm_model"]


@pytest.mark.slow
def test_three_pytest_split_shards_merge_into_the_unsharded_matrix(pytester, project_on_path):
    pytest.importorskip("pytest_split")
    ini(pytester, FACTORIES, formats="keras-weights, h5", examples=2, extra="ckpt_only = true\n")
    seed = "--hypothesis-seed=11"
    whole = run(pytester, "--ckpt-roundtrip", seed, "--store-durations", "--durations-path=durations.json",
                "--ckpt-report=whole.json")
    assert whole.ret in (0, 1)
    durations = json.loads((pytester.path / "durations.json").read_text())
    assert any(node.startswith("ckpt-roundtrip::") for node in durations)  # recorded under the stable ids
    shards = []
    for group in (1, 2, 3):
        result = run(pytester, "--ckpt-roundtrip", seed, "--splits=3", f"--group={group}",
                     "--durations-path=durations.json", f"--ckpt-report=shard-{group}.json")
        assert result.ret in (0, 1, 5)
        shards.append(str(pytester.path / f"shard-{group}.json"))
    cells = [c for s in shards for c in Results.load(s).cells]
    assert len(cells) == len(Results.load(pytester.path / "whole.json").cells) == 6  # each item once
    merged, problems = merge(shards)
    assert problems == []
    assert merged == merge([str(pytester.path / "whole.json")])[0]
    # The command line does the same, on stdout, formats in their usual order.
    done = subprocess.run([sys.executable, "-m", "pytest_ckpt", "report", *shards], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == merge(shards, format_names())[0]
