"""Model factories for the suite's known-bad and known-good cases (Keras 3).

Each known-bad factory has its truth established by a plain-Keras script in
``tests/truth/`` (save in one process, load in another, as users do), and the
suite checks that the plugin's verdict agrees with it.  Factories here are
imported by ``pytest --ckpt-roundtrip`` runs of the suite through
``tests.cases:<name>``, so the project root must be on ``sys.path``.
"""

from __future__ import annotations

import itertools
import json
import os

import keras
import numpy as np

_last_draw: dict[str, float] = {}
# Set by tests/truth/roundtrip.py for its children: their builds are consecutive too, across processes.
BUILD_MEMORY = "CASES_BUILD_MEMORY"


def _unlike_last_build(case: str, draw, apart: float) -> float:
    """``draw(rng)`` again until it is ``apart`` from what ``case`` drew at its previous build.

    The saver and the loader are consecutive builds: two free draws can land
    within the output tolerance (a bfloat16 scale in [1, 2): about one pair in
    128 rounds alike), and a known-bad case would then pass by chance.  The
    previous build is this process's, or the one recorded in the file that
    ``$CASES_BUILD_MEMORY`` names (the truth script's save and load children).
    """
    memory = os.environ.get(BUILD_MEMORY)
    recorded = {}
    if memory and os.path.exists(memory):
        with open(memory) as f:
            recorded = json.load(f)
    last = _last_draw.get(case, recorded.get(case))
    rng = np.random.default_rng()
    value = draw(rng)
    while last is not None and abs(value - last) < apart:
        value = draw(rng)
    _last_draw[case] = value
    if memory:
        # Atomic: another process of the run may be reading it.
        part = f"{memory}.{os.getpid()}"
        with open(part, "w") as f:
            json.dump({**recorded, case: value}, f)
        os.replace(part, memory)
    return value


def two_dense_auto_named():
    """Flat and auto-named: by-name loading works in a fresh process."""
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.Dense(3)])


def nondeterministic():
    """A different architecture on every call: refused."""
    nondeterministic.calls = getattr(nondeterministic, "calls", 0) + 1
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2 + nondeterministic.calls)])


_same = None


def same_object():
    """The very same model object on every call: refused."""
    global _same
    if _same is None:
        _same = two_dense_auto_named()
    return _same


_backbone = None


def reused_backbone():
    """A module-level cached backbone: both builds share its variables.

    Truth (tests/truth/README.md): saved with the backbone's first Dense
    frozen and loaded with nothing frozen, in two processes, legacy h5 swaps
    4 of 6 variables.  In one process the two models share storage, so no honest
    round trip is possible: the plugin must refuse the factory.
    """
    global _backbone
    if _backbone is None:
        _backbone = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(4)], name="backbone")
    return keras.Sequential([keras.Input((4,)), _backbone, keras.layers.Dense(2)])


def nested_same_shaped():
    """A nested block of two same-shaped Dense layers between other layers."""
    block = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(6), keras.layers.Dense(6)], name="block")
    return keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(6), block, keras.layers.Dense(2)])


def twins_after_many_blocks():
    """Forty one-layer blocks, then a block of two same-shaped Dense layers.

    More layers than fixed pairs: the twins must still be among them.
    """
    blocks = [keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)], name=f"block{i}")
              for i in range(40)]
    twins = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="a"),
                              keras.layers.Dense(4, name="b")], name="twins")
    return keras.Sequential([keras.Input((4,))] + blocks + [twins, keras.layers.Dense(2)])


def bidirectional_lstm():
    """A Bidirectional wrapper: a container under the root, though not a nested model."""
    return keras.Sequential([keras.Input((5, 3)), keras.layers.Bidirectional(keras.layers.LSTM(4)),
                             keras.layers.Dense(2)])


def shared_top_and_nested():
    """One Dense used at the top level and as the first layer of a block nested three deep,
    beside a same-shaped Dense: the tree lists it once, at the top, yet its weights are
    also loaded by position inside the nest (found by an adversarial review)."""
    inputs = keras.Input((4,))
    h = inputs
    for _ in range(12):
        h = keras.layers.Dense(4)(h)
    d = keras.layers.Dense(4, name="d")
    inner = keras.Sequential([keras.Input((4,)), d, keras.layers.Dense(4, name="d2")], name="inner")
    nest = inner
    for name in ("c1", "c2", "c3"):
        nest = keras.Sequential([keras.Input((4,)), nest], name=name)
    return keras.Model(inputs, keras.layers.Add()([d(h), nest(h)]))


def adapted_normalization():
    """Normalization adapted on different data at every build (training vs serving code).

    ``tf.train.Checkpoint`` restores the statistics' variables but the layer
    keeps computing with the ones it cached at adapt time.
    """
    norm = keras.layers.Normalization()
    shift = _unlike_last_build("adapted_normalization", lambda rng: rng.uniform(-3, 3), apart=1.0)
    data = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    norm.adapt(data * 5 + 3 + shift)
    return keras.Sequential([keras.Input((3,)), norm, keras.layers.Dense(2)])


def adapted_discretization():
    """Bin boundaries adapted on different data at every build: not a variable, in no checkpoint.

    Only inputs near the boundaries tell, so a one-sample probe passed it.
    """
    bins = keras.layers.Discretization(num_bins=4)
    # Near the probe's samples (most within one of zero), so the moved boundaries have some between them.
    shift = _unlike_last_build("adapted_discretization", lambda rng: rng.uniform(-1, 1), apart=0.5)
    bins.adapt((np.random.default_rng(0).normal(size=(32, 1)) + shift).astype("float32"))
    return keras.Sequential([keras.Input((1,)), bins, keras.layers.CategoryEncoding(4, output_mode="one_hot"),
                             keras.layers.Dense(2)])


def fixed_discretization():
    """The same boundaries in every build: the known-good twin of adapted_discretization."""
    bins = keras.layers.Discretization(bin_boundaries=[-0.7, 0.0, 0.7])
    return keras.Sequential([keras.Input((1,)), bins, keras.layers.CategoryEncoding(4, output_mode="one_hot"),
                             keras.layers.Dense(2)])


def fixed_normalization():
    """The known-good twin: adapted on the same data at every build."""
    norm = keras.layers.Normalization()
    data = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    norm.adapt(data * 5 + 3)
    return keras.Sequential([keras.Input((3,)), norm, keras.layers.Dense(2)])


def _lookup_model(words):
    inputs = keras.Input((1,), dtype="string")
    x = keras.layers.StringLookup(vocabulary=words)(inputs)
    x = keras.layers.Embedding(24, 3)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def adapted_string_lookup():
    """A vocabulary that differs between builds: no ``load_weights`` restores it."""
    # Rotations of one list: whichever two builds, every word maps to another index.
    start = _unlike_last_build("adapted_string_lookup", lambda rng: float(rng.integers(20)), apart=1)
    return _lookup_model([f"w{(int(start) + i) % 20}" for i in range(8)])


def fixed_string_lookup():
    """The known-good twin: the same vocabulary at every build."""
    return _lookup_model([f"w{i}" for i in range(8)])


class Forgetful(keras.layers.Layer):
    """An int8 counter that its own ``load_own_variables`` forgets to restore."""

    def build(self, input_shape):
        self.counter = self.add_weight(shape=(), dtype="int8", initializer="zeros",
                                       trainable=False, name="counter")

    def call(self, x):
        return x

    def load_own_variables(self, store):
        pass  # the bug: the saved counter is never read back


def forgetful_int8_late():
    """A long model (over 128 variables) whose last variable is a forgotten int8 scalar."""
    layers = [keras.Input((4,))]
    layers += [keras.layers.Dense(4) for _ in range(70)]
    layers.append(Forgetful())
    return keras.Sequential(layers)


class Glitchy(keras.layers.Layer):
    """Writes a wrong value on every second save in a process: a save that is not deterministic.

    One save per process never shows it (tests/truth/README.md); a training
    loop that checkpoints every epoch writes a wrong value every other time.
    """

    saves = itertools.count()

    def build(self, input_shape):
        self.w = self.add_weight(shape=(4,), initializer="ones", name="w")

    def call(self, x):
        return x * self.w

    def save_own_variables(self, store):
        value = keras.ops.convert_to_numpy(self.w)
        store["0"] = value + 1 if next(Glitchy.saves) % 2 else value


def glitchy_save():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), Glitchy()])


def bfloat16_dense():
    """bfloat16 weights: legacy HDF5 writes them but cannot read them back, whatever is frozen."""
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, dtype="bfloat16")])


@keras.saving.register_keras_serializable(package="pytest_ckpt_tests")
class Wide(keras.layers.Layer):
    """Variables declared wider than some backends store them."""

    def build(self, shape):
        self.w64 = self.add_weight(shape=(shape[-1], 2), dtype="float64", name="w64")
        self.i64 = self.add_weight(shape=(2,), dtype="int64", trainable=False, name="i64", initializer="zeros")
        self.u16 = self.add_weight(shape=(2,), dtype="uint16", trainable=False, name="u16", initializer="zeros")

    def call(self, x):
        return (keras.ops.cast(x, "float32") @ keras.ops.cast(self.w64, "float32")
                + keras.ops.cast(self.i64, "float32") + keras.ops.cast(self.u16, "float32"))


def declared_wider_than_stored():
    """float64, int64 and uint16 variables: JAX (without x64) stores the first two as 32 bits,
    PyTorch stores uint16 as int32.  Every format restores them: known-good everywhere."""
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(Wide()(inputs)))


def _twin():
    """Two same-shaped Dense layers ``a``, ``b`` in a nested block, then a head."""
    block = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(4, name="b")],
        name="block")
    return keras.Sequential([keras.Input((4,)), block, keras.layers.Dense(2, name="head")])


def compiled_twin():
    """Two same-shaped Dense layers ``a``, ``b`` in a nested block, compiled with Adam."""
    model = _twin()
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    return model


def prebuilt_optimizer_twin():
    """compiled_twin with its optimizer built by the factory, for every variable trainable then.

    Its slot set stays whole whatever is frozen later, so Keras restores it
    by position in one fixed list: safe under any freeze change.
    """
    model = compiled_twin()
    model.optimizer.build(model.trainable_variables)
    return model


def same_named_towers():
    """Two functional towers, each with a Dense named "proj", compiled with SGD with momentum.

    Both kernels have the path "proj/kernel", so Keras names both momentum
    slots "proj_kernel_momentum": slot names cannot tell whose a slot is.
    """
    def tower(name):
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(4, name="proj")(inputs), name=name)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Add()([tower("tower_a")(inputs), tower("tower_b")(inputs)]))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


class UnregisteredSGD(keras.optimizers.SGD):
    """A user's optimizer subclass, registered nowhere: save_weights never needs it to be."""


class UnregisteredSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
        return 0.01 / (1.0 + keras.ops.cast(step, "float32"))

    def get_config(self):
        return {}


def custom_optimizer_and_schedule():
    """compiled_functional with an unregistered optimizer subclass and learning-rate schedule."""
    model = compiled_functional()
    model.compile(optimizer=UnregisteredSGD(UnregisteredSchedule(), momentum=0.9), loss="mse")
    return model


class ScaledSGD(keras.optimizers.SGD):
    """An optimizer whose get_config() leaves out an argument its __init__ needs."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale


def optimizer_without_config():
    model = compiled_functional()
    model.compile(optimizer=ScaledSGD(2.0, momentum=0.9), loss="mse")
    return model


def _towers(optimizer, depth=1):
    """same_named_towers with ``depth`` Dense layers per tower and the given optimizer."""
    def tower(name):
        inputs = x = keras.Input((4,))
        for i in range(depth):
            x = keras.layers.Dense(4, name=f"proj{i}")(x)
        return keras.Model(inputs, x, name=name)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Add()([tower("tower_a")(inputs), tower("tower_b")(inputs)]))
    model.compile(optimizer=optimizer, loss="mse")
    return model


def multi_optimizer_towers():
    """Same-named towers under a MultiOptimizer, which keeps its optimizers in a list."""
    default = keras.optimizers.SGD(0.1, momentum=0.9)
    return _towers(keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(default_optimizer=default)), 2)


def plain_sgd_one_dense():
    """SGD without momentum: its own variables [iterations, learning_rate] are as many as the
    model's (kernel, bias), and are no slots of them."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def loss_scale_with_schedule():
    """A LossScaleOptimizer (4 variables of its own) around Adam with an unregistered schedule."""
    model = compiled_functional()
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(UnregisteredSchedule())),
                  loss="mse")
    return model


def adafactor():
    """Adafactor's factored slots are not whole copies of the variables they serve."""
    model = compiled_functional()
    model.compile(optimizer=keras.optimizers.Adafactor(), loss="mse")
    return model


def exploding_training():
    """compiled_functional with a learning rate that sends training to inf and NaN in a few steps."""
    model = compiled_functional()
    model.compile(optimizer=keras.optimizers.SGD(1e6, momentum=0.9), loss="mse")
    return model


def compiled_functional():
    """A flat functional model, compiled with SGD with momentum.

    Flat keeps the weights safe, not the optimizer: its slots are restored by
    position too, so it is known-good only with the same freeze state at save
    and load, or through load_model.
    """
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="a")(inputs)
    x = keras.layers.Dense(4, name="b")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="mse")
    return model


@keras.saving.register_keras_serializable(package="pytest_ckpt_tests")
class Scaled(keras.layers.Layer):
    """Multiplies by a constant chosen when the model is built: state that is no variable."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def data_dependent_constant():
    """A constant computed from data at build time (a temperature, a threshold): no weights
    format stores it, so a build with other data computes other outputs.  load_model
    restores it from the layer's config."""
    scale = 2 ** _unlike_last_build("data_dependent_constant", lambda rng: rng.uniform(-4, 4), apart=0.5)
    inputs = keras.Input((3,))
    return keras.Model(inputs, Scaled(scale)(keras.layers.Dense(2)(inputs)))


def bfloat16_data_dependent_constant():
    """data_dependent_constant computing in bfloat16: PyTorch tensors of that dtype have no .numpy()."""
    # Scales at least 2 ** 0.5 apart: far beyond bfloat16's rounding (and any output tolerance).
    scale = 2 ** _unlike_last_build("bfloat16_data_dependent_constant", lambda rng: rng.uniform(-4, 4),
                                    apart=0.5)
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, dtype="bfloat16")(inputs)
    return keras.Model(inputs, Scaled(scale, dtype="bfloat16")(hidden))


class UnregisteredDouble(keras.layers.Layer):
    """A custom layer registered nowhere: load_model cannot find its class."""

    def call(self, x):
        return x * 2.0


def unregistered_custom_layer():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(UnregisteredDouble()(inputs)))


def unregistered_custom_layer_compiled():
    """Compiled: Keras's load error names the class after 1000 characters of config."""
    model = unregistered_custom_layer()
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    return model


def with_dropout():
    """A Dropout layer: its seed generator's state is a variable no format saves."""
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dropout(0.5),
                             keras.layers.Dense(2)])


# -- Builds that depend on the process, and loading as users load (issue 17) ------------------

FEATURES = ("age", "income", "height", "weight", "tenure", "visits")


def tabular_towers():
    """One tower per feature, in the order of a set: another order in every process.

    Truth (tests/truth/README.md): keras-weights, keras and h5 put towers' weights on other
    towers, h5-by-name restores each by name but Concatenate joins them in another order
    (outputs differ), keras-model rebuilds the saved order.  Six features: two processes
    order them alike about once in 720.
    """
    features = list(set(FEATURES + ("label",)) - {"label"})
    inputs = {c: keras.Input((1,), name=c) for c in features}
    towers = [keras.layers.Dense(2, name=f"tower_{c}")(inputs[c]) for c in features]
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(keras.layers.Concatenate()(towers)))


def sorted_tabular_towers():
    """The known-good twin: the features sorted, the same order in every process."""
    inputs = {c: keras.Input((1,), name=c) for c in sorted(FEATURES)}
    towers = [keras.layers.Dense(2, name=f"tower_{c}")(inputs[c]) for c in sorted(FEATURES)]
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(keras.layers.Concatenate()(towers)))


def _two_dense(optimizer):
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="a")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    model.compile(optimizer=optimizer, loss="mse")
    return model


def nadam_unbuilt():
    """compile() then load_weights(), as usual code does: the optimizer is built only at the
    first step, so Keras skips its saved state (iterations back to 0)."""
    return _two_dense(keras.optimizers.Nadam())


def nadam_prebuilt():
    """The known-good twin: the optimizer built before the load.  Nadam's momentum product
    serves no variable and is named by a per-process counter (variable, variable_1...)."""
    model = _two_dense(keras.optimizers.Nadam())
    model.optimizer.build(model.trainable_variables)
    return model


# Drawn when the module is imported: another process adapts on other data.
_SERVING_DATA = np.random.default_rng().normal(size=(64, 3)).astype("float32") * 5 + 3


def module_data_normalization():
    """Normalization adapted on data drawn at import: identical builds in one process, other
    statistics in the process that loads.  tf.train.Checkpoint restores the variables but
    not the cache computed from them (outputs differ); keras-weights and h5 refresh it."""
    norm = keras.layers.Normalization()
    norm.adapt(_SERVING_DATA)
    return keras.Sequential([keras.Input((3,)), norm, keras.layers.Dense(2)])


class ListedBlocks(keras.Model):
    """Blocks kept in a list attribute: Keras's formats walk it, tf.train.Checkpoint does not."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [keras.layers.Dense(4), keras.layers.Dense(4)]
        self.head = keras.layers.Dense(2)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def listed_blocks():
    model = ListedBlocks()
    model(np.zeros((1, 4), "float32"))  # creates the weights
    return model


def compiled_lstm():
    """lstm_model compiled with Adam.  Trained with the LSTM's cell frozen, its optimizer
    serves the other variables; .keras does not record the cell's flag, so load_model
    rebuilds the cell trainable, builds an optimizer for more variables and skips the saved one."""
    model = keras.Sequential([keras.Input((7,), dtype="int32"), keras.layers.Embedding(20, 6),
                              keras.layers.LSTM(5), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    return model


class Noise(keras.layers.Layer):
    """Adds noise while training, drawn without a seed generator of its own."""

    def call(self, x, training=None):
        return x + keras.random.normal(keras.ops.shape(x), stddev=0.1) if training else x


def unseeded_noise():
    """Two runs resumed from one checkpoint differ: training is not deterministic."""
    inputs = keras.Input((4,))
    x = Noise()(keras.layers.Dense(4, name="a")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def prebuilt(factory):
    """``factory``'s model with its optimizer built before anything is loaded."""
    def build():
        model = factory()
        model.optimizer.build(model.trainable_variables)
        return model

    build.__name__ = build.__qualname__ = f"prebuilt_{factory.__name__}"
    return build


prebuilt_compiled_twin = prebuilt(compiled_twin)
prebuilt_custom_optimizer_and_schedule = prebuilt(custom_optimizer_and_schedule)
prebuilt_loss_scale_with_schedule = prebuilt(loss_scale_with_schedule)
prebuilt_adafactor = prebuilt(adafactor)
prebuilt_compiled_functional = prebuilt(compiled_functional)


def vgg16_nested():
    """Keras's VGG16 (no weights downloaded) as the base of a Sequential: under h5
    most freeze changes raise, some swap block5_conv2 and block5_conv3 silently."""
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    return keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.Flatten(), keras.layers.Dense(2)])


# -- goldens: the model when the golden was written, and today's --------------------------------


def golden_mlp(activation="relu", dropout=False):
    layers = [keras.Input((4,)), keras.layers.Dense(8, activation=activation, name="hidden")]
    if dropout:
        layers.append(keras.layers.Dropout(0.2))
    return keras.Sequential(layers + [keras.layers.Dense(3, name="out")])


def golden_mlp_gelu():
    """Another computation: must fail."""
    return golden_mlp("gelu")


def golden_mlp_dropout():
    """A weightless layer added: plain Keras loads it with identical outputs."""
    return golden_mlp(dropout=True)


class TwoDense(keras.Model):
    def __init__(self, reorder=False):
        super().__init__()
        if reorder:  # the same layers, assigned in the other order
            self.head = keras.layers.Dense(3)
            self.body = keras.layers.Dense(8, activation="relu")
        else:
            self.body = keras.layers.Dense(8, activation="relu")
            self.head = keras.layers.Dense(3)

    def call(self, x):
        return self.head(self.body(x))


def golden_subclassed():
    model = TwoDense()
    model(np.zeros((1, 4), "float32"))  # build() alone creates no sublayer weights
    return model


def golden_subclassed_reordered():
    """Attribute assignments swapped: keras-weights keys by attribute, loads identically."""
    model = TwoDense(reorder=True)
    model(np.zeros((1, 4), "float32"))
    return model


def _frozen_stack(frozen):
    model = keras.Sequential([keras.Input((4,))] + [keras.layers.Dense(4) for _ in range(6)])
    for layer in model.layers[:frozen]:
        layer.trainable = False
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)  # a resumed run's optimizer is built
    return model


def golden_four_frozen():
    return _frozen_stack(4)


def golden_three_frozen():
    """One layer fewer frozen: Keras skips the golden's optimizer state (iterations back to 0)."""
    return _frozen_stack(3)


def golden_nested():
    """A nested base: the h5 golden of the model as built loads (under its own flags)."""
    from pytest_ckpt.models import classic_nested

    return classic_nested()


def _one_frozen(name):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(4, name="b"),
                              keras.layers.Dense(2, name="head")])
    model.get_layer(name).trainable = False
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def golden_a_frozen():
    return _one_frozen("a")


def golden_b_frozen():
    """Another layer of the same shapes frozen: as many optimizer variables, so Keras
    loads them by position, and a's moments land in b's slots without a word."""
    return _one_frozen("b")


def lora_dense():
    """A Dense with a LoRA adapter (rank 2): Keras merges it into the kernel when it saves."""
    inputs = keras.Input((8,))
    x = keras.layers.Dense(8, name="adapted")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
    model.get_layer("adapted").enable_lora(2)
    return model


def _quantized(mode):
    inputs = keras.Input((8,))
    x = keras.layers.Dense(8, name="first")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="second")(x))
    model.quantize(mode)
    return model


def int8_dense():
    return _quantized("int8")


def int4_dense():
    return _quantized("int4")


def float8_dense():
    return _quantized("float8")


def quantized_twin():
    """compiled_twin's model, uncompiled and quantized to int8: legacy h5 moves the twins by position."""
    model = _twin()
    model.quantize("int8")
    return model


def compiled_quantized(mode):
    """A quantized model compiled (with its optimizer built), for the state-tree formats."""
    model = _quantized(mode)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def compiled_int8_dense():
    return compiled_quantized("int8")


def compiled_int4_dense():
    return compiled_quantized("int4")


def compiled_float8_dense():
    return compiled_quantized("float8")


class OwnLayersList(keras.layers.Layer):
    """Sublayers assigned to self._layers, the list Keras keeps its tracked sublayers in."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._layers = [keras.layers.Dense(4, name="inner_a"), keras.layers.Dense(4, name="inner_b")]

    def build(self, shape):
        for layer in self._layers:
            layer.build(shape)

    def call(self, x):
        for layer in self._layers:
            x = layer(x)
        return x


def own_layers_list():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(OwnLayersList(name="block")(inputs)))
