"""Model presets: the registry is well formed; list, fetch (offline: one clear line), verify."""

import hashlib
import shutil

import pytest

from audiotok.models.registry import FAMILIES, load_registry
from tests.units.test_s3 import save_tiny

NEEDED = (
    "hubert-base-ls960",
    "mhubert-147",
    "wav2vec2-base",
    "wavlm-large",
    "xlsr-53",
    "whisper-tiny.en",
    "cosyvoice-s3-v1-25hz",
    "cosyvoice-s3-v1-50hz",
    "cosyvoice-s3-v2",
    "step-audio-tokenizer",
    "spark-tts-bicodec",
)


def one_line_error(result, code=1):
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("s3"), "v1", 25)[1]


def user_registry(tmp_path, text):
    path = tmp_path / "presets.yaml"
    path.write_text(text)
    return {"AUDIOTOK_MODEL_REGISTRY": str(path)}


def test_the_registry_is_well_formed():
    presets = load_registry()
    assert set(NEEDED) <= set(presets)
    assert any(name.startswith("paraformer") for name in presets)
    for preset in presets.values():
        assert preset.family in FAMILIES and preset.sample_rate == 16000 and preset.frame_rate > 0
        if preset.family in ("hf", "whisper"):
            assert preset.weights and preset.layer is not None and preset.codebook == 0, preset.name
        if preset.family == "s3":
            assert preset.file in preset.files and preset.codebook in (4096, 6561) and set(preset.sha256) == {preset.file}
    # The two speech_tokenizer_v1.onnx files share a name: only the checksum tells them apart.
    assert presets["cosyvoice-s3-v1-25hz"].sha256 != presets["cosyvoice-s3-v1-50hz"].sha256
    assert presets["hubert-base-ls960"].layers == (6, 9)


def test_list_shows_every_preset_and_local_copies(cli, tmp_path, tiny_onnx):
    (tmp_path / "cache" / "cosyvoice-s3-v2").mkdir(parents=True)
    shutil.copy(tiny_onnx, tmp_path / "cache" / "cosyvoice-s3-v2" / "speech_tokenizer_v2.onnx")
    result = cli("model", "list", "--format", "tsv", "--cache-dir", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in result.text.splitlines()}
    assert rows["name"] == ["name", "family", "rate_hz", "codebook", "layer", "size", "license", "local"]
    assert set(NEEDED) <= set(rows)
    assert rows["cosyvoice-s3-v2"][7] == str(tmp_path / "cache" / "cosyvoice-s3-v2") and rows["cosyvoice-s3-v1-25hz"][7] == "no"
    assert rows["hubert-base-ls960"][1:5] == ["hf", "50", "-", "6"]


def test_fetch_fails_with_one_line_naming_the_host_and_the_offline_way(cli, tmp_path):
    offline = one_line_error(cli("model", "fetch", "hubert-base-ls960", "--cache-dir", tmp_path, env={"HF_HUB_OFFLINE": "1"}))
    assert "cannot fetch hubert-base-ls960 from huggingface.co: HF_HUB_OFFLINE is set" in offline
    assert f"copy it to {tmp_path}/hubert-base-ls960, or pass --model a local directory" in offline
    unreachable = one_line_error(
        cli("model", "fetch", "wav2vec2-base", "--dir", tmp_path / "w", env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"})
    )
    assert "cannot fetch wav2vec2-base from 127.0.0.1:9" in unreachable
    assert "no model preset 'nope'" in one_line_error(cli("model", "fetch", "nope"))


def test_verify_deep_on_tiny_models_of_each_family(cli, tiny_hubert, tiny_onnx):
    hubert = cli("model", "verify", tiny_hubert, "--deep")
    assert hubert.returncode == 0, hubert.stderr
    assert "family hf" in hubert.text and "features [49, 32] (hf, layer 3, 50 Hz)" in hubert.text and hubert.text.endswith("verified\n")
    s3 = cli("model", "verify", tiny_onnx, "--deep")
    assert s3.returncode == 0, s3.stderr
    assert "not an official S3 file" in s3.text and "s3 tokens [25]" in s3.text


def test_verify_deep_on_the_real_whisper(cli, whisper_dir):
    result = cli("model", "verify", whisper_dir, "--deep")
    assert result.returncode == 0, result.stderr
    assert "features [50, 384] (whisper, layer 4, 50 Hz)" in result.text


def test_verify_names_a_missing_file_and_a_checksum_mismatch(cli, tmp_path, tiny_onnx, tiny_hubert):
    digest = hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()
    env = user_registry(
        tmp_path,
        f"""
tiny-s3:
  family: s3
  source: {{hub: example/tiny-s3}}
  files: [speech_tokenizer_v1.onnx]
  file: speech_tokenizer_v1.onnx
  sample_rate: 16000
  frame_rate: 25
  codebook: 64
  sha256: {{speech_tokenizer_v1.onnx: {digest}}}
  license: test
  size: 1 MB
tiny-hubert:
  family: hf
  source: {{hub: example/tiny-hubert}}
  files: [config.json, preprocessor_config.json]
  weights: [model.safetensors, pytorch_model.bin]
  layer: 2
  sample_rate: 16000
  frame_rate: 50
  codebook: 0
  license: test
  size: 1 MB
""",
    )
    cache = tmp_path / "cache"
    (cache / "tiny-s3").mkdir(parents=True)
    shutil.copy(tiny_onnx, cache / "tiny-s3" / "speech_tokenizer_v1.onnx")
    good = cli("model", "verify", "tiny-s3", "--deep", "--cache-dir", cache, env=env)
    assert good.returncode == 0, good.stderr
    assert "ok       sha256 speech_tokenizer_v1.onnx" in good.text and "s3 tokens [25]" in good.text
    # The preset's default layer serves a forward pass, and --model NAME in s3-extract finds the copy.
    shutil.copytree(tiny_hubert, cache / "tiny-hubert")
    assert "(hf, layer 2, 50 Hz)" in cli("model", "verify", "tiny-hubert", "--deep", "--cache-dir", cache, env=env).text

    with open(cache / "tiny-s3" / "speech_tokenizer_v1.onnx", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\0" * 8)
    corrupt = cli("model", "verify", "tiny-s3", "--cache-dir", cache, env=env)
    assert "sha256 mismatch for speech_tokenizer_v1.onnx: " in one_line_error(corrupt)
    assert "FAILED   sha256 mismatch" in corrupt.text
    (cache / "tiny-hubert" / "preprocessor_config.json").unlink()
    missing = cli("model", "verify", "tiny-hubert", "--cache-dir", cache, env=env)
    assert "error: tiny-hubert: missing file preprocessor_config.json" in one_line_error(missing)
    assert "not downloaded" in one_line_error(cli("model", "verify", "tiny-s3", "--cache-dir", tmp_path / "elsewhere", env=env))


def test_s3_extract_takes_a_preset_name(cli, tmp_path, tiny_onnx):
    from tests.conftest import sine, write_audio

    env = user_registry(
        tmp_path,
        """
tiny-s3:
  family: s3
  source: {hub: example/tiny-s3}
  files: [speech_tokenizer_v1.onnx]
  file: speech_tokenizer_v1.onnx
  sample_rate: 16000
  frame_rate: 25
  codebook: 64
  license: test
  size: 1 MB
""",
    )
    (tmp_path / "cache" / "tiny-s3").mkdir(parents=True)
    shutil.copy(tiny_onnx, tmp_path / "cache" / "tiny-s3" / "speech_tokenizer_v1.onnx")
    audio = write_audio(tmp_path / "a.wav", sine(220, 16000, 1.2), 16000)
    by_name = cli("s3-extract", "--model", "tiny-s3", audio, env={**env, "AUDIOTOK_MODELS": str(tmp_path / "cache")})
    by_path = cli("s3-extract", "--model", tiny_onnx, audio)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.text == by_path.text and len(by_name.text.split()) == 31
    assert "audiotok model fetch tiny-s3" in one_line_error(
        cli("s3-extract", "--model", "tiny-s3", audio, env={**env, "AUDIOTOK_MODELS": str(tmp_path / "none")})
    )


def test_a_bad_user_registry_is_one_line(cli, tmp_path):
    env = user_registry(tmp_path, "mine:\n  family: hf\n  colour: blue\n")
    assert "preset 'mine': unknown field 'colour'" in one_line_error(cli("model", "list", env=env))
    env = user_registry(
        tmp_path, "mine:\n  family: robot\n  source: {hub: a/b}\n  files: [x]\n  sample_rate: 1\n  frame_rate: 1\n  codebook: 0\n  license: x\n  size: x\n"
    )
    assert "family 'robot' is not one of" in one_line_error(cli("model", "list", env=env))


def test_verify_names_a_truncated_safetensors_file(cli, tmp_path, tiny_hubert):
    model = tmp_path / "cut"
    shutil.copytree(tiny_hubert, model)
    weights = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    result = cli("model", "verify", model, "--deep")
    assert result.returncode == 1
    assert f"FAILED   model.safetensors is truncated or damaged: its tensors need {len(weights)} bytes, the file holds {len(weights) // 2}" in result.text
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {model}: model.safetensors is truncated or damaged")
    assert "forward" not in result.text  # nothing tried to load it
