"""Golden folder names, manifests and the noise filter (no TensorFlow)."""

from pathlib import Path

import pytest

from pytest_ckpt.chatter import without_startup_noise
from pytest_ckpt.golden import (DISTINCT, HEADER, GoldenError, GoldenVariable, Manifest, encode,
                                frozen_paths, frozen_text, golden_location)


def test_folder_name_encoding_is_injective_on_the_classic_collisions():
    ids = ["a/b", "a_b", "a%2Fb", "x", "x-2", ".", "..", "", "a b", "ä", "[x]", "check-1"]
    assert len({encode(i) for i in ids}) == len(ids)
    assert all("/" not in encode(i) and encode(i) not in (".", "..", "") for i in ids)


def test_folder_name_encoding_is_injective_without_case_too():
    ids = ["A", "a", "Aa", "aA", "%41", "a%2Fb", "A%2FB", "TestA", "testa", "x" * 130, "X" * 130]
    assert len({encode(i).casefold() for i in ids}) == len(ids)
    assert encode("test_x[a-b]") == "test_x[a-b]"  # names without capitals keep their folders
    assert encode("TestA") == "TestA@0.4"


def test_long_names_stay_short_and_distinct():
    a, b = "p" * 300 + "1", "p" * 300 + "2"
    assert encode(a) != encode(b) and len(encode(a)) <= 120


def test_location_has_one_level_per_class_and_the_check_last():
    where = golden_location(Path("/r/tests/test_m.py"), "ckpt_golden", ["TestA", "test_x[a/b]"], "check-2")
    assert where == Path("/r/tests/ckpt_golden/test_m/TestA@0.4/test_x[a%2Fb]/check-2")


def manifest():
    return Manifest("keras3", "tensorflow", "3.15.1", "keras-weights", DISTINCT, "1.2,.", "checkpoint.weights.h5",
                    "a" * 64, "b" * 64, [GoldenVariable("1:Dense/kernel", (4, 3), "float32", "c" * 64,
                                                        "dense/kernel"),
                                         GoldenVariable("~0/step", (), "int64", "d" * 64)])


def test_manifest_round_trip(tmp_path):
    path = tmp_path / "manifest.txt"
    path.write_text(manifest().dumps())
    assert Manifest.load(path) == manifest()


def test_v1_manifests_still_read_as_model_values_on_tensorflow(tmp_path):
    text = manifest().dumps().replace(HEADER, "# pytest-ckpt golden manifest v1")
    text = "\n".join(line for line in text.splitlines()
                     if not line.startswith(("backend:", "values:", "frozen:")))
    path = tmp_path / "manifest.txt"
    path.write_text(text + "\n")
    old = Manifest.load(path)
    assert (old.backend, old.values, old.frozen) == ("tensorflow", "model", "")


def test_frozen_paths_round_trip():
    assert frozen_paths(frozen_text([(3,), (), (1, 2)])) == [(), (1, 2), (3,)]
    assert frozen_paths("") == []


@pytest.mark.parametrize("damage, message", [
    (lambda t: "hello\n", "not a pytest-ckpt manifest"),
    (lambda t: t.replace("values: distinct", "values: some"), "values must be"),
    (lambda t: t.replace("format: keras-weights\n", ""), "missing field 'format'"),
    (lambda t: t.replace("4x3", "four"), "line 12: cannot parse"),
    (lambda t: t.replace("frozen: 1.2,.", "frozen: one"), "frozen must be index paths"),
])
def test_damaged_manifests_name_the_file_and_line(tmp_path, damage, message):
    path = tmp_path / "manifest.txt"
    path.write_text(damage(manifest().dumps()))
    with pytest.raises(GoldenError, match=message):
        Manifest.load(path)


def test_tensorflow_startup_noise_is_dropped_and_nothing_else():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795922895.850179    9856 cudart_stub.cc:31] Could not find cuda drivers\n"
            "E0000 00:00:1795922895.9 9856 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
            "ValueError: the real message\n"
            "I0000 is how my own log line starts")
    assert without_startup_noise(text) == "ValueError: the real message\nI0000 is how my own log line starts"
