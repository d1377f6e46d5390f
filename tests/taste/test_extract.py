"""taste-extract: features equal a direct transformers computation, JSONL and Kaldi inputs agree,
subsets are chosen by key, resume (after a memory stop, SIGTERM or kill -9) ends with the same
store as an uninterrupted run, bad inputs are counted skips or one-line errors."""

import json
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_no_traceback, gated_item, make_data_dir, run_cli, start_cli, wait_for

LAYER = 1


def contents(directory) -> dict:
    """key -> (text, text_ids, text_emb, whisper) of a feature store."""
    from audiotok.io.feature_store import FeatureStore

    return {f.key: (f.text, f.text_ids, f.text_emb, f.whisper) for f in FeatureStore(directory)}


def assert_same_contents(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key][0] == b[key][0], key
        for x, y in zip(a[key][1:], b[key][1:], strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), key


def model_args(whisper_dir, text_dir):
    return ["--whisper", whisper_dir, "--text-model", text_dir, "--layer", LAYER]


@pytest.fixture(scope="module")
def extractor(tiny_whisper_dir, tiny_text_model_dir):
    """In-process twin of the CLI's settings: reruns through the API save a process start each."""
    from audiotok.taste.extract import TasteExtractor

    return TasteExtractor(str(tiny_whisper_dir), layer=LAYER, text_model=str(tiny_text_model_dir), device="cpu")


def api_run(extractor, manifest, out, **options):
    from audiotok.taste.extract import extract_corpus, open_corpus

    return extract_corpus(extractor, open_corpus(str(manifest)), out, **options)


@pytest.fixture(scope="module")
def full_store(tmp_path_factory, tiny_whisper_dir, tiny_text_model_dir, tiny_corpus) -> Path:
    """The reference: every item of the tiny corpus, through the CLI from the JSONL manifest."""
    out = tmp_path_factory.mktemp("taste") / "full"
    result = run_cli("taste-extract", tiny_corpus.manifest, "-o", out, *model_args(tiny_whisper_dir, tiny_text_model_dir))
    assert result.returncode == 0, result.stderr
    assert "done 6/6" in result.stderr
    return out


def direct_features(whisper_dir, text_dir, wav_path, text, layer):
    """What the features should be, computed with plain transformers calls."""
    import soundfile as sf
    import torch
    from transformers import AutoModel, AutoTokenizer, WhisperFeatureExtractor, WhisperModel

    from audiotok.dsp.resample import resample

    wave, rate = sf.read(wav_path, dtype="float32")
    if rate != 16000:
        wave = resample(wave, rate, 16000)
    mel = WhisperFeatureExtractor.from_pretrained(whisper_dir)(wave, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        hidden = WhisperModel.from_pretrained(whisper_dir).encoder.eval()(mel, output_hidden_states=True).hidden_states[layer][0].numpy()
    ids = AutoTokenizer.from_pretrained(text_dir)(text, add_special_tokens=False)["input_ids"]
    table = AutoModel.from_pretrained(text_dir).get_input_embeddings().weight.detach().numpy()
    return np.array(ids), table[ids], hidden[: (len(wave) // 160 - 1) // 2 + 1]


def test_features_equal_a_direct_computation(full_store, tiny_whisper_dir, tiny_text_model_dir, tiny_corpus):
    from audiotok.io.feature_store import FeatureStore

    store = FeatureStore(full_store)
    assert store.keys() == tiny_corpus.keys
    assert store.meta["layer"] == LAYER and store.meta["whisper_dim"] == 32 and store.meta["text_dim"] == 24
    assert store.meta["frame_rate"] == 50 and store.meta["store_dtype"] == "float32" and store.meta["add_special_tokens"] is False
    for key in tiny_corpus.keys:
        ids, embeddings, frames = direct_features(tiny_whisper_dir, tiny_text_model_dir, tiny_corpus.root / "wav" / f"{key}.wav", tiny_corpus.texts[key], LAYER)
        got = store[key]
        assert got.text == tiny_corpus.texts[key]
        assert got.text_ids.dtype == np.int64 and np.array_equal(got.text_ids, ids)
        assert got.text_emb.dtype == np.float32 and np.array_equal(got.text_emb, embeddings)
        assert got.whisper.shape == frames.shape and got.whisper.dtype == np.float32
        np.testing.assert_allclose(got.whisper, frames, atol=1e-4)


def test_kaldi_data_dir_gives_the_same_store(full_store, tmp_path, extractor, tiny_corpus):
    out = tmp_path / "kaldi"
    assert api_run(extractor, tiny_corpus.data_dir, out).written == 6
    assert json.loads((out / "meta.json").read_text()) == json.loads((full_store / "meta.json").read_text())
    assert_same_contents(contents(out), contents(full_store))


def test_a_key_missing_from_the_kaldi_text_is_a_counted_skip(tmp_path, extractor, tiny_corpus, caplog):
    from audiotok.errors import AudiotokError
    from audiotok.io.feature_store import FeatureStore

    data = tmp_path / "data"
    shutil.copytree(tiny_corpus.data_dir, data)
    (data / "text").write_text("".join(line + "\n" for line in (tiny_corpus.data_dir / "text").read_text().splitlines() if not line.startswith("utt3 ")))
    with caplog.at_level("WARNING", logger="audiotok"), pytest.raises(AudiotokError, match="only 5 of 6 items succeeded"):
        api_run(extractor, data, tmp_path / "out")
    assert "utt3: no text" in caplog.text
    assert FeatureStore(tmp_path / "out").keys() == ["utt1", "utt2", "utt4", "utt5", "utt6"]


def test_default_text_model_is_the_whisper_directory_and_last_layer(tiny_whisper_dir, tiny_corpus):
    from audiotok.io.audio_table import open_audio_source
    from audiotok.taste.extract import TasteExtractor

    extractor = TasteExtractor(str(tiny_whisper_dir), device="cpu")
    assert extractor.meta["layer"] == 2 and extractor.meta["text_model"] == extractor.meta["whisper_model"]
    assert extractor.meta["text_dim"] == 32 and extractor.meta["text_digest"] == extractor.meta["whisper_digest"]
    source, _ = open_audio_source(str(tiny_corpus.manifest))
    items = [i for i in source if i.key in ("utt1", "utt4")]
    results = dict(extractor.extract([(i, i.metadata["text"]) for i in items]))
    ids, embeddings, frames = direct_features(tiny_whisper_dir, tiny_whisper_dir, items[1].origin, "hello world", 2)
    assert np.array_equal(results["utt4"].text_ids, ids) and np.array_equal(results["utt4"].text_emb, embeddings)
    np.testing.assert_allclose(results["utt4"].whisper, frames, atol=1e-4)
    with_specials = TasteExtractor(str(tiny_whisper_dir), device="cpu", add_special_tokens=True)
    assert with_specials.meta["add_special_tokens"] is True
    assert with_specials.text.ids("hello world").tolist() == [2, *ids.tolist(), 3]  # <s> hello world </s>


def test_from_meta_rebuilds_the_extractor_and_checks_digests(full_store, tiny_whisper_dir):
    from audiotok.errors import AudiotokError
    from audiotok.io.feature_store import FeatureStore
    from audiotok.taste.extract import TasteExtractor

    meta = FeatureStore(full_store).meta
    extractor = TasteExtractor.from_meta(meta, device="cpu")
    assert {k: meta[k] for k in extractor.meta} == extractor.meta
    with pytest.raises(AudiotokError, match=r"has other weights \(\w+\) than the features were made with \(\w+\)") as refused:
        TasteExtractor.from_meta(meta, device="cpu", text_model=str(tiny_whisper_dir))  # a "moved copy" that is another model
    assert refused.value.hint == "give --text-model the model that made them"


def test_subset_is_chosen_by_key_and_a_larger_ratio_adds_the_rest(full_store, tmp_path, extractor, tiny_whisper_dir, tiny_text_model_dir, tiny_corpus):
    from audiotok.units.kmeans import keep_utterance

    out = tmp_path / "subset"
    args = ["taste-extract", tiny_corpus.manifest, "-o", out, *model_args(tiny_whisper_dir, tiny_text_model_dir), "--seed", 3]
    result = run_cli(*args, "--subset-ratio", 0.5)
    assert result.returncode == 0, result.stderr
    expected = [k for k in tiny_corpus.keys if keep_utterance(k, 3, 50)]
    assert 0 < len(expected) < 6
    full = contents(full_store)
    assert_same_contents(contents(out), {k: full[k] for k in expected})
    assert api_run(extractor, tiny_corpus.manifest, out, seed=3).written == 6 - len(expected)  # ratio 1: only the other keys
    assert_same_contents(contents(out), full)


def test_subset_does_not_depend_on_input_order(tmp_path, tiny_whisper_dir, tiny_corpus):
    from audiotok.io.feature_store import FeatureStore
    from audiotok.taste.extract import TasteExtractor, extract_corpus, open_corpus

    reversed_manifest = tmp_path / "reversed.jsonl"
    reversed_manifest.write_text("".join(reversed(tiny_corpus.manifest.read_text().splitlines(keepends=True))))
    extractor = TasteExtractor(str(tiny_whisper_dir), device="cpu")
    for name, manifest in (("forward", tiny_corpus.manifest), ("backward", reversed_manifest)):
        extract_corpus(extractor, open_corpus(str(manifest)), tmp_path / name, subset_ratio=0.5, seed=11)
    forward, backward = FeatureStore(tmp_path / "forward"), FeatureStore(tmp_path / "backward")
    assert sorted(forward.keys()) == sorted(backward.keys()) and 0 < len(forward) < 6


def test_memory_guard_saves_and_stops_and_a_rerun_completes(full_store, tmp_path, extractor, tiny_whisper_dir, tiny_text_model_dir, tiny_corpus):
    from audiotok.io.feature_store import FeatureStore

    out = tmp_path / "guarded"
    args = ["taste-extract", tiny_corpus.manifest, "-o", out, *model_args(tiny_whisper_dir, tiny_text_model_dir)]
    result = run_cli(*args, "--memory-limit", 0.001, "--memory-check-every", 2)
    assert result.returncode == 1
    assert_no_traceback(result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"error: memory use \d+% is above --memory-limit 0\.1% after 2 items; the 2 finished items are saved in {re.escape(str(out))} "
        r"\(hint: run the same command again to continue, or lower --batch-seconds / --subset-ratio\)",
        last,
    ), last
    saved = FeatureStore(out)
    assert saved.keys() == ["utt1", "utt2"] and saved["utt2"].whisper.shape[1] == 32
    assert api_run(extractor, tiny_corpus.manifest, out).written == 4
    assert_same_contents(contents(out), contents(full_store))


def test_memory_guard_frees_caches_first_and_goes_on_when_that_is_enough(tmp_path, extractor, tiny_corpus, monkeypatch):
    from audiotok.engine import memory
    from audiotok.errors import AudiotokError

    freed = []
    monkeypatch.setattr(memory, "free_caches", lambda: freed.append(True))
    readings = iter([0.95, 0.5, 0.95, 0.5, 0.95, 0.5])  # above, then below after freeing: three times
    writer = api_run(extractor, tiny_corpus.manifest, tmp_path / "ok", memory_check_every=2, memory_share=lambda: next(readings))
    assert writer.written == 6 and len(freed) == 3
    readings = iter([0.5, 0.95, 0.97])  # fine at 2 items; at 4, still above after freeing
    with pytest.raises(AudiotokError) as stopped:
        api_run(extractor, tiny_corpus.manifest, tmp_path / "stop", memory_check_every=2, memory_share=lambda: next(readings))
    assert stopped.value.message == f"memory use 97% is above --memory-limit 90% after 4 items; the 4 finished items are saved in {tmp_path / 'stop'}"


def test_sigterm_then_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, extractor, tiny_whisper_dir, tiny_text_model_dir, tiny_corpus):
    # 40 keys over the six recordings, as a data dir; k10 waits for the file `first`, k25 for `second`:
    # each signal certainly lands mid-run, at a known item.
    records = [json.loads(line) for line in tiny_corpus.manifest.read_text().splitlines()]
    first, second = tmp_path / "first", tmp_path / "second"
    gates = {10: first, 25: second}
    wav_scp = {f"k{i:02d}": gated_item(records[i % 6]["audio_path"], gates[i]) if i in gates else records[i % 6]["audio_path"] for i in range(40)}
    data = make_data_dir(tmp_path / "data", wav_scp, text={f"k{i:02d}": records[i % 6]["text"] for i in range(40)})
    out = tmp_path / "killed"
    command = ["taste-extract", data, "-o", out, *model_args(tiny_whisper_dir, tiny_text_model_dir), "--shard-items", 2]

    def indexed() -> int:
        index = out / "index.jsonl"
        return index.read_text().count("\n") if index.is_file() else 0

    terminated = start_cli(*command, env={"OMP_NUM_THREADS": "1"})
    wait_for(lambda: indexed() == 10, "k00-k09 in the store, k10 waiting", terminated)
    terminated.send_signal(signal.SIGTERM)
    _, stderr = terminated.communicate(timeout=120)
    stderr = stderr.decode()
    assert terminated.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "error: terminated"
    assert_no_traceback(stderr)
    assert indexed() == 10
    first.touch()
    killed = start_cli(*command, env={"OMP_NUM_THREADS": "1"})
    wait_for(lambda: indexed() == 24, "k00-k23 in the store, k25 waiting", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed.stderr.close()
    assert indexed() == 24
    second.touch()
    assert api_run(extractor, data, out, shard_items=2).written == 16
    reference = tmp_path / "reference"
    api_run(extractor, data, reference)
    assert_same_contents(contents(out), contents(reference))
    assert not list(out.glob("*.tmp*"))


def test_bad_items_are_counted_skips(tmp_path, tiny_whisper_dir, tiny_corpus):
    from audiotok.io.feature_store import FeatureStore

    good = json.loads(tiny_corpus.manifest.read_text().splitlines()[0])
    (tmp_path / "noise.wav").write_text("not audio")
    lines = [
        good,
        {"key": "missing", "audio_path": str(tmp_path / "gone.wav"), "text": "the cat"},
        {"key": "empty", "audio_path": good["audio_path"], "text": "  "},
        {"key": "notext", "audio_path": good["audio_path"]},
        {"key": "broken", "audio_path": str(tmp_path / "noise.wav"), "text": "the cat"},
        {"key": "a/b", "audio_path": good["audio_path"], "text": "the cat"},
    ]
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    result = run_cli("taste-extract", manifest, "-o", out, "--whisper", tiny_whisper_dir)
    assert result.returncode == 1
    assert_no_traceback(result.stderr)
    for key in ("missing", "empty", "notext", "broken", "a/b"):
        assert re.search(rf"WARNING audiotok: {key}: ", result.stderr), key
    assert "WARNING audiotok: empty: empty text" in result.stderr and "WARNING audiotok: notext: no text" in result.stderr
    assert "WARNING audiotok: missing: no such file" in result.stderr and "done 1/6" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: only 1 of 6 items succeeded, below --min-success 0.95")
    assert FeatureStore(out).keys() == ["utt1"]


def test_data_dir_empty_or_missing_transcripts_are_counted_skips(tmp_path, tiny_whisper_dir, tiny_corpus):
    from audiotok.io.feature_store import FeatureStore

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tiny_corpus.data_dir / "wav.scp", data / "wav.scp")
    keys = tiny_corpus.keys
    # keys[0]: a line with no transcript (Kaldi's empty text); keys[1]: no line at all.
    lines = [keys[0]] + [f"{key} {tiny_corpus.texts[key]}" for key in keys[2:]]
    (data / "text").write_text("\n".join(lines) + "\n")
    result = run_cli("taste-extract", data, "-o", tmp_path / "out", "--whisper", tiny_whisper_dir, "--min-success", "0.5")
    assert result.returncode == 0, result.stderr
    assert f"WARNING audiotok: {keys[0]}: empty text" in result.stderr
    assert f"WARNING audiotok: {keys[1]}: no text" in result.stderr
    assert f"done {len(keys) - 2}/{len(keys)}" in result.stderr
    assert FeatureStore(tmp_path / "out").keys() == keys[2:]


def test_data_dir_without_text_is_a_one_line_error(tmp_path, tiny_corpus):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tiny_corpus.data_dir / "wav.scp", data / "wav.scp")
    result = run_cli("taste-extract", data, "-o", tmp_path / "out", "--whisper", "unused")
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1] == f"error: {data} has no text file (hint: taste-extract needs transcripts: "
        'add DIR/text with `key transcript` lines, or give a JSONL manifest with a "text" field)'
    )
    assert not (tmp_path / "out").exists()


def test_other_settings_are_refused_and_force_starts_over_in_float16(full_store, tmp_path, extractor, tiny_corpus):
    from audiotok.errors import AudiotokError
    from audiotok.taste.extract import prepare_output

    out = tmp_path / "copy"
    shutil.copytree(full_store, out)
    with pytest.raises(AudiotokError) as refused:
        api_run(extractor, tiny_corpus.manifest, out, store_dtype="float16")
    assert refused.value.one_line() == (
        f"error: {out} holds features made with other settings (store_dtype differ) (hint: "
        "use the same options to resume, --force to start over, or another output directory)"
    )
    prepare_output(out, force=True)  # what --force does before the models load
    assert not out.exists()
    assert api_run(extractor, tiny_corpus.manifest, out, store_dtype="float16").written == 6
    half, full = contents(out), contents(full_store)
    assert sorted(half) == sorted(full)
    for key, (_text, ids, embeddings, frames) in half.items():
        assert embeddings.dtype == np.float16 and frames.dtype == np.float16 and ids.dtype == np.int64
        assert np.array_equal(embeddings, full[key][2].astype(np.float16)) and np.array_equal(frames, full[key][3].astype(np.float16))


def test_a_directory_that_is_not_a_store_is_never_removed(tmp_path, tiny_corpus):
    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    result = run_cli("taste-extract", tiny_corpus.manifest, "-o", keep, "--whisper", "unused", "--force")
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1] == f"error: {keep} is a non-empty directory but not a TASTE feature store (hint: give a new or empty directory)"
    )
    assert (keep / "notes.txt").read_text() == "mine"


def test_real_whisper_tiny_en_on_the_english_transcripts(whisper_dir, speech_dir, tmp_path):
    import csv

    import soundfile as sf

    from audiotok.io.feature_store import FeatureStore
    from audiotok.taste.extract import TasteExtractor, extract_corpus, open_corpus

    rows = [r for r in csv.DictReader(open(speech_dir / "MANIFEST.tsv", encoding="utf-8"), delimiter="\t") if r["transcript"] and r["language"] == "en"]
    assert len(rows) == 15
    manifest = tmp_path / "en.jsonl"
    manifest.write_text("".join(json.dumps({"audio_path": str(speech_dir / r["file"]), "text": r["transcript"]}) + "\n" for r in rows))
    extractor = TasteExtractor(str(whisper_dir), device="cpu")
    assert extractor.meta["layer"] == 4 and extractor.meta["whisper_dim"] == 384 and extractor.meta["text_dim"] == 384
    extract_corpus(extractor, open_corpus(str(manifest)), tmp_path / "store")
    store = FeatureStore(tmp_path / "store")
    assert len(store) == 15
    tokenizer = extractor.text.tokenizer
    for row in rows:
        item = store[Path(row["file"]).stem]
        assert tokenizer.decode(item.text_ids) == row["transcript"]
        assert item.text_emb.shape == (len(item.text_ids), 384)
        assert item.whisper.shape[1] == 384
        if row["sample_rate"] == "16000":
            samples = sf.info(speech_dir / row["file"]).frames
            assert item.whisper.shape[0] == (samples // 160 - 1) // 2 + 1


def test_a_finished_store_reruns_without_loading_the_models(full_store, tiny_whisper_dir, tiny_text_model_dir, tiny_corpus):
    before = contents(full_store)
    rerun = run_cli("taste-extract", tiny_corpus.manifest, "-o", full_store, *model_args(tiny_whisper_dir, tiny_text_model_dir))
    assert rerun.returncode == 0, rerun.stderr
    assert "already holds all 6 kept items: nothing to do" in rerun.stderr and "done 6/6 (6 already done)" in rerun.stderr
    assert "encoder layer" not in rerun.stderr  # the models were never loaded
    assert_same_contents(contents(full_store), before)
    # Other settings are not "finished": the full run starts and the store refuses to mix them.
    other = run_cli("taste-extract", tiny_corpus.manifest, "-o", full_store, *model_args(tiny_whisper_dir, tiny_text_model_dir), "--store-dtype", "float16")
    assert other.returncode == 1 and "holds features made with other settings (store_dtype differ)" in other.stderr
