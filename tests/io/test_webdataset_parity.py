"""tar: inputs read shards as the webdataset package does: same keys, audio and JSON metadata."""

import io
import json

import numpy as np
import pytest
import soundfile as sf

from audiotok.io.audio import encode
from audiotok.io.audio_table import open_audio_source
from tests.pipeline.shards import flac_bytes, signal_of

wds = pytest.importorskip("webdataset")


def test_shards_written_by_webdataset_read_the_same_through_tar(tmp_path):
    expected_keys = []
    for shard in range(2):
        with wds.TarWriter(str(tmp_path / f"shard-{shard:02d}.tar")) as sink:
            for i in range(3):
                n = 3 * shard + i
                key = f"spk{shard}/utt_{n:03d}"  # a directory in the member name: part of the key for both readers
                rate = 22050 if n % 2 else 16000
                sample = {"__key__": key, "json": {"text": f"sentence {n} ü", "speaker": f"spk{shard}", "n": n}}
                if n == 4:
                    sample["wav"] = encode(signal_of(n, rate), rate)
                else:
                    sample["flac"] = flac_bytes(signal_of(n, rate), rate)
                sink.write(sample)
                expected_keys.append(key)

    reference = {}
    for sample in wds.WebDataset(str(tmp_path / "shard-{00..01}.tar"), shardshuffle=False):
        raw = sample.get("flac", sample.get("wav"))
        samples, rate = sf.read(io.BytesIO(raw), dtype="float32")
        reference[sample["__key__"]] = (samples, rate, json.loads(sample["json"]))
    assert list(reference) == expected_keys

    source, failures = open_audio_source(f"tar:{tmp_path}")
    ours = {item.key: (item.load(), item.metadata) for item in source}
    assert failures == [] and list(ours) == expected_keys
    for key, (samples, rate, metadata) in reference.items():
        audio, our_metadata = ours[key]
        assert audio.rate == rate and np.array_equal(audio.samples, samples)
        assert our_metadata == metadata
