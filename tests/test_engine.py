"""The engine with real Keras models and real files, no pytest plugin involved."""

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from pytest_ckpt import models
from pytest_ckpt.comparison import NOT_LOADED, SWAPPED
from pytest_ckpt.engine import ModelPair, PairCache, RoundTrip, roundtrip
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.formats import format_names, get_format
from pytest_ckpt.masks import FreezeMask, apply_mask, masked, snapshot_flags
from pytest_ckpt.strategies import freeze_masks
from pytest_ckpt.tree import LayerTree

from tests import helpers


@pytest.fixture(scope="module")
def pairs():
    return PairCache(size=8)


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


def test_tree_reaches_nested_and_hidden_sublayers():
    tree = LayerTree(models.attention_model())
    displays = [n.display for n in tree.nodes]
    assert any(d.endswith("multi_head_attention/query") for d in displays)
    keys = [e.key for e in tree.variables()]
    assert len(keys) == len(tree.model.weights)


def test_shared_layer_is_keyed_once():
    tree = LayerTree(models.shared_layer())
    assert len(tree.variables()) == len(tree.model.weights)


def test_masks_are_reversible_and_containers_differ_from_children():
    tree = LayerTree(models.classic_nested())
    before = snapshot_flags(tree)
    base = tree.node((1,))
    children = [n.index_path for n in tree.maskable() if n.index_path[:1] == (1,) and len(n.index_path) == 2]
    with masked(tree, FreezeMask.from_paths(tree, [(1,)])):
        container_frozen = (base.layer.trainable, [tree.node(p).layer.trainable for p in children])
    assert snapshot_flags(tree) == before
    with masked(tree, FreezeMask.from_paths(tree, children)):
        children_frozen = (base.layer.trainable, [tree.node(p).layer.trainable for p in children])
    assert snapshot_flags(tree) == before
    assert container_frozen[0] is False and children_frozen[0] is True
    assert not any(children_frozen[1])


def test_freeze_masks_shrink_to_nothing_frozen_and_print_as_paths():
    tree = LayerTree(models.classic_nested())
    assert find(freeze_masks(tree), lambda m: True) == FreezeMask.nothing()
    minimal = find(freeze_masks(tree), lambda m: len(m.frozen) >= 1)
    assert len(minimal.frozen) == 1
    assert "resnet_small" in repr(minimal) or "dense" in repr(minimal) or "<model>" in repr(minimal)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_any_mask_applies_and_restores(data):
    tree = _tree_cache.setdefault("t", LayerTree(models.deep_nested()))
    before = snapshot_flags(tree)
    mask = data.draw(freeze_masks(tree))
    with masked(tree, mask):
        for node in tree.nodes:
            assert node.layer.trainable == (node.index_path not in mask.frozen)
    assert snapshot_flags(tree) == before


_tree_cache = {}


def test_every_variable_gets_distinct_values(pairs):
    pair = pairs.get(models.classic_nested)
    saved = [np.asarray(e.variable.numpy()).tobytes() for e in pair.saved]
    assert len(set(saved)) == len(saved)
    pair.reset_loader()
    for s, l in zip(pair.saved, pair.loaded):
        assert not np.array_equal(s.variable.numpy(), l.variable.numpy())


@pytest.mark.parametrize("fmt", format_names("keras3"))
def test_same_masks_survive_in_every_format_except_by_name(pairs, fmt, tmp_path):
    pair = pairs.get(models.classic_functional)
    result = run(pair, fmt, FreezeMask.nothing(), FreezeMask.nothing(), tmp_path)
    if fmt == "h5-by-name":
        # The head Dense is auto-named: dense_N differs between the models.
        assert {o.verdict for o in result.outcomes} == {NOT_LOADED}
    else:
        assert result.ok, result.summary()


def test_silent_swap_under_h5_names_both_variables(pairs, tmp_path):
    pair = pairs.get(models.swap_prone_nested)
    first_dense = FreezeMask.from_paths(pair.saver, [(1, 1)])
    result = run(pair, "h5", first_dense, FreezeMask.nothing(), tmp_path)
    assert result.load_error is None  # silent: nothing raised
    swaps = {o.key: o.source_key for o in result.outcomes if o.verdict == SWAPPED}
    assert swaps == {
        "1:Sequential/1:Dense/kernel": "1:Sequential/2:Dense/kernel",
        "1:Sequential/1:Dense/bias": "1:Sequential/2:Dense/bias",
        "1:Sequential/2:Dense/kernel": "1:Sequential/1:Dense/kernel",
        "1:Sequential/2:Dense/bias": "1:Sequential/1:Dense/bias",
    }
    # The same masks under the native format survive.
    assert run(pair, "keras-weights", first_dense, FreezeMask.nothing(), tmp_path).ok


def test_classic_nested_h5_with_different_freeze_state_fails(pairs, tmp_path):
    pair = pairs.get(models.classic_nested)
    bn = FreezeMask.from_paths(pair.saver, [(1, 2)])
    result = run(pair, "h5", bn, FreezeMask.nothing(), tmp_path)
    assert not result.ok
    assert result.load_error is not None and result.load_error[0] == "ValueError"
    assert result.containers_with_changed_freeze_state() == ["resnet_small"]


def test_container_frozen_vs_children_frozen_are_different_cases(pairs, tmp_path):
    # Freezing the whole container keeps its weights' order (all non-trainable,
    # creation order), so h5 survives; freezing one child reorders them.
    pair = pairs.get(models.swap_prone_nested)
    container = FreezeMask.from_paths(pair.saver, [(1,)])
    assert run(pair, "h5", container, FreezeMask.nothing(), tmp_path).ok
    child = FreezeMask.from_paths(pair.saver, [(1, 1)])
    assert not run(pair, "h5", child, FreezeMask.nothing(), tmp_path).ok


def test_not_loaded_is_reported_when_by_name_matches_nothing(pairs, tmp_path):
    pair = pairs.get(helpers.two_dense_auto_named)
    result = run(pair, "h5-by-name", FreezeMask.nothing(), FreezeMask.nothing(), tmp_path)
    assert len(result.outcomes) == 4
    assert {o.verdict for o in result.outcomes} == {NOT_LOADED}


def test_sharded_format_writes_several_shards(pairs, tmp_path):
    pair = pairs.get(models.classic_nested)
    fmt = get_format("keras-sharded")
    fmt.save(pair.saver.model, fmt.path_in(tmp_path))
    shards = [p for p in tmp_path.iterdir() if p.suffix == ".h5"]
    assert len(shards) >= 2


def test_temp_files_are_removed_after_each_example(pairs, tmp_path):
    pair = pairs.get(models.swap_prone_nested)
    run(pair, "keras", FreezeMask.nothing(), FreezeMask.nothing(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_factory_building_different_models_is_refused():
    with pytest.raises(FactoryError, match="different models"):
        ModelPair(helpers.nondeterministic)


def test_factory_returning_one_object_twice_is_refused():
    with pytest.raises(FactoryError, match="same model object"):
        ModelPair(helpers.same_object)


def test_one_round_trip_without_pytest_or_hypothesis():
    assert roundtrip(models.swap_prone_nested, "keras-weights", FreezeMask.nothing(),
                     FreezeMask.nothing()).ok
    assert not roundtrip(helpers.two_dense_auto_named, "h5-by-name", FreezeMask.nothing(),
                         FreezeMask.nothing()).ok
