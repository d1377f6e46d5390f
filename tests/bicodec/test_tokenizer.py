"""BiCodecTokenizer on a tiny random model loaded through the real loader."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiotok.bicodec.semantic import HIDDEN_LAYERS, frame_count
from audiotok.errors import ItemError
from tests.bicodec.signals import golden_waves, speech_like

GOLDEN = json.loads(Path(__file__).with_name("golden_reference.json").read_text())


def test_tokens_equal_spark_tts_own_code(tokenizer):
    # golden_reference.json holds the tokens Spark-TTS's BiCodecTokenizer.tokenize gives for the
    # same tiny model (tests/bicodec/make_golden.py): short (tiled reference), long, quiet inputs.
    waves = golden_waves()
    for name, result in zip(waves, tokenizer(list(waves.values())), strict=True):
        assert result == GOLDEN[name], name


def test_golden_made_again_from_spark_tts_equals_the_stored_one_and_audiotok(tokenizer, tmp_path):
    # spark-tts-lib 0.2.1 from PyPI (make venv installs it, tests/data/README.md) tokenizes the waves again.
    from tests.data.upstream import regenerate

    regenerate(Path(__file__).with_name("make_golden.py"), tmp_path / "golden.json", "spark-tts-lib")
    fresh = json.loads((tmp_path / "golden.json").read_text())
    assert fresh == GOLDEN
    waves = golden_waves()
    assert dict(zip(waves, tokenizer(list(waves.values())), strict=True)) == fresh


def test_token_counts_and_ranges(tokenizer):
    from transformers import Wav2Vec2Model

    lengths = [400, 401, 16000, 16000 * 3 + 123]
    results = tokenizer([speech_like(n / 16000, seed=i) for i, n in enumerate(lengths)])
    expected_frames = Wav2Vec2Model._get_feat_extract_output_lengths(tokenizer.semantic.model, torch.tensor(lengths)).tolist()
    assert [len(r["semantic_tokens"]) for r in results] == expected_frames == [frame_count(n) for n in lengths] == [1, 1, 49, 150]
    for r in results:
        assert set(r) == set(tokenizer.fields)
        assert len(r["global_tokens"]) == 32 and all(0 <= t < 4096 for t in r["global_tokens"])
        assert all(0 <= t < 8192 for t in r["semantic_tokens"])
        assert all(isinstance(t, int) for t in r["global_tokens"] + r["semantic_tokens"])


def test_batched_equals_one_at_a_time(tokenizer):
    waves = [speech_like(s, peak=p, seed=i) for i, (s, p) in enumerate([(3.1, 0.5), (0.6, 0.9), (7.2, 0.2), (1.75, 0.05)])]
    batched = tokenizer(waves)
    alone = [tokenizer([w])[0] for w in waves]
    assert batched == alone
    assert len({tuple(r["global_tokens"]) for r in batched}) > 1  # the speaker branch sees each clip
    latents_batched = tokenizer.latents(waves)
    for wave, latent in zip(waves, latents_batched, strict=True):
        np.testing.assert_allclose(latent, tokenizer.latents([wave])[0], atol=1e-4, rtol=0)


def test_wav2vec2_batch_with_attention_mask_equals_alone(tokenizer):
    # xlsr-53 extracts features with layer norm, so padding plus a mask is allowed.
    semantic = tokenizer.semantic
    assert semantic.padding_safe
    waves = [speech_like(s, seed=i) for i, s in enumerate([2.5, 0.7, 1.3])]
    batched = semantic(waves)
    for wave, feats in zip(waves, batched, strict=True):
        alone = semantic([wave])[0]
        assert feats.shape == alone.shape == (frame_count(len(wave)), semantic.hidden_size)
        torch.testing.assert_close(feats, alone, atol=1e-4, rtol=0)


def test_dropped_layers_leave_the_hidden_state_mix_unchanged(tiny_bicodec, tokenizer):
    from transformers import Wav2Vec2Model

    full = Wav2Vec2Model.from_pretrained(str(tiny_bicodec / "wav2vec2-large-xlsr-53")).eval()
    assert full.config.num_hidden_layers > max(HIDDEN_LAYERS) == len(tokenizer.semantic.model.encoder.layers)
    wave = speech_like(1.5, seed=7)
    inputs = torch.from_numpy(tokenizer.semantic.normalize(wave))[None]
    with torch.inference_mode():
        hidden = full(inputs, output_hidden_states=True).hidden_states
    expected = (hidden[11] + hidden[14] + hidden[16])[0] / 3
    torch.testing.assert_close(tokenizer.semantic([wave])[0], expected, atol=1e-5, rtol=0)


def plain_volume_rule(audio: np.ndarray, coeff: float = 0.2) -> np.ndarray:
    """MODELS.md's rule, written out independently in float64."""
    audio = audio.astype(np.float64)
    magnitudes = np.sort(np.abs(audio))
    if magnitudes[-1] < 0.1:
        audio = audio / max(magnitudes[-1], 1e-3) * 0.1
    loud = magnitudes[magnitudes > 0.01]
    if len(loud) <= 10:
        return audio
    gain = np.clip(coeff / loud[int(0.9 * len(loud)) : int(0.99 * len(loud))].mean(), 0.1, 10)
    audio = audio * gain
    return audio / np.abs(audio).max() if np.abs(audio).max() > 1 else audio


@pytest.mark.parametrize(
    "case",
    ["quiet", "loud", "ten_loud_samples", "eleven_loud_samples", "silence", "tiny_peak"],
)
def test_volume_normalisation_follows_the_documented_rule(tokenizer, case):
    rng = np.random.default_rng(0)
    base = rng.uniform(-0.005, 0.005, 8000).astype(np.float32)  # all below the 0.01 threshold
    if case == "quiet":
        wave = speech_like(0.5, peak=0.03)
    elif case == "loud":
        wave = speech_like(0.5, peak=1.0) * np.float32(3.0)
    elif case in ("ten_loud_samples", "eleven_loud_samples"):
        wave = base.copy()
        wave[: 10 if case == "ten_loud_samples" else 11] = np.linspace(0.2, 0.6, 10 if case == "ten_loud_samples" else 11)
    elif case == "silence":
        wave = np.zeros(8000, np.float32)
    else:  # peak under the 1e-3 floor of the first step
        wave = base * np.float32(0.1)
    prepared, references = tokenizer.prepare([wave])
    np.testing.assert_allclose(prepared[0], plain_volume_rule(wave), atol=1e-6, rtol=1e-6)
    assert references.shape == (1, 96000)


def test_reference_clip_is_the_first_six_seconds_tiled_when_shorter(tokenizer):
    assert tokenizer.reference_samples == 96000  # 16000 x 6, rounded down to 320
    short = np.arange(1000, dtype=np.float32)
    np.testing.assert_array_equal(tokenizer.reference_clip(short), np.tile(short, 97)[:96000])
    long = np.arange(100000, dtype=np.float32)
    np.testing.assert_array_equal(tokenizer.reference_clip(long), long[:96000])


def test_bad_waves_raise_item_errors(tokenizer):
    with pytest.raises(ItemError, match="too short: 399 samples"):
        tokenizer([np.zeros(399, np.float32)])
    bad = speech_like(0.5)
    bad[10] = np.nan
    with pytest.raises(ItemError, match="NaN"):
        tokenizer([bad])
    assert tokenizer([]) == []


def test_wav2vec2_as_facebook_ships_it(tiny_bicodec, tokenizer, tmp_path):
    # xlsr-53's pytorch_model.bin is a Wav2Vec2ForPreTraining pickle: `wav2vec2.` prefix, legacy
    # weight_g/weight_v on the positional convolution, pretraining heads beside it.
    import shutil

    from safetensors.torch import load_file
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    from audiotok.bicodec.tokenizer import BiCodecTokenizer
    from audiotok.errors import AudiotokError

    model = shutil.copytree(tiny_bicodec, tmp_path / "model")
    w2v = model / "wav2vec2-large-xlsr-53"
    heads = Wav2Vec2ForPreTraining(Wav2Vec2Config.from_pretrained(str(w2v))).state_dict()
    state = {k: v for k, v in heads.items() if not k.startswith("wav2vec2.")}
    legacy = {".parametrizations.weight.original0": ".weight_g", ".parametrizations.weight.original1": ".weight_v"}
    for key, tensor in load_file(str(w2v / "model.safetensors")).items():
        for new, old in legacy.items():
            key = key.replace(new, old)
        state["wav2vec2." + key] = tensor
    assert "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in state
    (w2v / "model.safetensors").unlink()
    torch.save(state, w2v / "pytorch_model.bin")
    wave = speech_like(1.0, seed=5)
    assert BiCodecTokenizer(model)([wave]) == tokenizer([wave])
    del state["wav2vec2.encoder.layers.3.attention.k_proj.weight"]
    torch.save(state, w2v / "pytorch_model.bin")
    with pytest.raises(AudiotokError, match="the wav2vec2 weights have no encoder.layers.3.attention.k_proj.weight"):
        BiCodecTokenizer(model)
