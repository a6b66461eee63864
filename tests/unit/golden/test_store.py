"""Golden folder names, manifests and the noise filter (no TensorFlow)."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ckpt.framework.chatter import without_startup_noise
from pytest_ckpt.golden.store import (
    DISTINCT,
    HEADER,
    GoldenError,
    GoldenVariable,
    Manifest,
    encode,
    frozen_paths,
    frozen_text,
    golden_location,
)


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
                    "a" * 64, "b" * 64, [GoldenVariable("layers/dense/vars/0", (4, 3), "float32", "c" * 64,
                                                        "dense/kernel"),
                                         GoldenVariable("optimizer/vars/0", (), "int64", "d" * 64)])


def test_manifest_round_trip(tmp_path):
    path = tmp_path / "manifest.txt"
    path.write_text(manifest().dumps())
    assert Manifest.load(path) == manifest()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_older_manifests_ask_for_an_update(tmp_path, version):
    # v1 and v2 keyed variables by layer position, not by what the format loads by.
    path = tmp_path / "manifest.txt"
    path.write_text(manifest().dumps().replace(HEADER, f"# pytest-ckpt golden manifest {version}"))
    with pytest.raises(GoldenError, match=r"older pytest-ckpt.*--ckpt-update"):
        Manifest.load(path)


@pytest.mark.parametrize("name", ["/etc/passwd", "../../x", "../checkpoint.h5", "sub/checkpoint.h5",
                                  "checkpoint.h5/..", "..", ".", "", "checkpoint\\..\\x.h5", "outputs.npz",
                                  "manifest.txt", "checkpoint.h5\x00", "/tmp/checkpoint.h5", "~/checkpoint.h5",
                                  "checkpoint." + "h" * 300])
def test_a_hostile_checkpoint_field_fails_naming_the_field_before_any_file_is_opened(tmp_path, name):
    path = tmp_path / "manifest.txt"
    path.write_text(manifest().dumps().replace("checkpoint: checkpoint.weights.h5", f"checkpoint: {name}"))
    with pytest.raises(GoldenError, match="field 'checkpoint' must be a plain file name"):
        Manifest.load(path)


@pytest.mark.parametrize("field, value", [("format", "../keras"), ("checkpoint_sha256", "x" * 64),
                                          ("outputs_sha256", "")])
def test_other_file_fields_are_checked_too(tmp_path, field, value):
    text = "\n".join(f"{field}: {value}" if line.startswith(f"{field}:") else line
                     for line in manifest().dumps().splitlines())
    path = tmp_path / "manifest.txt"
    path.write_text(text + "\n")
    with pytest.raises(GoldenError, match=f"field '{field}'"):
        Manifest.load(path)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=60),
    st.sampled_from(["checkpoint: ", "format: ", "values: ", "frozen: ", "backend: "]).flatmap(
        lambda k: st.text(max_size=40).map(lambda v: k + v)),
    st.builds(lambda *parts: "\t".join(parts), st.text(max_size=10), st.text(max_size=10),
              st.text(max_size=10), st.text(max_size=70), st.text(max_size=10))), max_size=20),
    st.booleans())
def test_the_manifest_parser_gives_a_manifest_with_a_safe_file_name_or_a_golden_error(lines, base):
    text = manifest().dumps() + "\n".join(lines) if base else "\n".join([HEADER, *lines])
    try:
        parsed = Manifest.parse(text.encode("utf-8", "surrogatepass"), Path("manifest.txt"))
    except GoldenError:
        return
    assert "/" not in parsed.checkpoint and "\\" not in parsed.checkpoint
    assert parsed.checkpoint.startswith("checkpoint.") and ".." not in parsed.checkpoint


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


def test_a_format_that_does_not_match_the_checkpoint_name_is_named(tmp_path):
    path = tmp_path / "manifest.txt"
    path.write_text(manifest().dumps().replace("format: keras-weights", "format: h5"))
    with pytest.raises(GoldenError, match="field 'format' says h5 and field 'checkpoint' names"):
        Manifest.load(path)


def test_a_golden_folder_that_is_a_link_is_refused(tmp_path):
    from pytest_ckpt.golden.store import GoldenFolder

    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "manifest.txt").write_text(manifest().dumps())
    (tmp_path / "check-1").symlink_to(real)
    with pytest.raises(GoldenError, match="is a symbolic link"):
        GoldenFolder(tmp_path / "check-1").read(tmp_path)


# -- a folder checkpoint packed as one file ----------------------------------------------------------

def _tar(path, members):
    """A tar holding ``members``: (name, TarInfo type, content or link target)."""
    import io
    import tarfile

    with tarfile.open(path, "w") as archive:
        for name, kind, content in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
            else:
                info.linkname = content
                archive.addfile(info)


def test_a_packed_folder_unpacks_to_the_same_files(tmp_path):
    from pytest_ckpt.golden.store import pack, unpack

    source = tmp_path / "ckpt"
    (source / "1" / "pytree").mkdir(parents=True)
    (source / "1" / "pytree" / "_METADATA").write_text("{}")
    (source / "meta.json").write_bytes(b"\\x00\\x01")
    pack(source, tmp_path / "checkpoint.tar")
    out = unpack(tmp_path / "checkpoint.tar", tmp_path / "out" / "ckpt")
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert found == ["1", "1/pytree", "1/pytree/_METADATA", "meta.json"]
    assert (out / "meta.json").read_bytes() == b"\\x00\\x01"


@pytest.mark.parametrize("members, message", [
    ([], "holds no file"),
    ([("ok", "0", b"x"), ("link", "2", "/etc/passwd")], "not a plain file or folder"),
    ([("ok", "0", b"x"), ("../escape", "0", b"x")], "not a plain file or folder"),
    ([("/abs", "0", b"x")], "not a plain file or folder"),
])
def test_an_edited_archive_is_refused_before_anything_is_unpacked(tmp_path, members, message):
    import tarfile

    from pytest_ckpt.golden.store import GoldenError, unpack

    kinds = {"0": tarfile.REGTYPE, "2": tarfile.SYMTYPE}
    _tar(tmp_path / "checkpoint.tar", [(n, kinds[k], c) for n, k, c in members])
    with pytest.raises(GoldenError, match=message):
        unpack(tmp_path / "checkpoint.tar", tmp_path / "out" / "ckpt")
    assert not (tmp_path / "out" / "ckpt").exists() and not (tmp_path / "escape").exists()
