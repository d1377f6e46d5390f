import numpy as np
import pytest

from audiotok.engine.batching import Piece, extract_features, make_batches, stitch, window_starts
from audiotok.engine.items import select_shard
from audiotok.errors import AudiotokError, UsageError
from audiotok.io.audio import Audio, AudioInfo
from audiotok.io.audio_table import AudioItem
from audiotok.units.assign import NearestCentroid
from audiotok.units.encoders import load_encoder
from audiotok.units.precision import PRECISION_LAYOUTS


def item(key, samples, rate=16000):
    audio = Audio(samples.astype(np.float32), rate, AudioInfo(rate, 1, len(samples), "WAV", "FLOAT"))
    return AudioItem(key, key, key, _read=lambda channel, a=audio: a)


class FrameIndexBackend:
    """Frames that hold their own position: stitching must give 0, 1, 2, ... back."""

    sample_rate, hop, dim, padding_safe = 16000, 320, 1, True
    calls = []

    def __call__(self, waves):
        self.calls.append([len(w) for w in waves])
        return [(w[::320][: (len(w) - 80) // 320 + 1, None]).astype(np.float32) for w in waves]


def test_windows_cover_the_recording_and_stitch_back_exactly():
    total = 16000 * 75 + 123
    position = (np.arange(total) // 320).astype(np.float32)  # frame index of each sample
    out = dict(extract_features([item("long", position)], FrameIndexBackend(), window_seconds=30.0, overlap_seconds=2.0))
    frames = out["long"][:, 0]
    assert len(frames) == (total - 80) // 320 + 1
    np.testing.assert_array_equal(frames, np.arange(len(frames)))
    starts = window_starts(total, 480000, 32000, 320)
    assert starts[0] == 0 and all(s % 320 == 0 for s in starts) and starts[-1] + 480000 >= total
    assert all(b - a <= 480000 - 32000 for a, b in zip(starts, starts[1:]))


def test_stitch_splits_overlaps_in_the_middle():
    pieces = [(0, np.arange(10)[:, None]), (6, np.arange(6, 16)[:, None])]
    np.testing.assert_array_equal(stitch(pieces)[:, 0], np.arange(16))


def test_batches_stay_within_padded_seconds_and_equal_lengths_without_padding():
    pieces = [Piece(str(i), 0, np.zeros(n)) for i, n in enumerate([16000, 16000, 8000, 32000, 8000, 8000])]
    safe = make_batches(pieces, 3.0, 16000, padding_safe=True)
    assert all(len(b) * len(b[0].wave) <= 48000 for b in safe)
    assert [len(p.wave) for p in safe[0]] == [32000]
    strict = make_batches(pieces, 10.0, 16000, padding_safe=False)
    assert all(len({len(p.wave) for p in b}) == 1 for b in strict)
    assert sorted(len(b) for b in strict) == [1, 2, 3]


def test_results_come_back_in_input_order_with_failures_in_place():
    from audiotok.errors import ItemError

    def broken(channel):
        raise ItemError("cannot decode audio")

    items = [item("b", np.zeros(16000)), AudioItem("c", "c", "c", _read=broken), item("a", np.zeros(3200))]
    keys = [(k, isinstance(v, ItemError)) for k, v in extract_features(items, FrameIndexBackend(), window_seconds=30.0)]
    assert keys == [("b", False), ("c", True), ("a", False)]


def test_shards_are_contiguous_and_cover_everything():
    items = list(range(10))
    parts = [select_shard(items, f"{j}/3") for j in (1, 2, 3)]
    assert parts == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    with pytest.raises(AudiotokError):
        select_shard(items, "4/3")


def speech_like(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) * (1 + np.sin(3 * t)) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def run(encoder, waves, batch_seconds):
    items = [item(f"u{i}", w) for i, w in enumerate(waves)]
    return dict(extract_features(items, encoder, batch_seconds=batch_seconds, window_seconds=30.0))


def per_utterance_loop(directory, layer, waves, normalize):
    """The baseline: one utterance at a time through the plain transformers model."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(directory)).eval()
    out = {}
    for i, wave in enumerate(waves):
        x = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7) if normalize else wave
        with torch.inference_mode():
            out[f"u{i}"] = model(torch.from_numpy(x)[None], output_hidden_states=True).hidden_states[layer][0].numpy()
    return out


def test_fp32_on_cpu_equals_the_per_utterance_loop_bit_for_bit(tiny_hubert):
    encoder = load_encoder(str(tiny_hubert), 2, "cpu", "float32")
    assert not encoder.batching
    waves = [speech_like(1.0, 0), speech_like(1.0, 1), speech_like(0.7, 2), speech_like(1.0, 3)]
    ours, loop = run(encoder, waves, 100.0), per_utterance_loop(tiny_hubert, 2, waves, normalize=False)
    for key in loop:
        np.testing.assert_array_equal(ours[key], loop[key])


def test_group_norm_encoder_batches_equal_lengths_only_and_keeps_units(tiny_hubert):
    encoder = load_encoder(str(tiny_hubert), 2, "cpu", "float32")
    encoder.batching = True  # as on CUDA or in bf16
    assert not encoder.padding_safe
    waves = [speech_like(1.0, 0), speech_like(1.0, 1), speech_like(0.7, 2), speech_like(1.0, 3)]
    batched, single = run(encoder, waves, 100.0), run(encoder, waves, 0.0)
    assign = NearestCentroid(np.concatenate(list(single.values()))[::5][:16], mode="fp32")
    for key in single:
        assert np.max(np.abs(batched[key] - single[key])) < 1e-4
        np.testing.assert_array_equal(assign(batched[key]), assign(single[key]))


def test_layer_norm_encoder_padded_batches_match_and_give_the_same_units(tiny_wav2vec2):
    encoder = load_encoder(str(tiny_wav2vec2), 2, "cpu", "float32")
    encoder.batching = True
    assert encoder.padding_safe
    waves = [speech_like(s, i) for i, s in enumerate((1.3, 0.6, 2.1, 0.9))]
    batched, single = run(encoder, waves, 100.0), run(encoder, waves, 0.0)
    centroids = np.concatenate(list(single.values()))[::7][:16]
    assign = NearestCentroid(centroids, mode="fp32")
    for key in single:
        assert batched[key].shape == single[key].shape
        assert np.max(np.abs(batched[key] - single[key])) < 1e-4
        np.testing.assert_array_equal(assign(batched[key]), assign(single[key]))


@pytest.mark.parametrize("fixture,layer", [("tiny_hubert", 0), ("tiny_hubert", 1), ("tiny_hubert", 3), ("tiny_wav2vec2", 0), ("tiny_wav2vec2", 3)])
def test_dropping_unused_layers_keeps_the_hidden_state(request, fixture, layer):
    import torch
    from transformers import AutoModel

    directory = request.getfixturevalue(fixture)
    wave = speech_like(1.0, 5)
    ours = load_encoder(str(directory), layer, "cpu", "float32")([wave])[0]
    model = AutoModel.from_pretrained(str(directory)).eval()
    normalized = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7) if fixture == "tiny_wav2vec2" else wave  # its do_normalize
    with torch.inference_mode():
        reference = model(torch.from_numpy(normalized)[None], output_hidden_states=True).hidden_states[layer][0].numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def float_parts(module) -> set:
    return {str(p.dtype).removeprefix("torch.") for p in module.parameters()}


@pytest.mark.parametrize("fixture", ["tiny_hubert", "tiny_wav2vec2"])
def test_precision_layouts_keep_their_parts_in_float32_and_stay_near_float32(request, fixture):
    directory = str(request.getfixturevalue(fixture))
    waves = [speech_like(1.0, 0)]
    reference = load_encoder(directory, 2, "cpu", "float32")(waves)[0]
    for layout in PRECISION_LAYOUTS:
        encoder = load_encoder(directory, 2, "cpu", "bfloat16", layout=layout)
        model = encoder.model
        front, layers = float_parts(model.feature_extractor), [float_parts(layer) for layer in model.encoder.layers]
        expected = {
            "uniform": ({"bfloat16"}, [{"bfloat16"}] * len(layers)),
            "fp32-cnn": ({"float32"}, [{"bfloat16"}] * len(layers)),
            "fp32-last": ({"bfloat16"}, [{"bfloat16"}] + [{"float32"}] * (len(layers) - 1)),  # layer 2 is read: layers[1:]
            "autocast": ({"float32"}, [{"float32"}] * len(layers)),
        }[layout]
        assert (front, layers) == expected, layout
        features = encoder(waves)[0]
        assert features.dtype == np.float32 and features.shape == reference.shape
        assert np.max(np.abs(features - reference)) < 0.05 * np.max(np.abs(reference)), layout


def test_precision_layouts_are_for_low_precision_encoders(tiny_hubert):
    with pytest.raises(UsageError, match="--precision-layout fp32-cnn applies to --dtype bfloat16 or float16"):
        load_encoder(str(tiny_hubert), 2, "cpu", "float32", layout="fp32-cnn")
    with pytest.raises(UsageError, match="unknown --precision-layout 'fp16-all'"):
        load_encoder(str(tiny_hubert), 2, "cpu", "bfloat16", layout="fp16-all")


def test_bad_layer_and_missing_model_are_clear_errors(tiny_hubert, tmp_path):
    with pytest.raises(AudiotokError, match="--layer 7 does not exist"):
        load_encoder(str(tiny_hubert), 7, "cpu", "float32")
    with pytest.raises(AudiotokError, match="--layer is needed"):
        load_encoder(str(tiny_hubert), None, "cpu", "float32")
    with pytest.raises(AudiotokError, match="not a local directory|no model directory"):
        load_encoder(str(tmp_path / "no" / "such" / "model"), 1, "cpu", "float32")


def test_whisper_encoder_matches_transformers_and_windows_long_audio(whisper_dir, speech_dir):
    import torch
    from transformers import WhisperFeatureExtractor, WhisperModel

    from audiotok.io.audio import decode

    wave = decode(speech_dir / "spk1_snt1.wav").samples
    encoder = load_encoder(str(whisper_dir), 4, "cpu", "float32")
    ours = encoder([wave])[0]
    features = WhisperFeatureExtractor.from_pretrained(whisper_dir)(wave, sampling_rate=16000, return_tensors="pt").input_features
    model = WhisperModel.from_pretrained(whisper_dir, dtype=torch.float32).encoder.eval()
    with torch.inference_mode():
        reference = model(features, output_hidden_states=True).hidden_states[4][0].numpy()
    assert ours.shape == (encoder.output_frames(len(wave)), 384)
    np.testing.assert_allclose(ours, reference[: len(ours)], atol=2e-4)
    long = np.concatenate([decode(speech_dir / name).samples for name in ("acoustic_corpus.wav", "cold_corpus.wav")])
    stitched = dict(extract_features([item("long", long)], encoder, window_seconds=30.0, overlap_seconds=2.0))["long"]
    assert stitched.shape == (encoder.output_frames(len(long)), 384)


def test_onnx_encoder_equals_its_pytorch_source(tmp_path):
    import warnings

    import torch

    class TinyEncoder(torch.nn.Module):
        """20 ms frames from a strided convolution, as a wav2vec2-style front end would give."""

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(1, 8, 400, stride=320)

        def forward(self, wav):
            return torch.tanh(self.conv(wav[:, None, :])).transpose(1, 2)

    torch.manual_seed(0)
    model = TinyEncoder().eval()
    path = tmp_path / "enc.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.randn(1, 16000),),
            str(path),
            input_names=["wav"],
            output_names=["feats"],
            dynamic_axes={"wav": {0: "b", 1: "t"}, "feats": {0: "b", 1: "f"}},
            dynamo=False,
        )
    encoder = load_encoder(str(path), None, "cpu", "float32")
    assert (encoder.dim, encoder.recipe.frame_rate, encoder.hop, encoder.recipe.backend) == (8, 50.0, 320, "onnx")
    waves = [speech_like(1.2, 0), speech_like(0.8, 1)]
    out = dict(extract_features([item(f"u{i}", w) for i, w in enumerate(waves)], encoder, window_seconds=30.0))
    for i, wave in enumerate(waves):
        with torch.inference_mode():
            reference = model(torch.from_numpy(wave)[None])[0].numpy()
        np.testing.assert_allclose(out[f"u{i}"], reference, atol=1e-5)
    with pytest.raises(AudiotokError, match="has no output 'nope'"):
        load_encoder(str(path), None, "cpu", "float32", onnx_output="nope")
