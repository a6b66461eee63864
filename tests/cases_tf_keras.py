"""tf-keras (Keras 2) factories for the suite's known cases."""

import numpy as np
import tf_keras


def string_lookup():
    """A preprocessing layer whose tf-keras internals differ from Keras 3's."""
    inputs = tf_keras.Input((1,), dtype="string")
    x = tf_keras.layers.StringLookup(vocabulary=[f"w{i}" for i in range(8)])(inputs)
    x = tf_keras.layers.Embedding(12, 3)(x)
    x = tf_keras.layers.Flatten()(x)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(2)(x))


def adapted_string_lookup():
    rng = np.random.default_rng()
    inputs = tf_keras.Input((1,), dtype="string")
    x = tf_keras.layers.StringLookup(vocabulary=[f"w{i}" for i in rng.permutation(20)[:8]])(inputs)
    x = tf_keras.layers.Embedding(24, 3)(x)
    x = tf_keras.layers.Flatten()(x)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(2)(x))


def legacy_optimizer():
    """Compiled with a legacy (optimizer_v2) optimizer: no build(), slots made on first use."""
    inputs = tf_keras.Input((4,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(tf_keras.layers.Dense(4)(inputs)))
    model.compile(optimizer=tf_keras.optimizers.legacy.Adam(), loss="mse")
    return model
