"""``python -m pytest_ckpt inspect FILE`` and ``python -m pytest_ckpt diff A B``."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from pytest_ckpt.checkpoint_files import CheckpointFileError, read_checkpoint


def inspect(path: str) -> int:
    contents = read_checkpoint(path)
    print(f"{contents.path}: format {contents.format}, {len(contents.variables)} variables, "
          f"{sum(v.value.nbytes for v in contents.variables):,} bytes")
    for note in contents.notes:
        print(f"  note: {note}")
    group = None
    for v in contents.variables:
        if v.group != group:
            group = v.group
            print(f"  [{group or '/'}]")
        where = f"#{v.position} " if v.position is not None else ""
        print(f"    {where}{v.key.removeprefix(group + '/') if group else v.key}  "
              f"{v.shape} {v.dtype}")
    return 0


def diff(path_a: str, path_b: str) -> int:
    a, b = read_checkpoint(path_a).by_key(), read_checkpoint(path_b).by_key()
    only_a = [k for k in a if k not in b]
    only_b = [k for k in b if k not in a]
    shape, value = [], []
    for k in (k for k in a if k in b):
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype:
            shape.append(f"{k}: {a[k].shape} {a[k].dtype} vs {b[k].shape} {b[k].dtype}")
        elif not np.array_equal(a[k].value, b[k].value):
            same_as = [j for j in a if j != k and a[j].shape == b[k].shape
                       and np.array_equal(a[j].value, b[k].value)]
            hint = f" (B holds A's value of {same_as[0]})" if same_as else ""
            value.append(f"{k}: max |A-B| = {np.max(np.abs(a[k].value.astype(float) - b[k].value.astype(float))):.6g}{hint}")
    for title, rows in (("only in A", only_a), ("only in B", only_b),
                        ("shape or dtype differs", shape), ("values differ", value)):
        if rows:
            print(f"{title} ({len(rows)}):")
            print("\n".join(f"  {r}" for r in rows))
    same = len(a) - len(only_a) - len(shape) - len(value)
    print(f"{same} of {len(a)} variables identical by key and value")
    return 1 if (only_a or only_b or shape or value) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_ckpt",
                                     description="Look inside Keras checkpoint files.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="print a checkpoint's stored tree")
    p.add_argument("file")
    p = sub.add_parser("diff", help="compare two checkpoints by key and by value")
    p.add_argument("a")
    p.add_argument("b")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            return inspect(args.file)
        return diff(args.a, args.b)
    except CheckpointFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
