"""Archives on disk are read through a memory map: the same values as a pipe and as kaldiio."""

import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest

from audiotok.errors import AudiotokError
from audiotok.io import mapped as mapped_module
from audiotok.io.archives import ark_entries, read_archive


def write_archive(path, count=40, seed=0):
    rng = np.random.default_rng(seed)
    values = {f"utt{i:03d}": rng.standard_normal((int(rng.integers(0, 90)), 13)).astype(np.float32) for i in range(count)}
    values["vector"] = rng.standard_normal(7).astype(np.float32)  # not a matrix: kaldiio reads it
    values["double"] = rng.standard_normal((3, 4))  # float64: kaldiio too
    kaldiio.save_ark(str(path), values)
    return values


def assert_same(entries, expected):
    entries = list(entries)
    assert [key for key, _ in entries] == list(expected)
    for (_, value), reference in zip(entries, expected.values(), strict=True):
        assert value.dtype == reference.dtype
        np.testing.assert_array_equal(value, reference)


def test_a_file_a_redirected_stdin_and_a_pipe_read_the_same(tmp_path, monkeypatch):
    ark = tmp_path / "f.ark"
    expected = write_archive(ark)
    # Release pages behind the reader often, so views handed out earlier are read again from the page cache.
    monkeypatch.setattr(mapped_module, "RELEASE_LAG", 4096)
    monkeypatch.setattr(mapped_module, "RELEASE_EVERY", 4096)
    assert_same(read_archive(f"ark:{ark}"), expected)
    with open(ark, "rb") as stream:
        assert mapped_module.mapped(stream) is not None
        assert_same(ark_entries(stream, "stdin"), expected)
        assert os.lseek(stream.fileno(), 0, os.SEEK_CUR) == ark.stat().st_size  # consumed, as a read would leave it
    reader, writer = os.pipe()
    with open(reader, "rb") as stream:
        assert mapped_module.mapped(stream) is None
        feeder = subprocess.Popen([sys.executable, "-c", f"import sys; sys.stdout.buffer.write(open({str(ark)!r}, 'rb').read())"], stdout=writer)
        os.close(writer)
        assert_same(ark_entries(stream, "stdin"), expected)
        feeder.wait()


def test_stdin_is_read_from_where_it_stands(tmp_path):
    first, second = tmp_path / "a.ark", tmp_path / "b.ark"
    write_archive(first, 3, seed=1)
    expected = write_archive(second, 5, seed=2)
    joined = tmp_path / "joined.ark"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with open(joined, "rb") as stream:
        os.lseek(stream.fileno(), first.stat().st_size, os.SEEK_SET)
        assert_same(ark_entries(stream, "stdin"), expected)


def test_a_cut_matrix_is_one_error(tmp_path):
    ark = tmp_path / "f.ark"
    write_archive(ark, 2)
    cut = tmp_path / "cut.ark"
    data = ark.read_bytes()
    cut.write_bytes(data[: data.index(b"utt001") + 40])
    with pytest.raises(AudiotokError, match=r"entry 2 \('utt001'\): truncated archive"):
        list(read_archive(f"ark:{cut}"))
