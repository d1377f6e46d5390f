"""parquet: inputs: shards written by the `datasets` package read as audio tables, and by tokenize-shards."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from audiotok.errors import AudiotokError, ItemError, UsageError
from audiotok.io.audio import decode, encode
from audiotok.io.audio_table import open_audio_source
from tests.conftest import assert_no_traceback, run_cli, sine
from tests.pipeline.shards import flac_bytes, make_mfcc_bundle, read_lines, signal_of

datasets = pytest.importorskip("datasets")


def hf_audio_parquet(path: Path, columns: dict, batch_size: int | None = None) -> Path:
    """What a user of `datasets` writes: a Dataset whose "audio" column is cast to the Audio
    feature (a {bytes, path} struct), saved with to_parquet (batch_size: rows a row group)."""
    dataset = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio())
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.to_parquet(str(path), **({"batch_size": batch_size} if batch_size else {}))
    return path


def source_files(directory: Path, count: int, first: int = 0) -> dict[str, Path]:
    """Generated FLAC files named by their key, some at 22.05 kHz."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for n in range(first, first + count):
        rate = 22050 if n % 3 == 0 else 16000
        files[f"utt{n:02d}"] = directory / f"utt{n:02d}.flac"
        files[f"utt{n:02d}"].write_bytes(flac_bytes(signal_of(n, rate), rate))
    return files


def items_of(spec: str, channel=None) -> dict:
    source, failures = open_audio_source(spec)
    table = {}
    for item in source:
        try:
            table[item.key] = (item.load(channel), item.metadata)
        except ItemError as err:
            table[item.key] = str(err)
    return table, failures


@pytest.fixture
def corpus(tmp_path):
    files = source_files(tmp_path / "src", 5)
    columns = {
        "id": list(files),
        "audio": [{"bytes": path.read_bytes(), "path": path.name} for path in files.values()],
        "text": [f"sentence {n}" for n in range(5)],
        "speaker": ["spk1", "spk2", "spk1", None, "spk3"],
        "duration": [1.5, 2.0, 0.5, 1.0, 3.25],
    }
    return files, hf_audio_parquet(tmp_path / "data" / "train-00000-of-00001.parquet", columns)


def test_samples_keys_and_metadata_equal_the_source_files(corpus):
    files, shard = corpus
    schema = pq.read_schema(shard)
    assert str(schema.field("audio").type) == "struct<bytes: binary, path: string>"  # datasets' Audio layout
    for spec in (f"parquet:{shard}", str(shard), f"parquet:{shard.parent}", str(shard.parent), f"parquet:{shard.parent}/*.parquet"):
        table, failures = items_of(spec)
        assert list(table) == list(files) and failures == []
        for key, path in files.items():
            audio, metadata = table[key]
            expected = decode(str(path))
            assert audio.rate == expected.rate and np.array_equal(audio.samples, expected.samples)
        assert table["utt01"][1] == {"id": "utt01", "text": "sentence 1", "speaker": "spk2", "duration": 2.0}
        assert table["utt03"][1]["speaker"] is None


def test_keys_default_to_id_then_the_path_stem_then_shard_and_row(tmp_path):
    audio = [{"bytes": encode(sine(300 + 50 * n, 16000, 0.2), 16000), "path": f"clips/c{n}.wav"} for n in range(3)]
    with_path = hf_audio_parquet(tmp_path / "a.parquet", {"audio": audio, "utt": ["x", "y", "z"]})
    assert list(items_of(f"parquet:{with_path}")[0]) == ["c0", "c1", "c2"]
    assert list(items_of(f"parquet:{with_path},key=utt")[0]) == ["x", "y", "z"]
    no_path = hf_audio_parquet(tmp_path / "b.parquet", {"audio": [{**a, "path": None} for a in audio]})
    assert list(items_of(f"parquet:{no_path}")[0]) == ["b-0", "b-1", "b-2"]
    renamed = hf_audio_parquet(tmp_path / "c.parquet", {"audio": audio, "key": ["k0", "k1", "k2"]})
    pq.write_table(pq.read_table(renamed).rename_columns(["speech", "key"]), tmp_path / "d.parquet")
    assert list(items_of(f"parquet:{tmp_path / 'd.parquet'},audio=speech")[0]) == ["k0", "k1", "k2"]


def test_rows_without_bytes_are_read_from_their_path(tmp_path, monkeypatch):
    """datasets keeps a path cast to Audio as a path (no bytes) in to_parquet: found beside the shard too."""
    files = source_files(tmp_path / "data", 2)
    monkeypatch.chdir(tmp_path / "data")  # datasets opens the paths it is given
    shard = hf_audio_parquet(tmp_path / "data" / "s.parquet", {"id": list(files), "audio": [p.name for p in files.values()]})
    assert pq.read_table(shard).column("audio").to_pylist()[0] == {"bytes": None, "path": "utt00.flac"}
    monkeypatch.chdir(tmp_path)
    table, _ = items_of(f"parquet:{shard}")
    assert np.array_equal(table["utt01"][0].samples, decode(str(files["utt01"])).samples)
    (tmp_path / "data" / "utt00.flac").unlink()
    assert items_of(f"parquet:{shard}")[0]["utt00"] == "row 0 of s.parquet has no audio bytes (path utt00.flac is not a file here nor beside the shard)"


def test_array_layout_with_channels(tmp_path):
    """{array, sampling_rate} rows (datasets' decoded form, written as a plain struct): mono, and [channels][frames]."""
    mono, stereo = sine(440, 16000, 0.25), sine(330, 8000, 0.5, channels=2)
    mono_shard = tmp_path / "mono.parquet"
    datasets.Dataset.from_dict({"id": ["m"], "audio": [{"array": mono.tolist(), "sampling_rate": 16000}]}).to_parquet(str(mono_shard))
    table, _ = items_of(f"parquet:{mono_shard}")
    assert table["m"][0].rate == 16000 and np.array_equal(table["m"][0].samples, mono)
    stereo_shard = tmp_path / "stereo.parquet"
    datasets.Dataset.from_dict({"id": ["s"], "audio": [{"array": stereo.T.tolist(), "sampling_rate": 8000}]}).to_parquet(str(stereo_shard))
    assert np.array_equal(items_of(f"parquet:{stereo_shard}", channel=1)[0]["s"][0].samples, stereo[:, 1])
    mixed = items_of(f"parquet:{stereo_shard}")[0]["s"][0]
    assert mixed.info.channels == 2 and np.allclose(mixed.samples, stereo.mean(axis=1), atol=1e-7)


def test_a_bad_row_is_a_named_skip_and_the_others_are_read(tmp_path):
    good = encode(sine(440, 16000, 0.2), 16000)
    shard = hf_audio_parquet(
        tmp_path / "s.parquet",
        {"id": ["a", "b", "c", "d"], "audio": [{"bytes": good, "path": None}, {"bytes": b"not audio" * 30, "path": None}, None, {"bytes": good, "path": None}]},
    )
    table, _ = items_of(f"parquet:{shard}")
    assert list(table) == ["a", "b", "c", "d"]
    assert "cannot decode audio" in table["b"]
    assert table["c"] == "row 2 of s.parquet has no audio (null 'audio')"
    result = run_cli("info", f"parquet:{shard}", "--min-success", "0.5")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.text.splitlines()] == ["a", "d"]
    assert "WARNING audiotok: b: cannot decode audio" in result.stderr and "WARNING audiotok: c: row 2 of s.parquet has no audio" in result.stderr
    assert "done 2/4" in result.stderr


def test_not_parquet_and_a_missing_column_are_one_line_errors(tmp_path, corpus):
    _, shard = corpus
    (tmp_path / "fake.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(AudiotokError, match="is not a readable Parquet file"):
        open_audio_source(f"parquet:{tmp_path / 'fake.parquet'}")
    with pytest.raises(AudiotokError, match=r"has no audio column 'speech' \(columns: id, audio, text, speaker, duration\)"):
        open_audio_source(f"parquet:{shard},audio=speech")
    with pytest.raises(AudiotokError, match="column 'text' is string, not audio"):
        open_audio_source(f"parquet:{shard},audio=text")
    with pytest.raises(UsageError, match="unknown option 'rate'"):
        open_audio_source(f"parquet:{shard},rate=16000")
    with pytest.raises(AudiotokError, match="no Parquet shards found"):
        open_audio_source(f"parquet:{tmp_path / 'none'}/*.parquet")
    for spec, message in ((f"parquet:{tmp_path / 'fake.parquet'}", "is not a readable Parquet file"), (f"parquet:{shard},audio=speech", "has no audio column")):
        result = run_cli("info", spec)
        assert result.returncode == 1 and result.stdout == b""
        assert_no_traceback(result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and message in last


def test_rows_are_read_by_small_batches_never_a_shard_at_once(tmp_path):
    """A shard of 24 row groups: what pyarrow holds while the items are read stays near a
    batch's row groups, far below the shard's audio (a whole-table read holds all of it)."""
    from audiotok.io import parquet_audio

    rng = np.random.default_rng(0)
    blobs = [encode(rng.normal(0, 0.1, 24000).astype(np.float32), 16000) for _ in range(96)]
    shard = hf_audio_parquet(tmp_path / "big.parquet", {"id": [f"r{n:02d}" for n in range(96)], "audio": [{"bytes": b, "path": None} for b in blobs]}, 4)
    assert pq.ParquetFile(shard).metadata.num_row_groups == 24
    audio_bytes = sum(map(len, blobs))
    source, _ = open_audio_source(f"parquet:{shard}")
    base, peak, count = pa.total_allocated_bytes(), 0, 0
    for item, blob in zip(source, blobs, strict=True):
        peak = max(peak, pa.total_allocated_bytes() - base)
        count += np.array_equal(item.load().samples, decode(blob).samples)
    assert count == 96
    assert parquet_audio.BATCH_ROWS <= 16 and peak < 0.4 * audio_bytes, (peak, audio_bytes)


def test_every_audio_command_reads_it(corpus, tmp_path):
    files, shard = corpus
    resampled = run_cli("resample", f"parquet:{shard}", "--rate", "8000", f"ark:{tmp_path / 'r.ark'}")
    assert resampled.returncode == 0, resampled.stderr
    assert "done 5/5" in resampled.stderr
    info = run_cli("info", f"ark:{tmp_path / 'r.ark'}", "--format", "jsonl")
    assert [(r["key"], r["rate"]) for r in map(json.loads, info.text.splitlines())] == [(key, 8000) for key in files]


# ---------------------------------------------------------------- tokenize-shards


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_mfcc_bundle(tmp_path_factory.mktemp("bundle") / "km")


def two_parquet_shards(root: Path) -> tuple[Path, dict[str, Path]]:
    files = {}
    for shard in range(2):
        part = source_files(root / "src", 4, first=4 * shard)
        files.update(part)
        columns = {
            "id": list(part),
            "audio": [{"bytes": p.read_bytes(), "path": p.name} for p in part.values()],
            "text": [f"t {key}" for key in part],
            "language": ["en"] * 4,
        }
        hf_audio_parquet(root / "shards" / f"part-{shard:03d}.parquet", columns)
    return root / "shards", files


def test_tokenize_shards_over_parquet_equals_tokenize_and_resumes(bundle, tmp_path):
    shards, files = two_parquet_shards(tmp_path)
    out = tmp_path / "out"
    command = ("tokenize-shards", "--input-dir", shards, "--output-dir", out, "--tokenizer", f"bundle:{bundle}", "--num-proc", 2)
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert "done 8/8" in result.stderr
    lines = read_lines(out)
    assert sorted((line["shard"], line["key"]) for line in lines) == [(f"part-{k // 4:03d}.parquet", f"utt{k:02d}") for k in range(8)]
    assert {line["key"]: (line["text"], line["language"]) for line in lines} == {key: (f"t {key}", "en") for key in files}
    reference = run_cli("tokenize", bundle, *map(str, files.values()), "--format", "jsonl")
    assert reference.returncode == 0, reference.stderr
    expected = {record["key"]: record["tokens"] for record in map(json.loads, reference.text.splitlines())}
    assert {line["key"]: line["units"] for line in lines} == expected
    again = run_cli(*command[:-1], 1)  # another --num-proc: the same finished rows
    assert again.returncode == 0 and "done 8/8 (8 already done)" in again.stderr, again.stderr
    assert len(read_lines(out)) == 8


def test_tokenize_shards_a_killed_worker_writes_every_row_once(bundle, tmp_path):
    shards, files = two_parquet_shards(tmp_path)
    out = tmp_path / "out"
    command = ("tokenize-shards", "--input-dir", shards, "--output-dir", out, "--tokenizer", f"bundle:{bundle}", "--num-proc", 1, "--batch-seconds", 0)
    result = run_cli(*command, env={"AUDIOTOK_TEST_WORKER_DEATH": "0:3"})
    assert result.returncode == 0, result.stderr
    assert "worker 0 died (killed by SIGKILL)" in result.stderr and "done 8/8" in result.stderr
    assert sorted(line["key"] for line in read_lines(out)) == sorted(files)


def test_tokenize_shards_bad_rows_and_bad_shards(bundle, tmp_path):
    good = flac_bytes(signal_of(1), 16000)
    shards = tmp_path / "shards"
    hf_audio_parquet(shards / "a.parquet", {"id": ["a0", "a1", "a2"], "audio": [{"bytes": good, "path": None}, {"bytes": b"junk" * 50, "path": None}, None]})
    result = run_cli("tokenize-shards", "--input-dir", shards, "--output-dir", tmp_path / "out", "--tokenizer", f"bundle:{bundle}", "--num-proc", 1)
    assert result.returncode == 1
    assert_no_traceback(result.stderr)
    assert "WARNING audiotok: a.parquet:a1: cannot decode audio" in result.stderr
    assert "WARNING audiotok: a.parquet:a2: row 2 of a.parquet has no audio (null 'audio')" in result.stderr
    assert "done 1/3" in result.stderr
    (shards / "b.parquet").write_bytes(b"not parquet")
    refused = run_cli("tokenize-shards", "--input-dir", shards, "--output-dir", tmp_path / "out2", "--tokenizer", f"bundle:{bundle}", "--num-proc", 1)
    assert refused.returncode == 1 and not (tmp_path / "out2").exists()
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: {shards / 'b.parquet'} is not a readable Parquet file")


def test_a_parquet_shard_keeps_samples_equal_to_its_source(corpus):
    """The bytes in the shard are the source file's bytes: nothing re-encoded on the way."""
    files, shard = corpus
    table = pq.read_table(shard, columns=["id", "audio"]).to_pylist()
    for row in table:
        assert row["audio"]["bytes"] == files[row["id"]].read_bytes()
        assert sf.info(files[row["id"]]).frames == len(decode(row["audio"]["bytes"]).samples)
