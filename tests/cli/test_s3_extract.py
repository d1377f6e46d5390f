import json

import numpy as np
import pytest

from tests.conftest import Result, assert_no_traceback, make_data_dir, run_cli, write_audio
from tests.units.test_s3 import save_tiny, speech_like


def s3(*args, env=None) -> Result:
    return run_cli("s3-extract", *args, env=env)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    v1_weights, v1_onnx = save_tiny(tmp_path_factory.mktemp("s3v1"), "v1", 25)
    v2_weights, v2_onnx = save_tiny(tmp_path_factory.mktemp("s3v2"), "v2", 25, ".safetensors")
    return {"v1": v1_weights, "v1.onnx": v1_onnx, "v2": v2_weights, "v2.onnx": v2_onnx}


def corpus(tmp_path):
    # 22.05 kHz input: resampled to 16 kHz on the way in. One recording over 30 s.
    seconds = {"a": 1.5, "b": 3.2, "c": 31.0}
    items = {k: write_audio(tmp_path / "in" / f"{k}.wav", speech_like(s * 22050 / 16000, i), 22050) for i, (k, s) in enumerate(seconds.items())}
    return make_data_dir(tmp_path / "data", items), seconds


def test_onnx_and_pytorch_weights_give_the_same_units(models, tmp_path):
    data, seconds = corpus(tmp_path)
    onnx = s3("--model", models["v1.onnx"], data)
    assert onnx.returncode == 0, onnx.stderr
    assert_no_traceback(onnx.stderr)
    assert "done 3/3" in onnx.stderr and "s3-extract" in onnx.stderr.splitlines()[0]
    assert "Step-Audio" not in onnx.stderr
    lines = onnx.text.splitlines()
    assert [line.split()[0] for line in lines] == ["a", "b", "c"]
    for line, (key, s) in zip(lines, seconds.items(), strict=True):
        assert abs(len(line.split()) - 1 - 25 * s) <= 2, key
    torch_run = s3("--model", models["v1"].parent, "--rate", "25", "--device", "cpu", data)
    assert torch_run.returncode == 0, torch_run.stderr
    assert torch_run.text == onnx.text
    v2 = s3("--model", models["v2.onnx"], "--format", "jsonl", "--dedup", data)
    assert v2.returncode == 0, v2.stderr
    rows = [json.loads(line) for line in v2.text.splitlines()]
    assert [r["key"] for r in rows] == ["a", "b", "c"] and all(max(r["tokens"]) < 6561 and sum(r["durations"]) >= 25 * seconds[r["key"]] - 2 for r in rows)


def test_outputs_resume_shard_and_npy(models, tmp_path):
    data, _ = corpus(tmp_path)
    out = tmp_path / "units.txt"
    first = s3("--model", models["v1.onnx"], data, "-o", out)
    assert first.returncode == 0 and first.stdout == b""
    again = s3("--model", models["v1.onnx"], data, "-o", out)
    assert again.returncode == 0 and "already done" in again.stderr
    shards = [s3("--model", models["v1.onnx"], data, "--shard", f"{j}/2").text for j in (1, 2)]
    assert "".join(shards) == out.read_text()
    npy = s3("--model", models["v1.onnx"], data, "--format", "npy", "-o", tmp_path / "npy")
    assert npy.returncode == 0, npy.stderr
    assert np.load(tmp_path / "npy" / "b.npy").tolist() == [int(x) for x in out.read_text().splitlines()[1].split()[1:]]


def test_bad_models_and_items_give_one_line_errors(models, tmp_path):
    data, _ = corpus(tmp_path)
    (tmp_path / "bad.onnx").write_bytes(b"nope")
    cases = {
        "cannot load ONNX model": ("--model", tmp_path / "bad.onnx", data),
        "do not say their token rate": ("--model", models["v1"], data),
        "holds S3 v1 weights": ("--model", models["v1"], "--rate", "25", "--version", "v2", data),
        "no such S3 model": ("--model", tmp_path / "missing", data),
    }
    for message, args in cases.items():
        result = s3(*args)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: ") and result.stdout == b""
        assert_no_traceback(result.stderr)
    short = tmp_path / "short.wav"
    write_audio(short, np.zeros(100, np.float32), 16000)
    result = s3("--model", models["v1.onnx"], short, tmp_path / "in" / "a.wav", "--min-success", "0.5")
    assert result.returncode == 0 and "short: too short" in result.stderr and "done 1/2" in result.stderr


def test_help_has_an_example():
    result = s3("--help")
    assert result.returncode == 0 and "Example:" in result.text and "See also:" in result.text


def test_real_speech(models, speech_dir):
    result = s3("--model", models["v1.onnx"], speech_dir, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert "Step-Audio" not in result.stderr and len(result.text.splitlines()) >= 10


def test_long_audio_modes_recipe_and_option_errors(models, tmp_path):
    """53.0 s at 16 kHz: s3tokenizer's layout loses the last 2 s (1275 tokens, flagged by the
    token-count check), Step-Audio's chunks keep them (1325); OUT.recipe.json says which ran."""
    wave = speech_like(53.0, 5)
    data = make_data_dir(
        tmp_path / "data", {"long": write_audio(tmp_path / "long.wav", wave, 16000), "short": write_audio(tmp_path / "short.wav", wave[:32000], 16000)}
    )
    counts = {}
    for mode in ("s3tokenizer", "step-audio"):
        out = tmp_path / f"{mode}.txt"
        result = s3("--model", models["v1.onnx"], "--long-audio", mode, data, "-o", out)
        assert result.returncode == 0, result.stderr
        counts[mode] = {line.split()[0]: len(line.split()) - 1 for line in out.read_text().splitlines()}
        recipe = json.loads((tmp_path / f"{mode}.txt.recipe.json").read_text())
        assert {k: recipe[k] for k in ("tokenizer", "backend", "version", "frame_rate", "long_audio", "resampler")} == {
            "tokenizer": "s3",
            "backend": "onnx",
            "version": None,
            "frame_rate": 25,
            "long_audio": mode,
            "resampler": "torchaudio",
        }
        assert len(recipe["model_hash"]) == 64 and "attn_ln_eps" not in recipe and recipe["dedup"] is False
        flagged = "1 items fail Step-Audio's check" in result.stderr and "long (1275 tokens for 53.00 s)" in result.stderr
        assert flagged == (mode == "s3tokenizer"), result.stderr
    assert counts == {"s3tokenizer": {"long": 1275, "short": 50}, "step-audio": {"long": 1325, "short": 50}}
    v2 = s3("--model", models["v2"], "--attn-ln-eps", "1e-6", data, "-o", tmp_path / "v2.txt", "--device", "cpu")
    assert v2.returncode == 0, v2.stderr
    recipe = json.loads((tmp_path / "v2.txt.recipe.json").read_text())
    assert recipe["attn_ln_eps"] == 1e-6 and recipe["backend"] == "pytorch" and recipe["codebook_size"] == 6561
    refused = {
        "unknown long-audio mode 'chunks'": ("--model", models["v1.onnx"], "--long-audio", "chunks", data),
        "unknown resampler 'sox'": ("--model", models["v1.onnx"], "--resampler", "sox", data),
        "an ONNX file carries its own": ("--model", models["v2.onnx"], "--attn-ln-eps", "1e-6", data),
        "holds v1 weights": ("--model", models["v1"], "--rate", "25", "--attn-ln-eps", "1e-6", data),
    }
    for message, args in refused.items():
        result = s3(*args)
        assert result.returncode == 2 and message in result.stderr and result.stdout == b"", result.stderr
        assert_no_traceback(result.stderr)
