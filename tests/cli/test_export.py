"""export: every unit table kind to Parquet and to the flat token file, read back equal; the vocabulary,
dtype, offsets and specials; Hugging Face datasets loads the Parquet; bad inputs are one line."""

import json

import kaldiio
import numpy as np
import pyarrow.parquet as pq
import pytest

from audiotok.io.parquet_tokens import read_provenance
from audiotok.io.token_file import TokenFile
from audiotok.units.bundle import Bundle
from audiotok.units.export import ExportOptions, run_export

TABLE = {"utt1": [3, 3, 499, 0], "utt2": [7], "utt3": [], "utt4": [12, 400, 2]}


def write_table(path, table):
    path.write_text("".join(" ".join([key, *map(str, values)]) + "\n" for key, values in table.items()))
    return str(path)


def parquet_rows(directory):
    table = pq.read_table(sorted(directory.glob("*.parquet")))
    return table.to_pylist()


def export(inputs, target, out, force=False, **options):
    run_export("export", inputs, target, str(out), ExportOptions(**options), force)


def test_text_table_to_parquet_loads_in_datasets_with_provenance(tmp_path, cli):
    datasets = pytest.importorskip("datasets")
    units = write_table(tmp_path / "units.txt", TABLE)
    result = cli("export", units, "--vocab-size", "500", "--frame-rate", "50", "--rows-per-shard", "3", "-o", tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    assert "exported 4 rows, 8 tokens in 2 shard(s)" in result.stderr
    names = sorted(p.name for p in (tmp_path / "hf").glob("*.parquet"))
    assert names == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "hf"))["train"]
    assert loaded["key"] == list(TABLE) and loaded["tokens"] == list(TABLE.values())
    assert str(loaded.features["tokens"].feature.dtype) == "uint16"  # K=500 fits 16 bits
    assert loaded["num_frames"] == [4, 1, 0, 3]
    assert loaded["duration"] == pytest.approx([0.08, 0.02, 0.0, 0.06])
    provenance = read_provenance(tmp_path / "hf" / names[0])
    assert provenance["vocab_size"] == 500 and provenance["inputs"] == [units] and provenance["dtype"] == "uint16"
    again = cli("export", units, "--vocab-size", "500", "--frame-rate", "50", "--rows-per-shard", "3", "-o", tmp_path / "hf")
    assert again.returncode == 0 and "already done" in again.stderr


@pytest.mark.parametrize("target", ["parquet", "tokens"])
def test_every_table_kind_round_trips(tmp_path, target):
    """text ints, <audio_N> strings, dedup JSONL, tokenize-shards JSONL, TASTE codes, npy:DIR."""
    kinds = {}
    kinds["text"] = (write_table(tmp_path / "u.txt", TABLE), TABLE, {})
    strings = tmp_path / "s.txt"
    strings.write_text("".join(f"{k} {''.join(f'<audio_{v}>' for v in vs)}\n" for k, vs in TABLE.items() if vs))
    kinds["strings"] = (str(strings), {k: v for k, v in TABLE.items() if v}, {})
    dedup = tmp_path / "d.jsonl"
    dedup.write_text('{"key": "a", "tokens": [5, 9, 5], "durations": [2, 1, 4]}\n{"key": "b", "tokens": [], "durations": []}\n')
    kinds["dedup"] = (str(dedup), {"a": [5, 9, 5], "b": []}, {"a": {"durations": [2, 1, 4], "num_frames": 7}})
    shards = tmp_path / "tokens_0.jsonl"
    shards.write_text(
        '{"key":"s1","shard":"000.tar","language":"en","text":"hi there","tokens":[1,2]}\n'
        '{"key":"s2","shard":"001.tar","language":null,"text":null,"tokens":[3]}\n'
    )
    kinds["shards"] = (str(shards), {"s1": [1, 2], "s2": [3]}, {"s1": {"text": "hi there", "language": "en", "shard": "000.tar"}, "s2": {"text": None}})
    taste = tmp_path / "taste.jsonl"
    taste.write_text(
        json.dumps({"key": "t1", "text": "a b", "text_ids": [10, 11], "tokens": ["a", " b"], "codes": [[1, 2, 3], [4, 5, 6]]})
        + "\n"
        + json.dumps({"key": "t2", "text": "c", "text_ids": [12], "tokens": ["c"], "codes": [[7, 8, 9]]})
        + "\n"
    )
    kinds["taste"] = (str(taste), {"t1": [[1, 2, 3], [4, 5, 6]], "t2": [[7, 8, 9]]}, {"t1": {"text": "a b", "text_ids": [10, 11]}})
    npy = tmp_path / "npy"
    npy.mkdir()
    np.save(npy / "n1.npy", np.array([4, 4, 1], dtype=np.int32))
    np.save(npy / "n2.npy", np.array([2], dtype=np.int32))
    kinds["npy"] = (f"npy:{npy}", {"n1": [4, 4, 1], "n2": [2]}, {})

    for name, (spec, expected, extra) in kinds.items():
        out = tmp_path / f"{name}-{target}"
        export([spec], target, out)
        if target == "tokens":
            tokens = TokenFile(out)
            assert {key: value.tolist() for key, value in tokens.items()} == expected, name
            continue
        rows = {row["key"]: row for row in parquet_rows(out)}
        field = "codes" if name == "taste" else "tokens"
        assert {key: row[field] for key, row in rows.items()} == expected, name
        for key, columns in extra.items():
            assert {column: rows[key][column] for column in columns} == columns, name


def test_token_file_layout_offsets_and_specials(tmp_path):
    first = write_table(tmp_path / "vq02.txt", {"a": [0, 1023], "b": [5]})
    second = write_table(tmp_path / "vq06.txt", {"c": [0, 4095, 7]})
    export([first, second], "tokens", tmp_path / "lm", vocab_size=4096, offsets="0,4096", bos=8192, eos=8193, sep=8194)
    tokens = TokenFile(tmp_path / "lm")
    assert tokens.header["dtype"] == "uint16" and tokens.header["rows"] == 3 and tokens.header["offsets"] == [0, 4096]
    assert tokens.data.tolist() == [8192, 0, 1023, 8193, 8194, 8192, 5, 8193, 8194, 8192, 4096, 8191, 4103, 8193]
    assert tokens["c"].tolist() == [4096, 8191, 4103] and tokens[1].tolist() == [5]
    assert (tmp_path / "lm" / "tokens.bin").stat().st_size == 14 * 2  # uint16, little-endian, no header
    assert np.fromfile(tmp_path / "lm" / "index.bin", dtype="<i8").reshape(-1, 2).tolist() == [[1, 2], [6, 1], [10, 3]]
    assert (tmp_path / "lm" / "keys.txt").read_text() == "a\nb\nc\n"


def test_quantize_records_its_bundle_and_export_reads_vocabulary_and_rate(tmp_path, cli):
    rng = np.random.default_rng(0)
    bundle = Bundle(rng.normal(size=(300, 4)).astype(np.float32), recipe={"backend": "mfcc", "frame_rate": 100.0, "dim": 4})
    bundle.save(tmp_path / "km")
    with kaldiio.WriteHelper(f"ark:{tmp_path / 'feats.ark'}") as writer:
        for key, frames in (("u1", 5), ("u2", 3)):
            writer(key, rng.normal(size=(frames, 4)).astype(np.float32))
    quantized = cli("quantize", tmp_path / "km", f"ark:{tmp_path / 'feats.ark'}", "-o", tmp_path / "units.txt")
    assert quantized.returncode == 0, quantized.stderr
    recipe = json.loads((tmp_path / "units.txt.recipe.json").read_text())
    assert recipe["codebook_size"] == 300 and recipe["frame_rate"] == 100.0 and recipe["tokenizer"] == "kmeans"
    export([str(tmp_path / "units.txt")], "parquet", tmp_path / "hf")
    schema = pq.read_schema(next((tmp_path / "hf").glob("*.parquet")))
    assert str(schema.field("tokens").type.value_type) == "uint16"
    rows = parquet_rows(tmp_path / "hf")
    assert [row["duration"] for row in rows] == pytest.approx([0.05, 0.03])
    units = dict(line.split(maxsplit=1) for line in (tmp_path / "units.txt").read_text().splitlines())
    assert [" ".join(map(str, row["tokens"])) for row in rows] == [units["u1"], units["u2"]]


def test_data_dir_fills_text_and_speaker(tmp_path):
    units = write_table(tmp_path / "u.txt", {"a": [1], "b": [2]})
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("a HELLO WORLD\nb\n")
    (data / "utt2spk").write_text("a spk1\nb spk2\n")
    export([units], "parquet", tmp_path / "hf", data_dir=str(data))
    rows = parquet_rows(tmp_path / "hf")
    assert [(r["text"], r["speaker"]) for r in rows] == [("HELLO WORLD", "spk1"), ("", "spk2")]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["U", "--vocab-size", "100"], None, 1, "U: row 'utt1' holds token 499, outside the vocabulary 0..99 (hint: give the right --vocab-size)"),
        (["U", "U"], None, 1, "key 'utt1' is in U and again in U"),
        (["-"], b"a 1 2\n", 2, "the vocabulary of stdin cannot be read in a first pass"),
        (["U", "--to", "tokens", "--eos", "7"], None, 2, "special id 7 is also a token id (tokens use 0..499)"),
        (["U", "--eos", "900"], None, 2, "--bos, --eos and --sep belong to --to tokens"),
        (["U", "--offsets", "0,5"], None, 2, "--offsets has 2 values for 1 streams"),
        (["U", "--shard-size", "lots"], None, 2, "--shard-size 'lots': expected a positive size"),
        (["BAD"], None, 1, "BAD:2: 'x7' is not an integer"),
    ],
)
def test_bad_inputs_are_one_line(tmp_path, cli, args, stdin, code, message):
    units = write_table(tmp_path / "u.txt", TABLE)
    (tmp_path / "bad.txt").write_text("a 1\nb x7\n")
    args = [{"U": units, "BAD": str(tmp_path / "bad.txt")}.get(a, a) for a in args]
    message = message.replace("U:", f"{units}:").replace("in U and again in U", f"in {units} and again in {units}").replace("BAD", str(tmp_path / "bad.txt"))
    result = cli("export", *args, "-o", tmp_path / "out", input=stdin)
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.tmp.*"))


def test_an_existing_directory_of_other_files_is_not_replaced(tmp_path, cli):
    units = write_table(tmp_path / "u.txt", TABLE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    refused = cli("export", units, "-o", tmp_path / "out")
    assert refused.returncode == 1 and "holds files that are not an export" in refused.stderr
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    forced = cli("export", units, "--force", "-o", tmp_path / "out")
    assert forced.returncode == 0 and not (tmp_path / "out" / "notes.txt").exists()


def test_a_killed_exports_build_directory_is_removed_by_the_next_run(tmp_path):
    units = write_table(tmp_path / "u.txt", TABLE)
    stale = tmp_path / "out.tmp.999999"  # what kill -9 in the middle of an export leaves
    stale.mkdir()
    (stale / "part-00000.parquet").write_bytes(b"half")
    export([units], "parquet", tmp_path / "out")
    assert not stale.exists() and [row["key"] for row in parquet_rows(tmp_path / "out")] == list(TABLE)


def test_tokens_into_a_lhotse_cuts_manifest(tmp_path, cli):
    from lhotse import CutSet, Recording, RecordingSet, load_manifest

    from tests.conftest import sine, write_audio

    recordings = RecordingSet.from_recordings(
        Recording.from_file(write_audio(tmp_path / f"{name}.wav", sine(220, 16000, 1.0), 16000), recording_id=name) for name in ("r1", "r2", "r3")
    )
    CutSet.from_manifests(recordings=recordings).to_file(tmp_path / "cuts.jsonl.gz")
    cut_ids = [cut.id for cut in load_manifest(tmp_path / "cuts.jsonl.gz")]
    units = write_table(tmp_path / "u.txt", {cut_ids[0]: [1, 2, 3, 4], cut_ids[1]: [499, 0], "stranger": [5]})
    out = tmp_path / "cuts_tokens.jsonl.gz"
    result = cli("export", units, "--vocab-size", "500", "--to", "lhotse", "--cuts", tmp_path / "cuts.jsonl.gz", "-o", out)
    assert result.returncode == 0, result.stderr
    assert f"1 cuts have no tokens: {cut_ids[2]}" in result.stderr and "1 keys match no cut: stranger" in result.stderr
    cuts = {cut.id: cut for cut in load_manifest(out)}
    assert cuts[cut_ids[0]].load_audio_tokens().tolist() == [1, 2, 3, 4]
    assert cuts[cut_ids[1]].load_audio_tokens().dtype == np.uint16 and cuts[cut_ids[1]].load_audio_tokens().tolist() == [499, 0]
    assert not cuts[cut_ids[2]].has_custom("audio_tokens")
    refused = cli("export", units, "--to", "lhotse", "-o", out)
    assert refused.returncode == 2 and "--to lhotse needs --cuts MANIFEST" in refused.stderr
