"""A tokenizer family added from outside audiotok (one module, one registry line) runs in
tokenize, tokenize-shards and stream, with the same tokens in all three."""

import json

import numpy as np
import soundfile as sf

from tests.conftest import assert_no_traceback
from tests.pipeline.shards import flac_bytes, write_shard

PLUGIN = {"AUDIOTOK_TOKENIZERS": "tests.tokenizers.toy"}


def recording(seconds: float, seed: int) -> np.ndarray:
    """Bursts of noise at loudness changing every 100 ms: many different tokens."""
    rng = np.random.default_rng(seed)
    levels = np.repeat(10 ** (-rng.uniform(0, 4, int(seconds * 10))), 1600)
    return (rng.standard_normal(len(levels)) * levels * 0.3).astype(np.float32)


def test_toy_family_in_tokenize_shards_and_stream(cli, tmp_path):
    waves = {"a": recording(2.5, 1), "b": recording(1.0, 2)}
    for key, wave in waves.items():
        sf.write(tmp_path / f"{key}.wav", wave, 16000, subtype="PCM_16")  # PCM: stdin gets the same samples

    whole = cli("tokenize", "toy:3", tmp_path / "a.wav", tmp_path / "b.wav", env=PLUGIN)
    assert whole.returncode == 0, whole.stderr
    tokens = {line.split()[0]: [int(t) for t in line.split()[1:]] for line in whole.text.splitlines()}
    assert [len(tokens["a"]), len(tokens["b"])] == [125, 50] and len(set(tokens["a"] + tokens["b"])) >= 8

    unknown = cli("tokenize", "toy:3", tmp_path / "a.wav")  # without the registry line it is no tokenizer
    assert unknown.returncode == 2 and "TOKENIZER 'toy:3': unknown tokenizer" in unknown.stderr
    assert_no_traceback(unknown.stderr)

    samples = {key: sf.read(tmp_path / f"{key}.wav", dtype="float32")[0] for key in waves}
    write_shard(tmp_path / "shards" / "s0.tar", {"a": {"audio": flac_bytes(samples["a"], 16000), "meta": {"text": "x"}}})
    write_shard(tmp_path / "shards" / "s1.tar", {"b": {"audio": flac_bytes(samples["b"], 16000), "meta": {"text": "y"}}})
    shards = cli("tokenize-shards", "--input-dir", tmp_path / "shards", "--output-dir", tmp_path / "out", "--tokenizer", "toy:3", "--num-proc", "2", env=PLUGIN)
    assert shards.returncode == 0, shards.stderr
    rows = [json.loads(line) for f in sorted((tmp_path / "out").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert {row["key"]: row["toy_tokens"] for row in rows} == tokens

    pcm = sf.read(tmp_path / "a.wav", dtype="int16")[0].tobytes()
    streamed = cli("stream", "toy:3", "--input", "-", "--format", "s16le", "--rate", "16000", "--duration", "1.0", input=pcm, env=PLUGIN)
    assert streamed.returncode == 0, streamed.stderr
    lines = streamed.text.splitlines()
    assert len(lines) == 3  # 1 s, 1 s, 0.5 s
    assert [int(t) for line in lines for t in line.split()] == tokens["a"]


def test_a_plug_in_registered_before_the_registry_is_read_leaves_audiotoks_families(monkeypatch):
    import audiotok.tokenizers as registry

    monkeypatch.setattr(registry, "_registry", {})
    monkeypatch.setattr(registry, "_loaded", False)
    registry.register(registry.Family("early", lambda target: None, lambda target, device, dtype: None, "early:X, a test family"))
    assert {"bundle", "s3", "bicodec", "early"} <= set(registry.families())
