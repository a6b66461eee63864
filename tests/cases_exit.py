"""A training script used as a factory module: it parses ``sys.argv`` at import.

Its required ``--data`` is never given under pytest, so argparse raises
``SystemExit(2)`` at import; the plugin must turn that into a failing item.
"""

import argparse

import keras

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--data", required=True)
ARGS, _ = parser.parse_known_args()


def build():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
