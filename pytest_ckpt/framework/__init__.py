"""Keras and TensorFlow access: detection, the layer tree, values, probes, factories, formats.

The bottom layer: imports nothing else of pytest_ckpt but ``errors``."""
