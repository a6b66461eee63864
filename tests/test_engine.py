"""The engine with real Keras models and real files, no pytest plugin involved."""

import keras
import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from pytest_ckpt import models
from pytest_ckpt.checks.comparison import NOT_LOADED, SWAPPED
from pytest_ckpt.checks.isolation import Isolation
from pytest_ckpt.checks.roundtrip import ModelPair, RoundTrip, roundtrip
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.framework.bulk import read
from pytest_ckpt.framework.compat import fresh_process_names
from pytest_ckpt.framework.formats import applicable, get_format
from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.search.fixed_pairs import MAX_FIXED_PAIRS, fixed_pairs, split
from pytest_ckpt.search.masks import SAME, FreezeMask, TrainableState, apply_mask, masked
from pytest_ckpt.search.strategies import freeze_masks
from tests import cases
from tests.conftest import BACKEND

NOTHING = FreezeMask.nothing()


@pytest.fixture(scope="module")
def pairs():
    cache = {}

    def get(factory):
        if factory not in cache:
            cache[factory] = ModelPair(factory)
            cache[factory].fill()
        return cache[factory]

    return get


def run(pair, fmt, save, load, tmp_path):
    return RoundTrip(pair, fmt, tmp_path).run(save, load)


def test_keys_are_stable_across_instances_and_flags():
    a, b = LayerTree(models.classic_nested()), LayerTree(models.classic_nested())
    keys_a = [e.key for e in a.variables()]
    assert keys_a == [e.key for e in b.variables()]
    # Auto-generated names differ between the two instances...
    assert [e.display for e in a.variables()] != [e.display for e in b.variables()]
    # ...and freezing does not move a key.
    apply_mask(a, FreezeMask.everything(a))
    assert [e.key for e in a.variables()] == keys_a
    assert len(set(keys_a)) == len(keys_a) == len(a.model.weights)


def test_two_builds_get_the_names_a_fresh_process_would_give_and_counters_are_restored():
    first = keras.layers.Dense(2).name  # the user's own layer, before ours: "dense" or "dense_N"
    n = 0 if first == "dense" else int(first.rsplit("_", 1)[1])
    with fresh_process_names():
        a = cases.two_dense_auto_named()
    with fresh_process_names():
        b = cases.two_dense_auto_named()
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers] == ["dense", "dense_1"]
    # The user's counters went on where they were.
    assert keras.layers.Dense(2).name == f"dense_{n + 1}"


def test_tree_reaches_nested_and_hidden_sublayers():
    tree = LayerTree(models.attention_model())
    displays = [n.display for n in tree.nodes]
    assert any(d.endswith("multi_head_attention/query") for d in displays)
    assert len([e.key for e in tree.variables()]) == len(tree.model.weights)
    assert [n.display for n in tree.nodes if n.is_container] == ["<model>", "encoder_block",
                                                                 "encoder_block/multi_head_attention"]


def test_shared_layer_is_keyed_once():
    tree = LayerTree(models.shared_layer())
    assert len(tree.variables()) == len(tree.model.weights)


def test_masks_are_reversible_and_containers_differ_from_children():
    tree = LayerTree(models.classic_nested())
    before = TrainableState.of(tree)
    base = tree.node((1,))
    children = [n.index_path for n in tree.maskable() if n.index_path[:1] == (1,) and len(n.index_path) == 2]
    with masked(tree, FreezeMask.from_paths(tree, [(1,)])):
        container_frozen = (base.layer.trainable, [tree.node(p).layer.trainable for p in children])
    assert TrainableState.of(tree) == before
    with masked(tree, FreezeMask.from_paths(tree, children)):
        children_frozen = (base.layer.trainable, [tree.node(p).layer.trainable for p in children])
    assert TrainableState.of(tree) == before
    # Freezing the container freezes what is inside, as base.trainable = False does.
    assert container_frozen == (False, [False] * len(children))
    assert children_frozen == (True, [False] * len(children))


def test_masks_put_back_a_variable_frozen_on_its_own():
    tree = LayerTree(models.swap_prone_nested())
    kernel = tree.model.layers[0].layers[0].kernel
    kernel.trainable = False
    with masked(tree, NOTHING):
        assert kernel.trainable  # the layer's flag rules inside the mask
    assert kernel.trainable is False


def test_freeze_masks_shrink_to_nothing_frozen_and_print_as_paths():
    tree = LayerTree(models.classic_nested())
    assert find(freeze_masks(tree), lambda m: True) == NOTHING
    minimal = find(freeze_masks(tree), lambda m: len(m.frozen) >= 1)
    (path,) = minimal.frozen
    assert repr(minimal) == f"FreezeMask([{tree.node(path).display!r}])"


_tree_cache = {}


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_any_mask_applies_and_restores(data):
    tree = _tree_cache.setdefault("t", LayerTree(models.deep_nested()))
    before = TrainableState.of(tree)
    mask = data.draw(freeze_masks(tree))
    with masked(tree, mask):
        for node in tree.nodes:
            inside_frozen = any(node.index_path[:i] in mask.frozen for i in range(len(node.index_path) + 1))
            assert node.layer.trainable == (not inside_frozen)
    assert TrainableState.of(tree) == before


def test_every_variable_gets_distinct_values_on_its_initializers_scale(pairs):
    pair = pairs(models.classic_nested)
    saved = {e.display: read(e.variable) for e in pair.saved}
    assert len({v.tobytes() for v in saved.values()}) == len(saved)
    # What the loading side holds before each load differs from every saved value.
    assert not set(pair.before.values()) & set(pair.expected_digests.values())
    assert set(pair.before) == set(pair.expected_digests)
    # On the scale a trained model has: BatchNorm's variances stay positive, around one;
    # kernels are centred on zero with their initializer's spread.
    variance = saved["resnet_small/conv1_bn/moving_variance"]
    assert np.all(variance > 0.8) and np.all(variance < 1.2)
    kernel = saved["resnet_small/conv1_conv/kernel"]
    assert abs(float(kernel.mean())) < 0.05 and 0.02 < float(kernel.std()) < 0.5


def test_fixed_pairs_start_with_nothing_frozen_and_cover_each_layer_both_ways():
    tree = LayerTree(models.swap_prone_nested())
    pairs = fixed_pairs(tree, tree, "independent")
    assert pairs[0] == (NOTHING, NOTHING)
    first_twin = FreezeMask.from_paths(tree, [(1, 1)])
    assert (NOTHING, first_twin) in pairs and (first_twin, NOTHING) in pairs
    container = FreezeMask.from_paths(tree, [(1,)])
    assert (NOTHING, container) in pairs and (container, NOTHING) in pairs
    assert all(s == l for s, l in fixed_pairs(tree, tree, SAME))


def test_fixed_pairs_cover_every_layer_of_a_long_model_by_freezing_independent_layers_together():
    tree = LayerTree(cases.twins_after_many_blocks())
    pairs = fixed_pairs(tree, tree, "independent")
    assert len(pairs) == 1 + 2 * ((MAX_FIXED_PAIRS - 1) // 2)  # nothing, then both ways
    assert pairs[1] == (NOTHING, FreezeMask.from_paths(tree, [()]))  # the model itself, alone
    for mask in {m for p in pairs for m in p}:
        groups = [path[:1] for path in mask.frozen]
        assert len(groups) == len(set(groups))  # never two layers under one top-level layer
    every = {n.index_path for n in tree.maskable()}
    assert {p for s, _ in pairs for p in s.frozen} == every == {p for _, l in pairs for p in l.frozen}
    combined = next(p for p in pairs if len(p[1].frozen) > 1)
    assert split(combined) == [(NOTHING, part) for part in combined[1].parts()]


def test_fixed_pairs_are_capped_containers_first_when_layers_share_one_top_level_layer():
    import keras

    base = keras.Sequential([keras.Input((3,))] + [keras.layers.Dense(3) for _ in range(40)], name="base")
    tree = LayerTree(keras.Sequential([keras.Input((3,)), base]))
    masks = [l for s, l in fixed_pairs(tree, tree, "independent") if l.frozen]
    assert all(len(m.frozen) == 1 for m in masks)
    dense = [n.display for n in tree.maskable() if not n.is_container]
    assert [m.labels for m in masks[:3]] == [("<model>",), ("base",), (dense[0],)]
    assert (dense[20],) in [m.labels for m in masks]  # then spread: the middle one early


def test_a_factory_that_returns_models_frozen_gets_that_state_among_the_fixed_pairs():
    def frozen_base():
        model = models.swap_prone_nested()
        model.layers[0].trainable = False
        return model

    tree = LayerTree(frozen_base())
    own = FreezeMask.from_paths(tree, [(1,)])
    assert (own, NOTHING) in fixed_pairs(tree, tree, "independent")


@pytest.mark.parametrize("fmt", applicable("keras3", BACKEND))
def test_nothing_frozen_survives_in_every_format(pairs, fmt, tmp_path):
    # The state-tree formats save a compiled model's state, optimizer included (built, for
    # load_weights); load_model of a nested Sequential's directory loses its paths (test_orbax.py).
    f = get_format(fmt)
    factory = (models.compiled_classic_functional if f.loads_new_model else cases.prebuilt_optimizer_twin) \
        if f.needs_compiled else models.classic_functional
    result = run(pairs(factory), fmt, NOTHING, NOTHING, tmp_path)
    assert result.ok, result.summary()


def test_silent_swap_under_h5_names_both_variables(pairs, tmp_path):
    pair = pairs(models.swap_prone_nested)
    first_dense = FreezeMask.from_paths(pair.saver, [(1, 1)])
    result = run(pair, "h5", first_dense, NOTHING, tmp_path)
    assert result.load_error is None  # silent: nothing raised
    swaps = {o.key: o.source_key for o in result.outcomes if o.verdict == SWAPPED}
    assert swaps == {
        "1:Sequential/1:Dense/kernel": "1:Sequential/2:Dense/kernel",
        "1:Sequential/1:Dense/bias": "1:Sequential/2:Dense/bias",
        "1:Sequential/2:Dense/kernel": "1:Sequential/1:Dense/kernel",
        "1:Sequential/2:Dense/bias": "1:Sequential/1:Dense/bias",
    }
    # The same masks under the native formats survive, and so does load_model.
    for fmt in ("keras-weights", "keras-model"):
        assert run(pair, fmt, first_dense, NOTHING, tmp_path).ok


def test_classic_nested_h5_with_different_freeze_state_fails(pairs, tmp_path):
    pair = pairs(models.classic_nested)
    bn = FreezeMask.from_paths(pair.saver, [(1, 2)])
    result = run(pair, "h5", bn, NOTHING, tmp_path)
    assert result.load_error is not None and result.load_error[0] == "ValueError"
    assert result.containers_with_changed_freeze_state() == ["resnet_small"]


def test_container_frozen_vs_children_frozen_are_different_cases(pairs, tmp_path):
    # Freezing the whole container keeps its weights' order (all non-trainable,
    # creation order), so h5 survives; freezing one child reorders them.
    pair = pairs(models.swap_prone_nested)
    container = FreezeMask.from_paths(pair.saver, [(1,)])
    assert run(pair, "h5", container, NOTHING, tmp_path).ok
    child = FreezeMask.from_paths(pair.saver, [(1, 1)])
    assert not run(pair, "h5", child, NOTHING, tmp_path).ok


def test_by_name_loads_an_auto_named_model_as_a_fresh_process_would(pairs, tmp_path):
    assert run(pairs(cases.two_dense_auto_named), "h5-by-name", NOTHING, NOTHING, tmp_path).ok


def test_a_forgotten_int8_variable_late_in_a_long_model_is_not_loaded(pairs, tmp_path):
    pair = pairs(cases.forgetful_int8_late)
    assert len(pair.saved) > 128
    result = run(pair, "keras-weights", NOTHING, NOTHING, tmp_path)
    assert [(o.display.split("/")[-1], o.dtype, o.verdict) for o in result.outcomes] == \
        [("counter", "int8", NOT_LOADED)]


def test_sharded_format_writes_several_shards(pairs, tmp_path):
    pair = pairs(models.classic_nested)
    fmt = get_format("keras-sharded")
    fmt.save(pair.saver.model, fmt.path_in(tmp_path))
    assert len([p for p in tmp_path.iterdir() if p.suffix == ".h5"]) >= 2


def test_one_saved_file_at_a_time_reused_for_the_same_save_mask_but_not_on_replay(pairs, tmp_path):
    pair = pairs(models.swap_prone_nested)
    engine = RoundTrip(pair, "keras", tmp_path)
    first = FreezeMask.from_paths(pair.saver, [(1, 1)])
    assert engine.run(NOTHING, NOTHING).ok
    (saved,) = tmp_path.iterdir()
    assert engine.run(NOTHING, first).ok
    assert list(tmp_path.iterdir()) == [saved]  # the same save mask: the same file, loaded again
    assert engine.run(NOTHING, first).ok  # the same example again (a replay): saved afresh
    (fresh,) = tmp_path.iterdir()
    assert fresh != saved
    engine.run(first, NOTHING)
    assert len(list(tmp_path.iterdir())) == 1  # a new save mask replaces the file
    engine.forget_file()
    assert list(tmp_path.iterdir()) == []


def test_factory_building_different_models_is_refused():
    with pytest.raises(FactoryError, match="another model in the loading process"):
        ModelPair(cases.nondeterministic, isolation=Isolation.INLINE)


def test_factory_returning_one_object_twice_is_refused_in_one_process():
    with pytest.raises(FactoryError, match="same model object"):
        ModelPair(cases.same_object, isolation=Isolation.INLINE)


def test_factory_reusing_a_cached_backbone_is_refused_naming_it_in_one_process():
    with pytest.raises(FactoryError, match=r"share layer\(s\) 'backbone' \(4 shared variables\).*"
                                           r"Build a new backbone on every call"):
        ModelPair(cases.reused_backbone, isolation=Isolation.INLINE)


def test_one_round_trip_without_pytest_or_hypothesis():
    assert roundtrip(models.swap_prone_nested, "keras-weights", NOTHING, NOTHING).ok
    tree = LayerTree(models.swap_prone_nested())
    assert not roundtrip(models.swap_prone_nested, "h5", FreezeMask.from_paths(tree, [(1, 1)]),
                         NOTHING).ok


def test_a_factory_that_raises_is_named_with_the_line_that_raised():
    def broken_factory():
        return helper_that_fails()

    def helper_that_fails():
        raise RuntimeError("boom in factory")

    with pytest.raises(FactoryError, match=r"raised RuntimeError: boom in factory \(at .*test_engine\.py:\d+ "
                                           r"in helper_that_fails\)"):
        ModelPair(broken_factory)
