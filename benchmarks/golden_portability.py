"""How close the repository's goldens come to their output tolerance, here.

    python benchmarks/golden_portability.py
    ONEDNN_MAX_CPU_ISA=AVX512_CORE python benchmarks/golden_portability.py   # no native bfloat16
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/golden_portability.py          # Eigen kernels
    KERAS_BACKEND=jax python benchmarks/golden_portability.py

For each golden under tests/ckpt_golden/test_backends it loads the golden
into the model its test builds and prints the largest output difference as
a fraction of the tolerance the check derives (1.0 would be a failure).
Run it under each CPU feature set and backend: the largest fraction seen is
the margin the derived tolerance leaves.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Recorder:
    def __init__(self) -> None:
        self.models: list[tuple[object, dict]] = []

    def check(self, model: object, **kwargs: object) -> None:
        self.models.append((model, kwargs))


def main() -> None:
    import numpy as np

    from pytest_ckpt.framework.formats import get_format
    from pytest_ckpt.framework.detection import backend_of, framework_of
    from pytest_ckpt.golden.store import GoldenFolder
    from pytest_ckpt.checks.tolerance import output_tolerance
    from pytest_ckpt.golden.check import _read, probe
    from pytest_ckpt.framework.tree import LayerTree
    from tests import test_backends

    folder = ROOT / "tests" / "ckpt_golden" / "test_backends"
    worst = 0.0
    for name in sorted(n for n in dir(test_backends) if n.startswith("test_")):
        recorder = _Recorder()
        getattr(test_backends, name)(recorder)
        for i, (model, _) in enumerate(recorder.models, start=1):
            with tempfile.TemporaryDirectory() as wd:
                golden = _read(GoldenFolder(folder / name / f"check-{i}"), Path(wd))
                fw = framework_of(model) or ""
                get_format(golden.manifest.format, fw, backend_of(fw)).load(model, golden.checkpoint)
                now = probe.outputs(model, golden.inputs)
                tolerance, why = output_tolerance(LayerTree(model), golden.stored, None, None)
                for out, stored in golden.stored.items():
                    diff = float(np.max(np.abs(np.asarray(now[out], np.float64) - np.asarray(stored, np.float64))))
                    fraction = diff / tolerance[out][1]
                    worst = max(worst, fraction)
                    print(f"{name}/check-{i} {out}: max |difference| {diff:.3g} = {fraction:.3f} of the "
                          f"tolerance ({why}; written on {golden.manifest.backend})")
    print(f"worst: {worst:.3f} of the tolerance")


if __name__ == "__main__":
    main()
