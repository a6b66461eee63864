"""The results matrix (no TensorFlow)."""

from pytest_ckpt.plugin.session import ItemRecord
from pytest_ckpt.plugin.summary import matrix


def test_matrix_is_a_factory_by_format_grid_in_the_formats_own_order():
    table = matrix([ItemRecord("roundtrip", "m:f", "h5", "FAIL: swapped"),
                    ItemRecord("roundtrip", "m:f", "keras", "pass"),
                    ItemRecord("roundtrip", "m:g", "keras", "pass")])
    assert table.splitlines() == [
        "| check | factory | keras | h5 |",
        "|---|---|---|---|",
        "| roundtrip | `m:f` | pass | FAIL: swapped |",
        "| roundtrip | `m:g` | pass |  |",
    ]


def test_matrix_rows_follow_the_configured_factories_whatever_order_workers_reported():
    records = [ItemRecord("roundtrip", "m:z", "h5", "pass"), ItemRecord("roundtrip", "m:a", "h5", "pass"),
               ItemRecord("resume", "m:a", "h5", "pass"), ItemRecord("roundtrip", "m:other", "h5", "pass")]
    rows = [line.split("|")[1:3] for line in matrix(records, ["m:z", "m:a"]).splitlines()[2:]]
    assert [(k.strip(), f.strip()) for k, f in rows] == [
        ("resume", "`m:a`"), ("roundtrip", "`m:z`"), ("roundtrip", "`m:a`"), ("roundtrip", "`m:other`")]
