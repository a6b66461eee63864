"""One test per Keras message that messages.py turns into a fact (no TensorFlow).

The texts are what Keras 3.15 prints: base_optimizer.load_own_variables,
serialization_lib's unknown-object error, saving_api's legacy HDF5 notice, Model.get_state_tree's
duplicate path, and orbax-checkpoint's (0.12.8) sharding notice on restore.
"""

from pytest_ckpt.framework.messages import (
    OptimizerSkipped,
    describe,
    duplicate_path,
    is_noise,
    one_line,
    optimizer_skipped,
    unknown_class,
    unknown_class_line,
)

SKIPPED = ("Skipping variable loading for optimizer 'adam', because it has 2 variables whereas the saved "
           "optimizer has 10 variables. ")
UNKNOWN = ("Could not locate class 'MyBlock'. Make sure custom classes and functions are decorated with "
           "`@keras.saving.register_keras_serializable()`. Full object config: {'module': None}")
LEGACY = ("You are saving your model as an HDF5 file via `model.save()` or `keras.saving.save_model(model)`. "
          "This file format is considered legacy. ")


TWICE = ("The following variable path is found twice in the model: 'dup_sub/d/kernel'. `get_state_tree()` can "
         "only be called when all variable paths are unique. Make sure to give unique names to your layers "
         "(and other objects).")
SHARDING = ("Sharding info not provided when restoring. Populating sharding info from sharding file. Please "
            "note restoration time will be slightly increased due to reading from file.")


def test_a_duplicate_path_is_named():
    assert duplicate_path(TWICE) == "dup_sub/d/kernel"
    assert duplicate_path("found twice") is None


def test_the_orbax_sharding_notice_is_noise():
    assert is_noise(SHARDING)
    assert not is_noise("Sharding failed: " + SHARDING)


def test_the_optimizer_skip_warning_gives_both_counts():
    assert optimizer_skipped(["unrelated", SKIPPED]) == OptimizerSkipped("adam", 2, 10)
    assert optimizer_skipped(["Skipping variable loading for optimizer (reworded)"]) is None


def test_an_unknown_class_is_named_and_its_sentence_kept():
    assert unknown_class(UNKNOWN) == "MyBlock"
    assert unknown_class_line("x" * 700 + UNKNOWN).startswith("Could not locate class 'MyBlock'")
    assert unknown_class("Could not find it") is None


def test_the_legacy_hdf5_notice_is_noise_and_nothing_else_is():
    assert is_noise(LEGACY)
    assert not is_noise(SKIPPED)


def test_a_long_message_is_cut_but_keeps_the_unknown_class():
    name, message = describe(ValueError("{'config': " + "x" * 900 + "} " + UNKNOWN))
    assert name == "ValueError" and len(message) < 1000 and "Could not locate class 'MyBlock'" in message
    assert one_line(ValueError("a\n  b")) == "ValueError: a b"


def test_first_line_drops_colour_codes_and_keeps_the_cause_keras_wraps():
    from pytest_ckpt.framework.messages import first_line

    wrapped = RuntimeError("Exception encountered when calling Guard.call().\n\n\x1b[1mnever in training\x1b[0m"
                           "\n\nArguments received by Guard.call():\n  • x=jnp.ndarray(shape=(25")
    assert first_line(wrapped) == ("RuntimeError: Exception encountered when calling Guard.call(). "
                                   "never in training")
    assert first_line(ValueError("")) == "ValueError"
