"""Run every truth case in README.md one after the other; write results.jsonl and results.md.

    cd /work/main && TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH=/work/main \
        /work/venv-tf/bin/python tests/truth/run_all.py [SUBSTRING]

Sequential on purpose (shared 2-core machine).  Each case is a roundtrip.py run: four fresh
processes.  SUBSTRING runs only the cases whose command contains it.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
K3 = "/work/venv-tf/bin/python"
TFK = "/work/venv-tfk/bin/python"
C, M, T = "tests.cases", "pytest_ckpt.models", "tests.truth.compiled_cases"
TC, TM = "tests.cases_tf_keras", "pytest_ckpt.tf_keras_models"

CASES = [
    # (python, factory, format, extra args)
    (K3, f"{C}:reused_backbone", "h5", "--save-freeze backbone/dense"),
    (K3, f"{C}:reused_backbone", "keras-weights", "--save-freeze backbone/dense"),
    *[(K3, f"{C}:adapted_normalization", f, "")
      for f in ("tf-checkpoint", "keras-weights", "keras", "h5", "keras-model")],
    *[(K3, f"{C}:fixed_normalization", f, "") for f in ("tf-checkpoint", "keras-weights")],
    *[(K3, f"{C}:{n}_string_lookup", f, "") for n in ("adapted", "fixed")
      for f in ("keras-weights", "keras", "keras-sharded", "h5", "h5-by-name", "tf-checkpoint",
                "keras-model")],
    *[(K3, f"{C}:forgetful_int8_late", f, "")
      for f in ("keras-weights", "keras", "keras-sharded", "h5", "tf-checkpoint", "keras-model")],
    (K3, f"{C}:two_dense_auto_named", "h5-by-name", ""),
    (K3, f"{M}:classic_functional", "h5-by-name", ""),
    (K3, f"{M}:classic_nested", "h5-by-name", ""),
    (K3, f"{M}:swap_prone_nested", "h5-by-name", "--save-freeze twin_dense/dense"),
    *[(K3, f"{C}:nested_same_shaped", f, a) for f in ("h5", "keras-weights")
      for a in ("--save-freeze block/dense", "--load-freeze block/dense", "")],
    *[(K3, f"{C}:bfloat16_dense", f, "")
      for f in ("h5", "keras-weights", "keras", "tf-checkpoint")],
    (K3, f"{C}:bfloat16_data_dependent_constant", "keras-weights", ""),
    (K3, f"{C}:declared_wider_than_stored", "keras-weights", ""),
    *[(K3, f"{C}:glitchy_save", "keras-weights", "") for _ in range(4)],
    (K3, f"{C}:glitchy_save", "keras-weights", "--saves 2"),
    *[(K3, f"{M}:swap_prone_nested", "h5", a) for a in (
        "", "--save-freeze twin_dense/dense", "--load-freeze twin_dense/dense",
        "--save-freeze twin_dense/dense_1", "--save-freeze twin_dense",
        "--save-freeze twin_dense/dense --load-freeze twin_dense/dense_1",
        "--save-freeze twin_dense/dense --load-freeze twin_dense/dense")],
    *[(K3, f"{M}:swap_prone_nested", f, "--save-freeze twin_dense/dense --load-freeze "
       "twin_dense/dense_1") for f in ("keras-weights", "keras", "keras-sharded", "tf-checkpoint")],
    *[(K3, f"{M}:classic_nested", "h5", a) for a in (
        "", "--save-freeze resnet_small/conv1_bn", "--load-freeze resnet_small/conv1_bn",
        "--save-freeze resnet_small/conv2_block2_2_conv", "--save-freeze resnet_small",
        "--save-freeze resnet_small/conv1_conv")],
    *[(K3, f"{M}:classic_nested", f, "--save-freeze resnet_small/conv1_bn")
      for f in ("keras-weights", "keras", "tf-checkpoint")],
    (K3, f"{M}:classic_nested", "keras-weights", "--save-freeze resnet_small"),
    # Optimizer state, keyed by the variable each slot serves.
    *[(K3, f"{T}:compiled_twin", f, f"--compile {a}".strip())
      for f in ("keras-weights", "keras", "tf-checkpoint")
      for a in ("--save-freeze block/b --load-freeze block/a", "--load-freeze block/a",
                "--save-freeze block/a --load-freeze block/a", "")],
    (K3, f"{T}:compiled_twin", "keras-model", "--compile --save-freeze block/b"),
    (K3, f"{T}:compiled_twin", "h5", "--compile --save-freeze block/b --load-freeze block/a"),
    # tests.cases:compiled_functional (added to tests/cases.py during this work): flat, SGD.
    *[(K3, f"{C}:compiled_functional", f, f"--compile {a}".strip())
      for f in ("keras-weights", "tf-checkpoint") for a in ("--save-freeze b --load-freeze a", "")],
    # tf-keras
    (TFK, f"{TC}:string_lookup", "h5", ""),
    (TFK, f"{TC}:string_lookup", "tf-checkpoint", ""),
    (TFK, f"{TC}:adapted_string_lookup", "h5", ""),
    (TFK, f"{TC}:adapted_string_lookup", "tf-checkpoint", ""),
    (TFK, f"{TM}:swap_prone_nested", "h5", "--save-freeze twin_dense/dense"),
    (TFK, f"{TM}:swap_prone_nested", "h5-by-name", "--save-freeze twin_dense/dense"),
    (TFK, f"{TM}:swap_prone_nested", "tf-checkpoint", "--save-freeze twin_dense/dense"),
    (TFK, f"{TM}:classic_nested", "h5", "--save-freeze resnet_small/conv1_bn"),
    *[(TFK, f"{T}:compiled_twin_tf_keras", f, f"--compile {a}")
      for f in ("tf-checkpoint", "h5")
      for a in ("--save-freeze block/b --load-freeze block/a", "--load-freeze block/a")],
]


def command(python, factory, fmt, extra):
    return f"{python} tests/truth/roundtrip.py {factory} {fmt} {extra}".strip()


def verdict(r):
    parts = [", ".join(f"{k} {v}" for k, v in r["counts"].items()) or "-"]
    if r.get("optimizer_counts"):
        opt = r["optimizer_counts"].items()
        parts.append("optimizer: " + ", ".join(f"{k} {v}" for k, v in opt))
    odd = sorted({v for v in {**r["variables"], **r["optimizer"]}.values() if v != "survived"})
    shown = [f"{k}={v}" for k, v in {**r["variables"], **r["optimizer"]}.items()
             if v != "survived" and not v.startswith("missing")][:4]
    if odd and shown:
        parts.append("; ".join(shown) + (" ..." if len(odd) > 4 else ""))
    return " / ".join(parts)


def row(r, cmd):
    """One markdown row: the command, verdict counts, save/load error, warnings, outputs diff."""
    err = (r.get("save_error") and f"SAVE: {r['save_error']}") or r.get("load_error") or ""
    warn = [w for w in r.get("warnings", []) if "HDF5 file via" not in w]
    diff = r.get("outputs_max_diff")
    diff = f"{diff:.3g}" if isinstance(diff, float) else str(diff)
    env = "tf-keras venv" if "venv-tfk" in cmd else "keras3 venv"
    short = cmd.split("roundtrip.py ", 1)[1]
    cells = [f"`{short}` ({env})", verdict(r),
             err.replace("|", "/")[:160], "; ".join(warn).replace("|", "/")[:160], diff]
    return "| " + " | ".join(cells) + " |"


def main(filter_text=""):
    os.chdir(os.path.dirname(os.path.dirname(HERE)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.getcwd())
    mode = "a" if filter_text else "w"
    with open(os.path.join(HERE, "results.jsonl"), mode) as out:
        for case in CASES:
            cmd = command(*case)
            if filter_text not in cmd:
                continue
            proc = subprocess.run(cmd.split(), capture_output=True, text=True, env=env)
            line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
            out.write(json.dumps({"cmd": cmd, "result": json.loads(line)}) + "\n")
            out.flush()
            print(cmd, flush=True)
    table()


def table():
    with open(os.path.join(HERE, "results.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write("| roundtrip.py arguments | verdicts | error | warnings "
                "| outputs max diff |\n")
        f.write("|---|---|---|---|---|\n")
        for r in rows:
            f.write(row(r["result"], r["cmd"]) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
