"""pytest-ckpt: catch Keras checkpoints that lose or scramble weights.

Importing this package is cheap: TensorFlow, Keras and Hypothesis are only
imported by the modules that need them, when they are used.
"""

__version__ = "0.1.0"
