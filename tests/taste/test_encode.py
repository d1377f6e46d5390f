"""taste-encode: audio + transcript -> one group of RVQ codes per text token; the audio path and the
feature-store path give the same codes; models without RVQ and mismatched stores are refused in one line."""

import json
import re

import numpy as np
import pytest

from audiotok.io.feature_store import FeatureStore
from tests.conftest import assert_no_traceback
from tests.taste.test_train import make_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_whisper_dir, tiny_corpus):
    """Features of the tiny corpus (taste-extract's library call), random 25 Hz units, a tiny model trained 4 steps."""
    from audiotok.taste import config as taste_config
    from audiotok.taste.extract import TasteExtractor, extract_corpus, open_corpus
    from audiotok.taste.train import train

    root = tmp_path_factory.mktemp("taste-encode")
    store = root / "store"
    extract_corpus(TasteExtractor(str(tiny_whisper_dir), device="cpu"), open_corpus(str(tiny_corpus.manifest)), store)
    rng = np.random.default_rng(0)
    rows = FeatureStore(store)
    units = root / "units.txt"
    units.write_text("".join(f"{key} {' '.join(map(str, rng.integers(0, 64, rows.row(key)['frames'] // 2)))}\n" for key in rows.keys()))
    config = taste_config.resolve(
        {"preset": "tiny", "data": {"train": {"features": str(store), "units": str(units)}, "examples": 0}, "optim": {"max_steps": 4}}
    )
    train(config, root / "exp", device="cpu")
    return {"root": root, "store": store, "units": units, "exp": root / "exp"}


def records(path) -> dict:
    return {r["key"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_audio_and_feature_store_paths_give_the_same_codes(cli, trained, tiny_corpus, tmp_path):
    # One utterance loses its transcript: it is counted and named, the others are encoded.
    lines = tiny_corpus.manifest.read_text().splitlines()
    broken = json.loads(lines[0])
    broken["text"] = ""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([json.dumps(broken), *lines[1:]]) + "\n")
    from_audio = cli("taste-encode", manifest, "--model", trained["exp"], "-o", tmp_path / "audio.jsonl", "--device", "cpu", "--min-success", "0.5")
    assert from_audio.returncode == 0, from_audio.stderr
    assert re.search(rf"{broken['key']}: (empty|no) text", from_audio.stderr) and "done 5/6" in from_audio.stderr
    from_store = cli("taste-encode", "--features", trained["store"], "--model", trained["exp"], "--device", "cpu")
    assert from_store.returncode == 0, from_store.stderr
    audio, stored = records(tmp_path / "audio.jsonl"), {r["key"]: r for r in map(json.loads, from_store.text.splitlines())}
    assert sorted(stored) == tiny_corpus.keys and sorted(audio) == tiny_corpus.keys[1:] == sorted(k for k in stored if k != broken["key"])
    assert audio == {k: v for k, v in stored.items() if k in audio}  # key, text, ids, token strings and codes
    store = FeatureStore(trained["store"])
    for key, r in stored.items():
        assert list(r) == ["key", "text", "text_ids", "tokens", "codes"]
        assert r["text"] == tiny_corpus.texts[key] and r["tokens"] == tiny_corpus.texts[key].split()
        assert r["text_ids"] == store[key].text_ids.tolist()
        codes = np.array(r["codes"])
        assert codes.shape == (len(r["text_ids"]), 2) and codes.min() >= 0 and codes.max() < 16


def test_refusals_are_one_line(cli, trained, tiny_corpus, tmp_path):
    from audiotok.taste import config as taste_config
    from audiotok.taste.train import train

    plain = taste_config.resolve(
        {
            "preset": "tiny",
            "rvq": {"enabled": False},
            "data": {"train": {"features": str(trained["store"]), "units": str(trained["units"])}},
            "optim": {"max_steps": 1},
        }
    )
    plain["data"]["examples"] = 0
    train(plain, tmp_path / "plain", device="cpu")
    other_store, _ = make_store(tmp_path, count=2)
    cases = [
        (("taste-encode", "--features", trained["store"], "--model", tmp_path / "plain"), 1, "trained without RVQ"),
        (("taste-encode", tiny_corpus.manifest, "--features", trained["store"], "--model", trained["exp"]), 2, "one of the two"),
        (("taste-encode", "--model", trained["exp"]), 2, "one of the two"),
        (("taste-encode", "--features", other_store, "--model", trained["exp"]), 1, "made otherwise than the model's"),
        (("taste-encode", "--features", trained["store"], "--model", tmp_path), 1, "is not a TASTE model directory"),
    ]
    for args, code, message in cases:
        result = cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert_no_traceback(result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and message in last, result.stderr
