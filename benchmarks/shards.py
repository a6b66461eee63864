"""Wall time of 1, 2 and 3 pytest-split shards of one set of checks, side by side.

    python benchmarks/shards.py

Each shard runs alone, as it would on its own CI machine (2 cores, -n 2),
after one unsharded run that records the durations pytest-split splits by.
Prints, for 1, 2 and 3 shards, each shard's wall time and the slowest one
(what a CI matrix waits for), and each shard's fixed cost: a pytest
start-up, the loading processes' start and one build of each model its
items need.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACTORIES = ["pytest_ckpt.models:classic_nested", "pytest_ckpt.models:classic_functional",
             "pytest_ckpt.models:swap_prone_nested", "pytest_ckpt.models:deep_nested",
             "pytest_ckpt.models:lstm_model", "pytest_ckpt.models:attention_model"]
INI = """[pytest]
ckpt_models =
{models}
ckpt_formats = keras-weights, keras, h5
ckpt_examples = 10
ckpt_only = true
"""


def _run(folder: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                    "--ckpt-roundtrip", "--hypothesis-seed=3", "--durations-path=durations.json", *args],
                   cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "pytest.ini").write_text(INI.format(models="\n".join(f"    {m}" for m in FACTORIES)))
        whole = _run(folder, "--store-durations")
        print(f"{len(FACTORIES)} factories x 3 formats, 10 examples; unsharded (recording durations): {whole:.1f} s")
        one = None
        for splits in (1, 2, 3):
            times = [_run(folder, f"--splits={splits}", f"--group={g}") for g in range(1, splits + 1)]
            one = one or max(times)
            shown = ", ".join(f"{t:.1f}" for t in times)
            print(f"{splits} shard(s): each {shown} s; CI waits {max(times):.1f} s "
                  f"({one / max(times):.2f}x the one-shard run); machine time {sum(times):.1f} s")


if __name__ == "__main__":
    main()
