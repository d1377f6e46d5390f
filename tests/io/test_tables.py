import io
import sys

import kaldiio
import numpy as np
import pytest

from audiotok.errors import AudiotokError
from audiotok.io.tables import format_int_vector, format_jsonl, read_int_vectors, read_jsonl_table, read_matrices


def test_int_vectors_round_trip(tmp_path):
    path = tmp_path / "units.txt"
    path.write_text(format_int_vector("a", [1, 2, 407]) + "\n" + format_int_vector("b", []) + "\n")
    assert path.read_text() == "a 1 2 407\nb\n"
    table = dict(read_int_vectors(str(path)))
    assert table["a"].tolist() == [1, 2, 407] and table["b"].tolist() == []
    assert [k for k, _ in read_int_vectors(f"ark,t:{path}")] == ["a", "b"]


def test_int_vectors_errors(tmp_path, monkeypatch):
    path = tmp_path / "bad.txt"
    path.write_text("a 1 x 3\n")
    with pytest.raises(AudiotokError, match=r"bad.txt:1: 'x' is not an integer"):
        list(read_int_vectors(str(path)))
    path.write_text("a 1\na 2\n")
    with pytest.raises(AudiotokError, match="duplicate key 'a'"):
        list(read_int_vectors(str(path)))
    with pytest.raises(AudiotokError, match="contains whitespace"):
        format_int_vector("a b", [1])
    monkeypatch.setattr(sys, "stdin", io.StringIO("k 5 6\n"))
    assert [(k, v.tolist()) for k, v in read_int_vectors("-")] == [("k", [5, 6])]


def test_jsonl_tables(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text(format_jsonl("a", tokens=np.array([3, 4])) + "\n" + format_jsonl("b", tokens=[], text="é") + "\n")
    assert path.read_text().splitlines()[1] == '{"key": "b", "tokens": [], "text": "é"}'
    assert list(read_jsonl_table(f"jsonl:{path}")) == [("a", [3, 4]), ("b", [])]
    path.write_text('{"tokens": [1]}\n')
    with pytest.raises(AudiotokError, match='needs "key"'):
        list(read_jsonl_table(str(path)))


def test_matrices_from_ark_scp_and_text_ark(tmp_path):
    feats = {"u1": np.arange(12, dtype=np.float32).reshape(3, 4), "u2": np.ones((2, 4), np.float32)}
    kaldiio.save_ark(str(tmp_path / "f.ark"), feats, scp=str(tmp_path / "f.scp"))
    kaldiio.save_ark(str(tmp_path / "t.ark"), feats, text=True)
    for spec in (f"ark:{tmp_path}/f.ark", f"scp:{tmp_path}/f.scp", f"ark,t:{tmp_path}/t.ark"):
        table = dict(read_matrices(spec))
        assert list(table) == ["u1", "u2"], spec
        np.testing.assert_array_equal(table["u1"], feats["u1"])
    with pytest.raises(AudiotokError, match="not a Kaldi specifier"):
        list(read_matrices(str(tmp_path / "f.ark")))
