import io
import json
import pickle
import tarfile

import numpy as np
import pytest

from audiotok.errors import AudiotokError, ItemError, UsageError
from audiotok.io.ark import AudioArkWriter, iter_ark
from audiotok.io.audio import encode
from audiotok.io.audio_table import open_audio_source
from tests.conftest import make_data_dir, sine, write_audio


def keys_and_lengths(spec):
    source, failures = open_audio_source(spec)
    out = {}
    for item in source:
        try:
            out[item.key] = len(item.load().samples)
        except ItemError as err:
            out[item.key] = str(err)
    return out, failures


@pytest.fixture
def two_files(tmp_path):
    a = write_audio(tmp_path / "a.wav", sine(440, 16000, 1.0), 16000)
    b = write_audio(tmp_path / "b.flac", sine(440, 8000, 0.5), 8000)
    return a, b


def test_data_dir_with_paths_and_pipes(tmp_path, two_files):
    a, b = two_files
    d = make_data_dir(tmp_path / "d", {"u1": a, "u2": f"cat {b} |", "u3": "exit 3 |", "u4": str(tmp_path / "gone.wav")})
    table, _ = keys_and_lengths(str(d))
    assert table["u1"] == 16000 and table["u2"] == 4000
    assert "exit code 3" in table["u3"]
    assert "no such file" in table["u4"]


def test_segments_cut_recordings_in_place(tmp_path, two_files):
    a, _ = two_files
    d = make_data_dir(tmp_path / "d", {"rec": a})
    (d / "segments").write_text("rec-1 rec 0.00 0.25\nrec-2 rec 0.5 -1\nrec-3 rec 2.0 3.0\nrec-4 other 0 1\n")
    table, _ = keys_and_lengths(str(d))
    assert table["rec-1"] == 4000 and table["rec-2"] == 8000
    assert "after the recording ends" in table["rec-3"]
    assert "not in" in table["rec-4"]
    source, _ = open_audio_source(str(d))
    first = next(iter(source))
    assert (first.recording, first.start, first.end) == ("rec", 0.0, 0.25)


def test_unsorted_duplicate_and_missing_tables_are_errors(tmp_path, two_files):
    a, b = two_files
    (tmp_path / "unsorted.scp").write_text(f"b {b}\na {a}\n")
    with pytest.raises(AudiotokError) as caught:
        list(open_audio_source(f"scp:{tmp_path / 'unsorted.scp'}")[0])
    assert caught.value.one_line() == (
        f"error: {tmp_path}/unsorted.scp:2: not sorted: key 'a' comes after 'b' (hint: sort it with: LC_ALL=C sort -k1,1 -u {tmp_path}/unsorted.scp)"
    )
    (tmp_path / "dup.scp").write_text(f"a {a}\na {b}\n")
    with pytest.raises(AudiotokError, match="duplicate key 'a'"):
        list(open_audio_source(f"scp:{tmp_path / 'dup.scp'}")[0])
    (tmp_path / "novalue.scp").write_text("a\n")
    with pytest.raises(AudiotokError, match="has no value"):
        list(open_audio_source(f"scp:{tmp_path / 'novalue.scp'}")[0])
    with pytest.raises(AudiotokError, match="no such file"):
        list(open_audio_source(f"scp:{tmp_path / 'nothing.scp'}")[0])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(AudiotokError, match="no wav.scp"):
        open_audio_source(str(tmp_path / "empty_dir"))
    with pytest.raises(UsageError):
        open_audio_source("ark,scp:a.ark,a.scp")


def test_c_order_is_byte_order(tmp_path, two_files):
    a, _ = two_files
    # Upper case sorts before lower case in C order; a locale sort would disagree.
    (tmp_path / "c.scp").write_text(f"B {a}\na {a}\n")
    assert [i.key for i in open_audio_source(f"scp:{tmp_path / 'c.scp'}")[0]] == ["B", "a"]


def test_ark_entries_and_scp_offsets(tmp_path):
    buffer = io.BytesIO()
    scp = io.StringIO()
    writer = AudioArkWriter(buffer, str(tmp_path / "x.ark"), scp)
    writer.write("k1", encode(sine(200, 16000, 0.1), 16000))
    writer.write("k2", encode(sine(200, 16000, 0.2), 16000, subtype="PCM_24"))
    (tmp_path / "x.ark").write_bytes(buffer.getvalue())
    (tmp_path / "x.scp").write_text(scp.getvalue())
    assert keys_and_lengths(f"ark:{tmp_path / 'x.ark'}")[0] == {"k1": 1600, "k2": 3200}
    assert keys_and_lengths(f"scp:{tmp_path / 'x.scp'}")[0] == {"k1": 1600, "k2": 3200}
    # kaldiio reads the same archive (it is Kaldi's wav-in-ark layout) for 16-bit entries.
    import kaldiio

    rate, data = kaldiio.load_mat(scp.getvalue().split()[1])
    assert rate == 16000 and len(data) == 1600


def test_pickled_archive_entries_are_refused(tmp_path):
    ark = tmp_path / "evil.ark"
    ark.write_bytes(b"k1 PKL" + pickle.dumps({"x": 1}))
    with pytest.raises(AudiotokError, match="refusing a pickled"):
        list(iter_ark(open(ark, "rb"), "evil.ark"))


def test_matrix_archives_are_not_audio(tmp_path):
    import kaldiio

    kaldiio.save_ark(str(tmp_path / "m.ark"), {"k": np.zeros((3, 4), np.float32)})
    assert "not audio" in keys_and_lengths(f"ark:{tmp_path / 'm.ark'}")[0]["k"]


def _tar(path, members: dict[str, bytes], cut: int | None = None):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    path.write_bytes(data if cut is None else data[:cut])


def test_tar_shards_webdataset_layout(tmp_path):
    flac = open(write_audio(tmp_path / "x.flac", sine(440, 16000, 0.5), 16000), "rb").read()
    shards = tmp_path / "shards"
    shards.mkdir()
    _tar(
        shards / "000.tar",
        {
            "s1.flac": flac,
            "s1.json": json.dumps({"text": "hi", "language": "en"}).encode(),
            "s2.json": b"{}",  # no audio
            "s3.flac": b"not audio",
            "s3.json": b"{}",
            "s4.flac": flac,
            "s4.json": b"{broken",
        },
    )
    _tar(shards / "001.tar", {"t1.flac": flac, "t2.flac": flac}, cut=1200)  # truncated mid-member
    source, failures = open_audio_source(str(shards))
    items = list(source)
    table = {}
    for item in items:
        try:
            table[item.key] = len(item.load().samples)
        except ItemError as err:
            table[item.key] = str(err)
    assert table["s1"] == 8000 and items[0].metadata == {"text": "hi", "language": "en"}
    assert "no audio member" in table["s2"]
    assert "cannot decode" in table["s3"]
    assert "bad JSON" in table["s4"]
    assert len(failures) == 1 and "001.tar" in failures[0][0]
    assert set(open_audio_source(f"tar:{shards}/000.tar")[0].__iter__().__next__().__dict__) >= {"key"}


def test_jsonl_manifest_and_key_rules(tmp_path, two_files):
    a, b = two_files
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_path": a, "text": "x"}) + "\n" + json.dumps({"key": "zz", "path": b}) + "\n")
    items = list(open_audio_source(f"jsonl:{manifest}")[0])
    assert [i.key for i in items] == ["a", "zz"] and items[0].metadata["text"] == "x"
    manifest.write_text(json.dumps({"key": "has space", "path": a}) + "\n")
    with pytest.raises(AudiotokError, match="contains whitespace"):
        list(open_audio_source(f"jsonl:{manifest}")[0])


def test_audio_files_and_folders(tmp_path, two_files):
    a, b = two_files
    assert [i.key for i in open_audio_source([b, a])[0]] == ["a", "b"]
    assert [i.key for i in open_audio_source(str(tmp_path))[0]] == ["a", "b"]
    with pytest.raises(UsageError, match="must all be audio files"):
        open_audio_source([a, "scp:x.scp"])
    write_audio(tmp_path / "sub" / "a.wav", sine(440, 16000, 0.1), 16000)
    with pytest.raises(AudiotokError, match="duplicate key 'a'"):
        list(open_audio_source(str(tmp_path))[0])


def test_tar_links_are_never_followed_and_are_named_skips(tmp_path):
    flac = open(write_audio(tmp_path / "x.flac", sine(440, 16000, 0.5), 16000), "rb").read()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("a.flac", flac), ("a.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, kind in (("b.flac", tarfile.SYMTYPE), ("c.flac", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else "a.flac"
            archive.addfile(info)
    (tmp_path / "links.tar").write_bytes(buffer.getvalue())
    table = {}
    for item in open_audio_source(f"tar:{tmp_path / 'links.tar'}")[0]:
        try:
            table[item.key] = len(item.load().samples)
        except ItemError as err:
            table[item.key] = str(err)
    assert table == {"a": 8000, "b": "member b.flac is a link to /etc/passwd", "c": "member c.flac is a link to a.flac"}
