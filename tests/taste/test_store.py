"""The TASTE feature store: read by key, resume after a kill, refuse mixed settings."""

import json

import numpy as np
import pytest

from audiotok.errors import AudiotokError
from audiotok.io.feature_store import FeatureStore, FeatureStoreWriter, TasteFeatures

META = {"whisper": "tiny", "layer": 2}


def item(number: int) -> TasteFeatures:
    rng = np.random.default_rng(number)
    tokens, frames = number + 1, 10 + 3 * number
    return TasteFeatures(
        f"utt{number}",
        f"text number {number}",
        rng.integers(0, 100, tokens),
        rng.standard_normal((tokens, 8)).astype(np.float32),
        rng.standard_normal((frames, 6)).astype(np.float16),
    )


def write(directory, numbers, shard_items=2, flush=True):
    writer = FeatureStoreWriter(directory, META, shard_items=shard_items)
    for number in numbers:
        writer.add(item(number))
    if flush:
        writer.close()
    return writer


def assert_same(stored: TasteFeatures, expected: TasteFeatures) -> None:
    assert stored.key == expected.key and stored.text == expected.text
    np.testing.assert_array_equal(stored.text_ids, expected.text_ids)
    np.testing.assert_array_equal(stored.text_emb, expected.text_emb)
    np.testing.assert_array_equal(stored.whisper, expected.whisper)
    assert stored.whisper.dtype == expected.whisper.dtype and stored.text_ids.dtype == np.int64


def test_items_read_back_by_key_and_in_shard_order(tmp_path):
    write(tmp_path, range(5))
    store = FeatureStore(tmp_path)
    assert len(store) == 5 and store.keys() == [f"utt{n}" for n in range(5)]
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors"]
    for number in (3, 0, 4):
        assert_same(store[f"utt{number}"], item(number))
    assert [features.key for features in store] == store.keys()
    assert store.row("utt2") == {"key": "utt2", "shard": "shard-00001.safetensors", "text": "text number 2", "tokens": 3, "frames": 16}
    partial = store.get("utt1", fields=("text_ids",))
    assert partial.whisper is None and partial.text_ids.tolist() == item(1).text_ids.tolist()
    with pytest.raises(AudiotokError, match="key 'nope' is not in the feature store"):
        store["nope"]


def test_unflushed_items_are_redone_and_torn_or_orphaned_writes_are_dropped(tmp_path):
    writer = write(tmp_path, range(3), flush=False)  # utt0, utt1 in a shard; utt2 buffered, then "killed"
    assert writer.pending == 1
    # A kill between writing a shard and indexing it leaves an orphan shard, and maybe a torn index line.
    (tmp_path / "shard-00007.safetensors").write_bytes(b"half a shard")
    with open(tmp_path / "index.jsonl", "a") as index:
        index.write('{"key": "utt2", "sha')
    resumed = FeatureStoreWriter(tmp_path, META, shard_items=2)
    assert resumed.done == {"utt0", "utt1"}
    assert not (tmp_path / "shard-00007.safetensors").exists()
    for number in range(5):
        if f"utt{number}" not in resumed.done:
            resumed.add(item(number))
    resumed.close()
    store = FeatureStore(tmp_path)
    assert store.keys() == [f"utt{n}" for n in range(5)]
    for number in range(5):
        assert_same(store[f"utt{number}"], item(number))


def test_other_settings_duplicates_and_bad_stores_are_one_line_errors(tmp_path):
    write(tmp_path, range(2))
    with pytest.raises(AudiotokError, match=r"holds features made with other settings \(layer differ\)"):
        FeatureStoreWriter(tmp_path, {**META, "layer": 3})
    writer = FeatureStoreWriter(tmp_path, META)
    with pytest.raises(AudiotokError, match="key 'utt1' is already in"):
        writer.add(item(1))
    with pytest.raises(AudiotokError, match="contains '/'"):
        writer.add(TasteFeatures("a/b", "x", np.zeros(1, np.int64), np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32)))
    with pytest.raises(AudiotokError, match="not a TASTE feature store \\(no meta.json\\)"):
        FeatureStore(_empty(tmp_path))
    meta = json.loads((tmp_path / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(AudiotokError, match="store version 99 is not supported"):
        FeatureStore(tmp_path)


def _empty(tmp_path):
    directory = tmp_path / "empty"
    directory.mkdir()
    return directory
