"""The one walker over nested structures: order, paths, rebuilding, and the goldens' skeleton."""

import json

from pytest_ckpt.framework import nested

STRUCTURE = {"b": [1, (2, 3)], "a": {"y": 4, "x": 5}}


def test_leaves_follow_dict_order_then_positions():
    assert nested.leaves(STRUCTURE) == [1, 2, 3, 4, 5]


def test_items_name_each_leaf_by_its_path_and_can_sort_keys():
    assert [p for p, _ in nested.items(STRUCTURE)] == [
        ("b", 0), ("b", 1, 0), ("b", 1, 1), ("a", "y"), ("a", "x")]
    assert [v for _, v in nested.items(STRUCTURE, sort_keys=True)] == [5, 4, 1, 2, 3]


def test_a_plain_leaf_is_its_own_structure():
    assert nested.leaves(7) == [7]
    assert nested.items(7) == [((), 7)]
    assert nested.map_leaves(7, str) == "7"


def test_map_keeps_the_nesting_and_tuples_become_lists():
    assert nested.map_leaves(STRUCTURE, lambda v: v * 10) == {"b": [10, [20, 30]], "a": {"y": 40, "x": 50}}


def test_a_custom_leaf_test_stops_the_walk():
    specs = [((None, 3), "float32"), {"ids": ((None,), "int32")}]
    is_spec = lambda v: isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], str)  # noqa: E731
    assert nested.leaves(specs, is_leaf=is_spec) == [((None, 3), "float32"), ((None,), "int32")]


def test_path_names_read_as_python_indexing():
    assert nested.path_name("output", ()) == "output"
    assert nested.path_name("output", (0, "logits", 2)) == "output[0]['logits'][2]"


def test_skeleton_round_trips_through_json_even_with_keys_named_like_containers():
    structure = {"dict": [1, 2], "list": {"x": 3}}
    stored: dict[str, int] = {}

    def store(value):
        name = f"leaf{len(stored)}"
        stored[name] = value
        return name

    skeleton = json.loads(json.dumps(nested.to_skeleton(structure, store)))
    assert nested.from_skeleton(skeleton, stored.__getitem__) == structure
    assert stored == {"leaf0": 1, "leaf1": 2, "leaf2": 3}
