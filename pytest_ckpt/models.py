"""Built-in model factories: small copies of architectures that break checkpoints.

Each function builds a new, built Keras 3 model on every call.  They are
small enough for fast tests (a few thousand weights) yet keep the structure
that matters: a ResNet-style base with BatchNormalization nested inside a
``Sequential``, the same network written flat with the functional API,
deeper nesting, a shared layer, recurrent and attention layers.

Register them like your own: ``ckpt_models = pytest_ckpt.models:classic_nested``.
Each takes an optional ``keras`` module, so :mod:`pytest_ckpt.tf_keras_models`
builds the very same architectures with tf-keras.
"""

from __future__ import annotations

from typing import Any

INPUT_SHAPE = (16, 16, 3)


def _keras(module: Any=None) -> Any:
    """The Keras to build with: Keras 3 unless a tf-keras module is passed."""
    if module is not None:
        return module
    import keras

    return keras


def _residual_block(keras: Any, x: Any, filters: int, name: str) -> Any:
    layers = keras.layers
    shortcut = x
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_1_conv")(x)
    y = layers.BatchNormalization(name=f"{name}_1_bn")(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_2_bn")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _resnet_stem_and_blocks(keras: Any, inputs: Any, filters: int = 8, blocks: int = 2) -> Any:
    layers = keras.layers
    x = layers.Conv2D(filters, 3, strides=2, padding="same", name="conv1_conv")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for b in range(blocks):
        x = _residual_block(keras, x, filters, f"conv2_block{b + 1}")
    return x


def resnet_base(keras: Any=None) -> Any:
    """A small ResNet-style functional model (convolutions, BatchNorm, residual adds)."""
    keras = _keras(keras)
    inputs = keras.Input(INPUT_SHAPE)
    return keras.Model(inputs, _resnet_stem_and_blocks(keras, inputs), name="resnet_small")


def classic_nested(keras: Any=None) -> Any:
    """The classic: a ResNet-style base inside ``Sequential([base, Flatten(), Dense])``."""
    keras = _keras(keras)
    return keras.Sequential(
        [keras.Input(INPUT_SHAPE), resnet_base(keras), keras.layers.Flatten(), keras.layers.Dense(10)]
    )


def classic_functional(keras: Any=None) -> Any:
    """The functional rewrite of :func:`classic_nested`: same layers, no nested model."""
    keras = _keras(keras)
    inputs = keras.Input(INPUT_SHAPE)
    x = _resnet_stem_and_blocks(keras, inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def swap_prone_nested(keras: Any=None) -> Any:
    """Two same-shaped Dense layers in a nested model: legacy HDF5 swaps them silently."""
    keras = _keras(keras)
    base = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(4)], name="twin_dense"
    )
    return keras.Sequential([keras.Input((4,)), base, keras.layers.Dense(2)])


def deep_nested(keras: Any=None) -> Any:
    """A model nested three levels deep, with BatchNorm at the bottom."""
    keras = _keras(keras)
    layers = keras.layers
    inner = keras.Sequential(
        [keras.Input((8,)), layers.Dense(8), layers.BatchNormalization()], name="level3"
    )
    middle = keras.Sequential([keras.Input((8,)), inner, layers.Dense(8)], name="level2")
    outer = keras.Sequential([keras.Input((8,)), layers.Dense(8), middle], name="level1")
    return keras.Sequential([keras.Input((8,)), outer, layers.Dense(3)])


def shared_layer(keras: Any=None) -> Any:
    """A functional model applying one Dense layer twice, inside a nested model."""
    keras = _keras(keras)
    layers = keras.layers
    shared = layers.Dense(6, name="shared_dense")
    a = keras.Input((6,))
    b = keras.Input((6,))
    merged = layers.Concatenate()([shared(a), shared(b)])
    siamese = keras.Model([a, b], layers.Dense(6)(merged), name="siamese")
    x1 = keras.Input((6,))
    x2 = keras.Input((6,))
    out = layers.Dense(1)(siamese([x1, x2]))
    return keras.Model([x1, x2], out)


def lstm_model(keras: Any=None) -> Any:
    """An embedding and an LSTM (whose weights live on its cell) under a dense head."""
    keras = _keras(keras)
    layers = keras.layers
    return keras.Sequential(
        [keras.Input((7,), dtype="int32"), layers.Embedding(20, 6), layers.LSTM(5), layers.Dense(3)]
    )


def attention_model(keras: Any=None) -> Any:
    """A small transformer block: MultiHeadAttention, LayerNormalization, feed-forward."""
    keras = _keras(keras)
    layers = keras.layers
    inputs = keras.Input((5, 8))
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
    x = layers.LayerNormalization()(layers.Add()([inputs, attended]))
    x = layers.Dense(8)(x)
    block = keras.Model(inputs, x, name="encoder_block")
    return keras.Sequential([keras.Input((5, 8)), block, layers.GlobalAveragePooling1D(), layers.Dense(2)])


def resnet50_nested(keras: Any=None) -> Any:
    """The full-size classic: ``keras.applications.ResNet50(weights=None)`` nested in a Sequential.

    About 31.6M parameters; used by the end-to-end test and the benchmarks.
    """
    keras = _keras(keras)
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(224, 224, 3))
    return keras.Sequential(
        [keras.Input((224, 224, 3)), base, keras.layers.Flatten(), keras.layers.Dense(80)]
    )


def _compiled(model: Any, keras: Any, optimizer: str = "adam") -> Any:
    model.compile(optimizer=optimizer, loss="mse")
    return model


def compiled_swap_prone_nested(keras: Any=None) -> Any:
    """:func:`swap_prone_nested` compiled with Adam: its slots are restored by position too."""
    keras = _keras(keras)
    return _compiled(swap_prone_nested(keras), keras)


def compiled_classic_functional(keras: Any=None) -> Any:
    """:func:`classic_functional` compiled with Adam."""
    keras = _keras(keras)
    return _compiled(classic_functional(keras), keras)


def compiled_resnet50_nested(keras: Any=None) -> Any:
    """:func:`resnet50_nested` compiled with Adam (31.6M parameters, 2 slots each)."""
    keras = _keras(keras)
    return _compiled(resnet50_nested(keras), keras)


def fine_tuning(keras: Any=None) -> Any:
    """The two-phase fine-tuning story, phase one: the base frozen, the head trains (Adam).

    Phase two unfreezes the top of the base: every layer of
    :data:`FINE_TUNING_PHASE_TWO_FROZEN` stays frozen, the rest of the base
    trains.  ``ckpt_resume.check(fine_tuning, save_frozen=["resnet_small"],
    load_frozen=FINE_TUNING_PHASE_TWO_FROZEN)`` checks resuming across it.
    """
    keras = _keras(keras)
    model = classic_nested(keras)
    model.layers[0].trainable = False
    return _compiled(model, keras)


def fine_tuning_resumable(keras: Any=None) -> Any:
    """:func:`fine_tuning` as resume code must prepare it: its optimizer built, for the phase-one
    trainable set, before anything is loaded (``compile()`` alone builds it only at the first
    step, after ``load_weights`` has skipped its saved state)."""
    model = fine_tuning(keras)
    model.optimizer.build(model.trainable_variables)
    return model


# Phase two of fine_tuning: the stem and the first residual block stay frozen.
FINE_TUNING_PHASE_TWO_FROZEN = [
    "resnet_small/conv1_conv", "resnet_small/conv1_bn",
    "resnet_small/conv2_block1_1_conv", "resnet_small/conv2_block1_1_bn",
    "resnet_small/conv2_block1_2_conv", "resnet_small/conv2_block1_2_bn",
]

BUILTIN = (
    classic_nested,
    classic_functional,
    swap_prone_nested,
    deep_nested,
    shared_layer,
    lstm_model,
    attention_model,
)
COMPILED = (compiled_swap_prone_nested, compiled_classic_functional, fine_tuning, fine_tuning_resumable)
