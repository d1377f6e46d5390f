"""Seed 001's surface on audiotok's BSQ model: the seed's constructor and encode, its YAML keys,
and the refusal of a mel in dB where the model takes [-1, 1]."""

import numpy as np
import pytest
import torch

from audiotok.bsq import config as bsq_config
from audiotok.bsq.mel import MelFrontend
from audiotok.bsq.model import AudioBSQModel
from audiotok.bsq.tokens import encode_utterance
from audiotok.errors import AudiotokError, UsageError
from tests.conftest import assert_no_traceback

# The tiny preset's encoder, in the seed's audioconfig spelling.
AUDIOCONFIG = {
    "input_size": 32,
    "input_length": 64,
    "patch_size": 8,
    "width": 32,
    "layers": 1,
    "heads": 2,
    "mlp_ratio": 4,
    "drop_rate": 0.0,
    "use_conv_module": True,
    "conv_kernel_size": 3,
}


@pytest.fixture(scope="module")
def native() -> AudioBSQModel:
    torch.manual_seed(0)
    return AudioBSQModel(bsq_config.load("tiny")["model"]).eval()


@pytest.fixture(scope="module")
def mel() -> torch.Tensor:
    """1.6 s of a chirp over noise: 161 frames, scaled log-mel in [-1, 1]."""
    t = np.arange(int(1.6 * 16000)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * (300 * t + 400 * t * t)) + 0.01 * np.random.default_rng(0).normal(size=t.size)
    return MelFrontend(n_mels=32)(wave.astype(np.float32))


def seed_model(native, **arguments) -> AudioBSQModel:
    from audiotok.bsq import AudioBSQModel as imported_as_in_the_seed  # the package exports it

    model = imported_as_in_the_seed(audioconfig=dict(AUDIOCONFIG), **arguments)
    model.load_state_dict(native.state_dict())  # strict: the seed's arguments built the same modules
    return model.eval()


def test_the_seed_constructor_builds_the_tiny_model_and_encode_gives_its_tokens(native, mel):
    # The seed's quantizer loss: beta * commitment + zeta * (gamma0 * H_sample - gamma * H_codebook) / inv_temperature.
    model = seed_model(
        native, embed_dim=6, embed_group_size=6, l2_norm=True, post_q_l2_norm=True, inv_temperature=100.0, beta=0.25, gamma0=1.0, gamma=1.0, zeta=10.0
    )
    assert model.config == native.config
    windows = mel[:128].reshape(2, 64, 32)  # the seed's input: (batch, time, freq)
    encoded, quant_loss, info = model.encode(windows)
    assert encoded.shape == (2, 8 * 4, 6) and quant_loss.ndim == 0  # (batch, time x mel patches, bits), time-major
    assert torch.allclose(encoded.abs(), torch.full_like(encoded, 6**-0.5))
    assert torch.equal(info["ids"].reshape(16, 4), encode_utterance(native, mel[:128]))  # bsq-encode's tokens
    bits = (encoded > 0).long()
    assert torch.equal(info["ids"].reshape(2, -1), (bits * 2 ** torch.arange(6)).sum(-1))
    assert torch.equal(info["indices"], (bits * 2 ** torch.arange(5, -1, -1)).sum(-1))  # the seed numbers dimension 0 as the top bit
    assert torch.equal(info["used_codes"], torch.unique(info["indices"])) and info["H"] == info["codebook_entropy"]
    reconstructed, _, forward_info = model(windows)
    assert reconstructed.shape == windows.shape and torch.equal(forward_info["ids"], info["ids"])
    assert torch.equal(model.decode(encoded), native.decode_codes(info["ids"]))
    assert model.encode(windows.unsqueeze(1))[0].shape == encoded.shape  # (batch, 1, time, freq) too


def test_the_seed_defaults_apply_and_its_unscaled_codes_give_the_same_tokens(native, mel):
    model = seed_model(native, embed_dim=6, l2_norm=True)  # the seed's example: post_q_l2_norm defaults to False
    assert model.config["unit_codes"] is False and model.config["inv_temperature"] == 1.0 and model.config["commit_weight"] == 0.0
    encoded, _, info = model.encode(mel[:64].unsqueeze(0))
    assert set(encoded.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(info["ids"][0], encode_utterance(native, mel[:64]))
    latents, _, _ = model.encode(mel[:64].unsqueeze(0), skip_quantize=True)
    assert torch.allclose(latents.norm(dim=-1), torch.ones(32), atol=1e-5)
    legacy = {key: value for key, value in native.config.items() if key != "unit_codes"}  # a model directory from before the option
    assert AudioBSQModel(legacy).config["unit_codes"] is True


def test_seed_arguments_without_an_equivalent_are_refused_in_one_line():
    with pytest.raises(UsageError) as refused:
        AudioBSQModel(audioconfig={**AUDIOCONFIG, "drop_rate": 0.1, "time_patch_size": 4}, embed_dim=6, clamp_range=(-80, 0), ckpt_path="seed.pth")
    line = refused.value.one_line()
    assert "\n" not in line and line.startswith("error: AudioBSQModel arguments refused: ")
    for named in (
        "audioconfig.drop_rate=0.1 (audiotok's model has no dropout)",
        "audioconfig.time_patch_size=4 (audiotok's patches are square: model.patch_size)",
        "clamp_range (",
        "data.min_db, data.max_db",
        "ckpt_path (",
        "audiotok.bsq.modeldir.load(DIR)",
    ):
        assert named in line
    with pytest.raises(UsageError, match="embed_dim is required"):
        AudioBSQModel(audioconfig=AUDIOCONFIG)
    with pytest.raises(UsageError, match="unexpected arguments: dropout"):
        AudioBSQModel(audioconfig=AUDIOCONFIG, embed_dim=6, dropout=0.1)


def test_a_mel_in_db_is_refused_where_the_scaled_mel_is_expected(native, mel):
    db = MelFrontend(n_mels=32).unscale(mel[:64]).unsqueeze(0)  # the same mel in dB, within [-80, 0]
    for call in (native.encode, native, native.encode_ids, lambda x: encode_utterance(native, x[0])):
        with pytest.raises(ValueError) as refused:
            call(db)
        assert isinstance(refused.value, AudiotokError)
        message = str(refused.value)
        assert "\n" not in message and "outside the [-1, 1] the model takes: it looks like dB" in message and "scale_db" in message
    with pytest.raises(ValueError, match="NaN or Inf"):
        native.encode(torch.full((1, 64, 32), float("nan")))
    native.encode(mel[:64].unsqueeze(0) * 1.2)  # an unclamped reconstruction may pass 1 a little


SEED_YAML = """
model:
  target: transcoder.models.audiobsq.AudioBSQModel
  grad_checkpointing: true
  params:
    embed_dim: 6
    embed_group_size: 6
    l2_norm: true
    post_q_l2_norm: true
    persample_entropy_compute: analytical
    inv_temperature: 100.0
    beta: 0.25
    zeta: 10.0
    audioconfig: {audioconfig}
data:
  dataset_type: librispeech
  sample_rate: 16000
  n_mels: 32
  target_length: 32
  clamp_range: [-70, 0]
  train:
    target: transcoder.data.audio_dataset.LibriSpeechSpectrogramDataset
    params: {{root: /corpora/LibriSpeech, split: train-clean-100, n_mels: 32, target_length: 32, normalize: true, augment: false}}
  val:
    target: transcoder.data.audio_dataset.LibriSpeechSpectrogramDataset
    params: {{root: /corpora/LibriSpeech, split: dev-clean, normalize: true, augment: false}}
optimizer:
  target: torch.optim.AdamW
  max_iter: 200
  use_bf16: true
  params: {{weight_decay: 1e-4, betas: [0.9, 0.98], eps: 1e-8}}
"""

AUDIOTOK_YAML = """
model:
  {input_size: 32, input_length: 64, patch_size: 8, width: 32, layers: 1, heads: 2,
   conv_kernel_size: 3, embed_dim: 6, entropy_group_size: 6, grad_checkpointing: true}
data:
  train: /corpora/LibriSpeech/train-clean-100
  valid: /corpora/LibriSpeech/dev-clean
  segment_frames: 32
  min_db: -70
  spec_augment: {time_masks: 0, time_width: 0, freq_masks: 0, freq_width: 0}
optim: {max_steps: 200, weight_decay: 1.0e-4, betas: [0.9, 0.98], eps: 1.0e-8}
"""


def test_seed_yaml_keys_load_as_the_audiotok_keys_they_mean(tmp_path):
    (tmp_path / "seed.yaml").write_text(SEED_YAML.format(audioconfig=AUDIOCONFIG))
    (tmp_path / "audiotok.yaml").write_text(AUDIOTOK_YAML)
    assert bsq_config.load(tmp_path / "seed.yaml") == bsq_config.load(tmp_path / "audiotok.yaml")
    mixed = bsq_config.resolve({"preset": "tiny", "data": {"n_mels": 16, "target_length": 32}})  # seed keys in an audiotok file
    assert mixed["model"]["input_size"] == 16 and mixed["data"]["segment_frames"] == 32
    with pytest.raises(UsageError, match=r"data\.n_mels=40 disagrees with model\.input_size=32"):
        bsq_config.resolve(
            {"model": {"target": "transcoder.models.audiobsq.AudioBSQModel", "params": {"embed_dim": 6, "audioconfig": AUDIOCONFIG}}, "data": {"n_mels": 40}}
        )


def test_seed_yaml_keys_without_an_equivalent_are_one_line_errors_naming_the_audiotok_key(cli, tmp_path):
    text = (
        SEED_YAML.format(audioconfig=AUDIOCONFIG)
        .replace("  max_iter: 200\n", "  max_iter: 200\n  base_lr: 4e-7\n")
        .replace("  n_mels: 32\n", "  n_mels: 32\n  batch_size: 32\n")
    )
    (tmp_path / "seed.yaml").write_text(text + "loss:\n  target: transcoder.losses.vqperceptual.VQLPIPSWithDiscriminator\nwandb: {project: audio}\n")
    result = cli("bsq-train", tmp_path / "seed.yaml", "--output-dir", tmp_path / "out")
    assert result.returncode == 2
    assert_no_traceback(result.stderr)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: seed config keys refused: ")
    for named in (
        "optimizer.base_lr (optim.lr",
        "data.batch_size (the seed's is per process; optim.batch_size is the global batch",
        "loss (audiotok trains on the mel MSE plus the quantizer loss",
        "wandb (metrics go to OUTPUT_DIR/metrics.jsonl",
    ):
        assert named in line
    assert not (tmp_path / "out").exists()
