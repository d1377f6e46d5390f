"""copy-feats: exact round trips between binary ark, text ark, scp, npy:DIR and text integer tables,
and parity with kaldiio (what it writes we read, what we write it reads)."""

import json

import kaldiio
import numpy as np
import pytest

from tests.conftest import assert_no_traceback


def float32_table() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3)).astype(np.float32)
    a[0, 0] = 0.0  # a text matrix starting with an integer is still floats
    a[1, 1] = np.nan
    return {
        "a": a,
        "b": np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32),  # integral values stay float32
        "c": (rng.normal(size=(7, 3)) * 1e-6).astype(np.float32),
        "d": rng.normal(size=4).astype(np.float32),  # a vector
    }


def write_ark(path, table, spec="ark") -> None:
    with kaldiio.WriteHelper(f"{spec}:{path}") as writer:
        for key, value in table.items():
            writer(key, value)


def load(path) -> dict[str, np.ndarray]:
    return dict(kaldiio.load_ark(str(path)))


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape, key
        assert np.array_equal(got[key], want[key], equal_nan=True), key


def test_ark_text_ark_and_npy_round_trips_are_exact(cli, tmp_path):
    table = float32_table()
    write_ark(tmp_path / "f.ark", table)
    assert cli("copy-feats", f"ark:{tmp_path}/f.ark", f"ark,t:{tmp_path}/f.txt").returncode == 0
    assert (tmp_path / "f.txt").read_text().startswith("a  [\n  0 ")
    assert cli("copy-feats", f"ark,t:{tmp_path}/f.txt", f"ark:{tmp_path}/back.ark").returncode == 0
    assert (tmp_path / "back.ark").read_bytes() == (tmp_path / "f.ark").read_bytes()

    table["e"] = np.arange(6, dtype=np.float64).reshape(3, 2) / 3  # float64 stays float64 in ark and npy
    write_ark(tmp_path / "g.ark", table)
    assert cli("copy-feats", f"ark:{tmp_path}/g.ark", f"npy:{tmp_path}/npy").returncode == 0
    assert np.load(tmp_path / "npy" / "e.npy").dtype == np.float64 and np.load(tmp_path / "npy" / "a.npy").dtype == np.float32
    assert cli("copy-feats", f"npy:{tmp_path}/npy", f"ark:{tmp_path}/g2.ark").returncode == 0
    assert (tmp_path / "g2.ark").read_bytes() == (tmp_path / "g.ark").read_bytes()


def test_text_archive_reads_back_as_float32(cli, tmp_path):
    value = np.array([[1 / 3, 2.5]], dtype=np.float64)
    write_ark(tmp_path / "d.ark", {"x": value})
    assert cli("copy-feats", f"ark:{tmp_path}/d.ark", f"ark,t:{tmp_path}/d.txt").returncode == 0
    assert (tmp_path / "d.txt").read_text() == "x  [\n  0.33333333333333331 2.5 ]\n"  # 17 digits: the float64 itself
    assert cli("copy-feats", f"ark,t:{tmp_path}/d.txt", f"ark:{tmp_path}/e.ark").returncode == 0
    assert_same(load(tmp_path / "e.ark"), {"x": value.astype(np.float32)})


def test_scp_to_ark_and_ark_scp_output_match_kaldiio(cli, tmp_path):
    table = float32_table()
    write_ark(f"{tmp_path}/k.ark,{tmp_path}/k.scp", table, spec="ark,scp")
    (tmp_path / "k.scp.recipe.json").write_text('{"backend": "mfcc", "dim": 3}')
    result = cli("copy-feats", f"scp:{tmp_path}/k.scp", f"ark,scp:{tmp_path}/o.ark,{tmp_path}/o.scp")
    assert result.returncode == 0 and "done 4/4" in result.stderr
    assert (tmp_path / "o.ark").read_bytes() == (tmp_path / "k.ark").read_bytes()
    assert (tmp_path / "o.scp").read_text() == (tmp_path / "k.scp").read_text().replace("k.ark", "o.ark")
    assert_same(dict(kaldiio.load_scp(str(tmp_path / "o.scp"))), table)
    assert json.loads((tmp_path / "o.ark.recipe.json").read_text()) == {"backend": "mfcc", "dim": 3}  # the recipe travels with the features


def test_int_table_to_ark_and_back_is_exact(cli, tmp_path):
    units = "u1 12 12 407\nu2\nu3 0 -1 2147483647\n"
    (tmp_path / "units.txt").write_text(units)
    assert cli("copy-feats", f"text:{tmp_path}/units.txt", f"ark:{tmp_path}/units.ark").returncode == 0
    assert_same(
        load(tmp_path / "units.ark"),
        {"u1": np.array([12, 12, 407], np.int32), "u2": np.zeros(0, np.int32), "u3": np.array([0, -1, 2**31 - 1], np.int32)},
    )
    assert cli("copy-feats", f"ark:{tmp_path}/units.ark", f"ark,t:{tmp_path}/units.t").returncode == 0
    assert (tmp_path / "units.t").read_text() == "u1 12 12 407\nu2 \nu3 0 -1 2147483647\n"  # Kaldi's int-vector text
    back = cli("copy-feats", f"ark:{tmp_path}/units.ark", "text:-")
    assert back.returncode == 0 and back.text == units


def test_pipes_and_key_subset(cli, tmp_path):
    table = float32_table()
    write_ark(tmp_path / "f.ark", table)
    binary = cli("copy-feats", f"ark:{tmp_path}/f.ark", "ark:-").stdout
    assert binary == (tmp_path / "f.ark").read_bytes()
    (tmp_path / "keys").write_text("d\nc extra fields\nzz\n")
    result = cli("copy-feats", "--keys", tmp_path / "keys", "-", "ark,t:-", input=binary)
    assert result.returncode == 0 and "1 key(s) of" in result.stderr
    (tmp_path / "sub.txt").write_bytes(result.stdout)
    # kaldiio reads our text ark (keys in IN's order); it types a text vector by its first number, so "b" ([[1 2 3] ...]) is left out
    assert_same(load(tmp_path / "sub.txt"), {"c": table["c"], "d": table["d"]})


def test_parity_with_kaldiio_writers(cli, tmp_path):
    """What kaldiio writes (binary, text, compressed, int vectors), copy-feats reads as kaldiio does."""
    table = {**float32_table(), "i": np.array([3, 1, 4], np.int32)}
    write_ark(tmp_path / "t.ark", table, spec="ark,t")
    assert cli("copy-feats", f"ark:{tmp_path}/t.ark", f"ark:{tmp_path}/t2.ark").returncode == 0
    want = load(tmp_path / "t.ark")
    want["i"] = want["i"].astype(np.float32)  # kaldiio writes a text int vector in brackets: Kaldi's float vector form
    assert_same(load(tmp_path / "t2.ark"), want)
    with kaldiio.WriteHelper(f"ark:{tmp_path}/cm.ark", compression_method=2) as writer:
        writer("a", np.nan_to_num(table["a"]))
        writer("c", table["c"])
    assert cli("copy-feats", f"ark:{tmp_path}/cm.ark", f"ark:{tmp_path}/cm2.ark").returncode == 0
    assert_same(load(tmp_path / "cm2.ark"), load(tmp_path / "cm.ark"))  # decompressed as kaldiio does, written as float32


def test_keys_that_cannot_name_a_file_are_counted_skips(cli, tmp_path):
    write_ark(tmp_path / "f.ark", {"a": np.zeros((2, 2), np.float32), "b/c": np.ones((1, 2), np.float32)})
    result = cli("copy-feats", "--min-success", "0.5", f"ark:{tmp_path}/f.ark", f"npy:{tmp_path}/out")
    assert result.returncode == 0 and "b/c: key 'b/c' cannot name a file" in result.stderr and "done 1/2" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == ["a.npy"]
    strict = cli("copy-feats", f"ark:{tmp_path}/f.ark", f"npy:{tmp_path}/out2")
    assert strict.returncode == 1 and strict.stderr.strip().splitlines()[-1].startswith("error: only 1 of 2 entries succeeded")


@pytest.mark.parametrize(
    ("make", "source", "message", "code"),
    [
        ("truncated", "ark:{d}/bad.ark", "bad.ark entry 4 ('d'): truncated archive (the entry ends early)", 1),
        ("pickle", "ark:{d}/bad.ark", "bad.ark entry 1 ('a'): refusing a pickled archive entry", 1),
        ("empty", "ark:{d}/bad.ark", "error: ark:{d}/bad.ark holds no entries (hint: nothing to copy)", 1),
        ("floats", "text:{d}/bad.ark", "bad.ark:2: '0.5' is not an integer", 1),
        ("truncated", "{d}/bad.ark", "error: not a feature table: '{d}/bad.ark' (hint: name its kind: ark:{d}/bad.ark)", 2),
    ],
)
def test_bad_inputs_are_one_line(cli, tmp_path, make, source, message, code):
    bad = tmp_path / "bad.ark"
    if make == "truncated":
        write_ark(tmp_path / "good.ark", float32_table())
        bad.write_bytes((tmp_path / "good.ark").read_bytes()[:-10])
    elif make == "pickle":
        with kaldiio.WriteHelper(f"ark:{bad}", write_function="pickle") as writer:
            writer("a", np.zeros(3))
    elif make == "floats":
        bad.write_text("u1 1 2\nu2 0.5\n")
    else:
        bad.write_bytes(b"")
    result = cli("copy-feats", source.format(d=tmp_path), f"ark:{tmp_path}/out.ark")
    assert result.returncode == code
    assert_no_traceback(result.stderr)
    assert message.format(d=tmp_path) in result.stderr and len([line for line in result.stderr.splitlines() if line.startswith("error")]) == 1
    assert not (tmp_path / "out.ark").exists()


def test_float_matrix_to_a_text_table_is_a_counted_failure(cli, tmp_path):
    write_ark(tmp_path / "f.ark", {"a": np.zeros((2, 2), np.float32)})
    result = cli("copy-feats", f"ark:{tmp_path}/f.ark", f"text:{tmp_path}/u.txt")
    assert result.returncode == 1 and "a: a float32 matrix is not an integer vector" in result.stderr
    assert_no_traceback(result.stderr)
