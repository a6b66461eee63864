"""Compiled factories for the optimizer-state truths (plain Keras 3 and tf-keras)."""


def _twin(k):
    """Two same-shaped Dense layers ``a``, ``b`` in a nested block, compiled with Adam.

    Adam keeps one momentum and one velocity per trainable variable and restores them by
    position, so freezing ``a`` at load and ``b`` at save hands a's slots to b.
    """
    block = k.Sequential(
        [k.Input((4,)), k.layers.Dense(4, name="a"), k.layers.Dense(4, name="b")], name="block")
    model = k.Sequential([k.Input((4,)), block, k.layers.Dense(2, name="head")])
    model.compile(optimizer=k.optimizers.Adam(), loss="mse")
    return model


def compiled_twin():
    import keras

    return _twin(keras)


def compiled_twin_tf_keras():
    import tf_keras

    return _twin(tf_keras)
