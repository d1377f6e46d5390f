"""`audiotok bicodec-extract` end to end: output, resume, shards, bad items, loader errors.

The first run is a real subprocess; the others call the same entry point (audiotok.cli.main)
in this process, which saves re-importing torch and transformers for each.
"""

import json
import shutil
import sys

import pytest

from tests.bicodec.signals import speech_like
from tests.conftest import assert_no_traceback, make_data_dir, run_cli, write_audio


@pytest.fixture
def cli_here(capsys, monkeypatch):
    """Run `audiotok ARGS` through audiotok.cli.main in this process: (exit code, stdout, stderr)."""
    from audiotok.cli import main

    monkeypatch.delenv("AUDIOTOK_DEBUG", raising=False)

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["audiotok", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bicodec-corpus")
    # 22.05 kHz input: resampled to 16 kHz on the way in. "d" is too short for one wav2vec2 frame.
    seconds = {"a": 1.4, "b": 3.1, "c": 0.8, "d": 0.01}
    items = {k: write_audio(tmp / "in" / f"{k}.wav", speech_like(s * 22050 / 16000, seed=i), 22050) for i, (k, s) in enumerate(seconds.items())}
    return make_data_dir(tmp / "data", items)


@pytest.fixture(scope="module")
def finished(tiny_bicodec, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("bicodec-out") / "tokens.jsonl"
    result = run_cli("bicodec-extract", "--model", tiny_bicodec, corpus, "-o", out, "--min-success", "0.5", "--device", "cpu")
    return out, result


def test_output_lines_and_bad_item(finished):
    out, result = finished
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stderr)
    assert result.stdout == b"" and "done 3/4" in result.stderr and "d: too short" in result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["key"] for r in rows] == ["a", "b", "c"]
    for row, seconds in zip(rows, (1.4, 3.1, 0.8), strict=True):
        assert list(row) == ["key", "global_tokens", "semantic_tokens"]
        assert len(row["global_tokens"]) == 32 and max(row["global_tokens"]) < 4096
        assert abs(len(row["semantic_tokens"]) - 50 * seconds) <= 1 and max(row["semantic_tokens"]) < 8192


def test_rerun_skips_and_killed_run_resumes_to_the_same_bytes(finished, tiny_bicodec, corpus, cli_here):
    out, _ = finished
    code, _, stderr = cli_here("bicodec-extract", "--model", tiny_bicodec, corpus, "-o", out, "--min-success", "0.5", "--device", "cpu")
    assert code == 0 and "already done" in stderr
    # A killed run leaves OUT.partial (one whole line, half of the next) and the run's signature.
    resumed = out.with_name("resumed.jsonl")
    signature = json.loads(out.with_name(f".{out.name}.done").read_text())["signature"]
    args = ["bicodec-extract", "--model", tiny_bicodec, corpus, "-o", resumed, "--min-success", "0.5", "--device", "cpu"]
    text = out.read_text()
    first, second = text.splitlines(keepends=True)[:2]
    resumed.with_name("resumed.jsonl.partial").write_text(first + second[: len(second) // 2])
    signature["arguments"]["inputs"] = [str(corpus)]
    resumed.with_name("resumed.jsonl.partial.json").write_text(json.dumps({"signature": signature}))  # the RunMarker format
    code, _, stderr = cli_here(*args)
    assert code == 0, stderr
    assert "done 3/4 (1 already done)" in stderr
    assert resumed.read_text() == text
    assert not resumed.with_name("resumed.jsonl.partial").exists()


def test_one_at_a_time_shard_equals_batched_lines(finished, tiny_bicodec, corpus, cli_here):
    out, _ = finished
    code, stdout, stderr = cli_here("bicodec-extract", "--model", tiny_bicodec, corpus, "--shard", "1/2", "--batch-seconds", "0", "--device", "cpu")
    assert code == 0, stderr
    assert stdout == "".join(out.read_text().splitlines(keepends=True)[:2])  # a and b, each alone


def _copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def _edit_weights(model, edit):
    from safetensors.torch import load_file, save_file

    path = model / "BiCodec" / "model.safetensors"
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def test_loader_errors_are_one_line(tiny_bicodec, corpus, tmp_path, cli_here):
    import torch

    no_config = _copy_model(tiny_bicodec, tmp_path / "no_config")
    (no_config / "BiCodec" / "config.yaml").unlink()
    missing_key = _copy_model(tiny_bicodec, tmp_path / "missing_key")
    _edit_weights(missing_key, lambda s: s.pop("speaker_encoder.perceiver_sampler.latents"))
    wrong_shape = _copy_model(tiny_bicodec, tmp_path / "wrong_shape")
    _edit_weights(wrong_shape, lambda s: s.__setitem__("quantizer.codebook.weight", torch.zeros(100, 8)))
    cases = {
        f"no {no_config / 'BiCodec' / 'config.yaml'}": no_config,
        "has no tensor speaker_encoder.perceiver_sampler.latents": missing_key,
        "quantizer.codebook.weight has shape [100, 8], BiCodec/config.yaml gives [8192, 8]": wrong_shape,
    }
    for message, model in cases.items():
        code, stdout, stderr = cli_here("bicodec-extract", "--model", model, corpus, "--device", "cpu")
        lines = stderr.strip().splitlines()
        assert code == 1 and lines[-1].startswith("error: ") and message in lines[-1], stderr
        assert "model.safetensors" in lines[-1] or model is no_config
        assert stdout == ""
        assert_no_traceback(stderr)


def test_unknown_tensor_is_named(tiny_bicodec, tmp_path):
    from audiotok.bicodec.tokenizer import BiCodecTokenizer
    from audiotok.errors import AudiotokError

    odd = _copy_model(tiny_bicodec, tmp_path / "odd")
    _edit_weights(odd, lambda s: s.__setitem__("encoder.extra.weight", s["encoder.project.bias"].clone()))
    with pytest.raises(AudiotokError, match=r"model.safetensors has an unknown tensor encoder.extra.weight"):
        BiCodecTokenizer(odd)
    # The decoder side is ignored knowingly: the tiny model carries all of Spark-TTS's decoder keys.
    from safetensors import safe_open

    with safe_open(str(tiny_bicodec / "BiCodec" / "model.safetensors"), "pt") as weights:
        prefixes = {key.split(".")[0] for key in weights.keys()}
    assert {"decoder", "prenet", "postnet", "mel_transformer"} <= prefixes
