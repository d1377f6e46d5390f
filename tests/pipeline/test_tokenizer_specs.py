"""Tokenizer SPECs of tokenize-shards (S3 options), and ONNX providers per device."""

import numpy as np
import pytest

from audiotok.device import onnx_providers
from audiotok.errors import AudiotokError, UsageError
from audiotok.tokenizers import parse_spec
from audiotok.tokenizers.s3 import S3Tokenizer, parse_s3_target
from tests.units.test_s3 import save_tiny, speech_like


def test_s3_options_are_parsed_from_the_end_of_the_target():
    from audiotok.units.s3 import S3Options

    assert parse_s3_target("s3.pt") == S3Options("s3.pt")
    assert parse_s3_target("s3.pt,version=v1,rate=25") == S3Options("s3.pt", "v1", 25)
    assert parse_s3_target("dir,with,commas/s3.onnx,rate=50") == S3Options("dir,with,commas/s3.onnx", rate=50)
    spelled = parse_s3_target("s3.pt,long_audio=step-audio,resampler=soxr,attn-ln-eps=1e-6")
    assert spelled == S3Options("s3.pt", long_audio="step-audio", resampler="soxr", attn_ln_eps=1e-6)
    refused = {
        "s3.pt,rate=30": "S3 rate 30: S3 tokenizers give 25 or 50",
        "s3.pt,version=v3": "unknown S3 version 'v3'",
        "s3.pt,long_audio=chunked": "unknown long-audio mode 'chunked'",
        "s3.pt,attn_ln_eps=small": "take numbers",
    }
    for spec, message in refused.items():
        with pytest.raises(UsageError, match=message) as err:
            parse_s3_target(spec)
        assert err.value.one_line().startswith(f"error: --tokenizer s3:{spec}")


def test_s3_spec_with_rate_loads_v1_weights_like_s3_extract(tmp_path):
    weights, onnx = save_tiny(tmp_path, "v1", 50)
    assert parse_spec(f"s3:{weights},version=v1,rate=50") == ("s3", f"{weights},version=v1,rate=50")
    with pytest.raises(AudiotokError, match=f"no such S3 tokenizer model: {tmp_path}/missing.pt"):
        parse_spec(f"s3:{tmp_path}/missing.pt,rate=25")
    wave = speech_like(2.0, 1)
    torch_tokens = S3Tokenizer(f"{weights},version=v1,rate=50", "cpu")([wave])[0]["s3_tokens"]
    onnx_tokens = S3Tokenizer(f"{onnx},rate=50", "cpu")([wave])[0]["s3_tokens"]
    assert len(torch_tokens) == 100 and np.array_equal(torch_tokens, onnx_tokens)


def test_onnx_providers_follow_the_device(monkeypatch):
    import onnxruntime as ort

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_providers("cuda:3") == [("CUDAExecutionProvider", {"device_id": 3}), "CPUExecutionProvider"]
    assert onnx_providers("cuda") == [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_providers("cuda:1") == ["CPUExecutionProvider"]


def test_tokenize_shards_s3_equals_s3_extract_on_22khz_audio(tmp_path):
    """The worker resamples with the tokenizer's own resampler (S3: torchaudio's, as s3-extract)."""
    import json

    from tests.conftest import make_data_dir, run_cli, write_audio
    from tests.pipeline.shards import flac_bytes, write_shard

    _, onnx = save_tiny(tmp_path, "v2", 25)  # FSQ codes move with small changes of the input
    waves = {f"u{i}": (speech_like(1.5 + i, i), rate) for i, rate in enumerate((22050, 16000, 44100))}
    write_shard(tmp_path / "shards" / "part-000.tar", {k: {"audio": flac_bytes(w, r), "meta": {"text": k}} for k, (w, r) in waves.items()})
    files = {k: write_audio(tmp_path / "flac" / f"{k}.flac", w, r) for k, (w, r) in waves.items()}
    shards = run_cli("tokenize-shards", "--input-dir", tmp_path / "shards", "--output-dir", tmp_path / "out", "--tokenizer", f"s3:{onnx}", "--num-proc", "1")
    assert shards.returncode == 0, shards.stderr
    lines = [json.loads(line) for path in sorted((tmp_path / "out").glob("*.jsonl")) for line in path.read_text().splitlines()]
    extract = run_cli("s3-extract", "--model", onnx, make_data_dir(tmp_path / "data", files))
    assert extract.returncode == 0, extract.stderr
    expected = {line.split()[0]: [int(x) for x in line.split()[1:]] for line in extract.text.splitlines()}
    assert {line["key"]: line["s3_tokens"] for line in lines} == expected
