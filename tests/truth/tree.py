"""Print a factory's layer-name paths and variable keys, to pick freeze paths for roundtrip.py.

    python tests/truth/tree.py module:callable

Names are those of a build in a fresh process (auto-generated names depend on what the process
built before), which is what roundtrip.py's children see.
"""

import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roundtrip import dtype_name, framework_of, named_variables, sublayers


def main(spec):
    module, name = spec.split(":")
    model = getattr(importlib.import_module(module), name)()
    print(f"# {spec} ({framework_of(model)})")

    def walk(layer, prefix):
        for child in sublayers(layer):
            path = prefix + child.name
            print(f"layer {path}  ({type(child).__name__}, trainable={child.trainable})")
            walk(child, path + "/")

    walk(model, "")
    for i, v in enumerate(model.weights):
        key = next(k for k, kv in named_variables(model).items() if kv is v)
        print(f"var {i:3d} {key}  {tuple(v.shape)} {dtype_name(v)}  "
              f"(keras path {getattr(v, 'path', v.name)})")


if __name__ == "__main__":
    main(sys.argv[1])
