"""S3 tokenizer: PyTorch model from official-layout weights, ONNX parity, windows, errors."""

import numpy as np
import pytest
import torch

from audiotok.errors import AudiotokError
from audiotok.io.audio import Audio, AudioInfo
from audiotok.io.audio_table import AudioItem
from audiotok.units.s3 import S3Config, S3Torch, build_model, load_torch_model, s3_tokens, step_audio_check, token_count
from audiotok.units.s3_onnx import S3Onnx, export_onnx

# Tiny but shaped like the real thing: 64-dim heads, as both official models have.
TINY = dict(n_state=128, n_head=2, n_layer=2, codebook_size=64, n_ctx=1500)


def tiny_state(version: str, rate: int = 25, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = build_model(S3Config(version, rate, **TINY))
    state = model.state_dict()
    for key in ("encoder.positional_embedding", "quantizer._codebook.embed"):
        if key in state:  # buffers start at zero: give them values
            state[key] = torch.randn_like(state[key])
    return state


def save_tiny(directory, version: str, rate: int = 25, suffix: str = ".pt"):
    """Weights in the official key layout, and the same network exported to ONNX."""
    state = tiny_state(version, rate)
    weights = directory / f"s3_{version}_{rate}{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(weights))
    else:
        torch.save(state, weights)
    model = load_torch_model(weights, version, rate)
    onnx_path = export_onnx(model, directory / f"s3_{version}_{rate}.onnx")
    return weights, onnx_path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("s3")
    return {(v, r): save_tiny(directory, v, r, ".safetensors" if v == "v2" else ".pt") for v, r in (("v1", 25), ("v1", 50), ("v2", 25))}


def speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    voiced = np.sin(2 * np.pi * (120 + 40 * seed) * t * (1 + 0.1 * np.sin(2 * t)))
    return (0.3 * voiced * (1 + np.sin(5 * t)) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def item(key, samples, rate=16000):
    audio = Audio(samples.astype(np.float32), rate, AudioInfo(rate, 1, len(samples), "WAV", "FLOAT"))
    return AudioItem(key, key, key, _read=lambda channel, a=audio: a)


def tokens_of(backend, waves, batch_seconds, long_audio="s3tokenizer"):
    return {r.key: r.tokens for r in s3_tokens([item(k, w) for k, w in waves.items()], backend, batch_seconds=batch_seconds, long_audio=long_audio)}


def miss_rate(a: dict, b: dict) -> float:
    assert a.keys() == b.keys() and all(len(a[k]) == len(b[k]) for k in a)
    return sum(int((a[k] != b[k]).sum()) for k in a) / sum(len(a[k]) for k in a)


@pytest.mark.parametrize("version,rate", [("v1", 25), ("v1", 50), ("v2", 25)])
def test_onnx_and_pytorch_give_the_same_tokens(tiny, version, rate, capsys):
    weights, onnx_path = tiny[(version, rate)]
    torch_backend = S3Torch(load_torch_model(weights, version, rate), "cpu")
    onnx_backend = S3Onnx(onnx_path, "cpu", version)
    assert onnx_backend.rate == rate
    # Lengths from 0.6 s to 12 s, two of them equal so the ONNX path also batches.
    waves = {f"u{i}": speech_like(s, i) for i, s in enumerate([0.6, 2.0, 3.3, 3.3, 7.1, 12.0])}
    single_torch, single_onnx = tokens_of(torch_backend, waves, 0.0), tokens_of(onnx_backend, waves, 0.0)
    batched_torch, batched_onnx = tokens_of(torch_backend, waves, 60.0), tokens_of(onnx_backend, waves, 60.0)
    at_one, batched = miss_rate(single_torch, single_onnx), miss_rate(batched_torch, batched_onnx)
    with capsys.disabled():
        padded = miss_rate(single_torch, batched_torch)
        print(f"\n  S3 {version} {rate} Hz ONNX vs PyTorch miss rate: batch 1 {at_one:.4%}, batched {batched:.4%}; torch padded vs alone {padded:.4%}")
    assert at_one == 0.0
    assert batched < 0.005
    assert miss_rate(single_onnx, batched_onnx) == 0.0  # equal-length batches: same as one at a time
    for key, wave in waves.items():
        frames = len(wave) // 160
        conv1 = (frames - 1) // 2 + 1 if rate == 25 else frames  # conv1 has stride 2 at 25 Hz
        assert len(single_torch[key]) == token_count(frames, 100 // rate) == (conv1 - 1) // 2 + 1
        assert step_audio_check(len(single_torch[key]), len(wave) / 16000, rate)
    codes = np.concatenate(list(single_torch.values()))
    assert codes.min() >= 0 and codes.max() < (6561 if version == "v2" else TINY["codebook_size"])


def test_token_counts_follow_the_convolution_lengths():
    model = build_model(S3Config("v1", 25, **TINY)).eval()
    for frames in (1, 2, 3, 4, 5, 97, 3000):
        with torch.inference_mode():
            out = model(torch.randn(1, 128, frames), torch.tensor([frames], dtype=torch.int32))
        assert out.shape[1] == token_count(frames, 4) == ((frames - 1) // 2) // 2 + 1


class Recording:
    """An S3 backend that records the window lengths of each model call."""

    padding_safe, rate, frames_per_token = False, 25, 4

    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def __call__(self, mels):
        self.calls.append([len(m) for m in mels])
        return self.backend(mels)


def test_long_recordings_sliding_windows_are_stitched(tiny):
    backend = S3Onnx(tiny[("v1", 25)][1])
    recording = Recording(backend)
    wave = speech_like(70.0, 3)
    tokens = tokens_of(recording, {"long": wave}, 90.0, "sliding")["long"]
    assert len(tokens) == token_count(len(wave) // 160, 4) == 1750
    assert recording.calls == [[3000, 3000, 3000]]  # three 30 s windows, the last slid back; one batch
    # The middle of the first window matches a run on that window alone.
    first = tokens_of(backend, {"head": wave[: 30 * 16000]}, 0.0)["head"]
    assert miss_rate({"a": tokens[:100]}, {"a": first[:100]}) < 0.05


def test_long_recording_layouts_of_the_references(tiny):
    """s3tokenizer: windows at 0, 2600, 5200 frames, 2 s dropped at inner edges; Step-Audio: 30 s
    chunks without overlap, each with its own log-mel, a last chunk under 480 samples skipped."""
    backend = S3Onnx(tiny[("v1", 25)][1])
    wave = speech_like(70.0, 3)
    recording = Recording(backend)
    s3 = tokens_of(recording, {"long": wave}, 90.0, "s3tokenizer")["long"]
    assert recording.calls == [[3000, 3000], [1800]] and len(s3) == 700 + 650 + 400
    recording = Recording(backend)
    tail_lost = tokens_of(recording, {"long": wave[: 53 * 16000]}, 90.0, "s3tokenizer")["long"]
    assert recording.calls == [[3000], [2700], [100]] and len(tail_lost) == 1275  # not 1325: the last 2 s are lost
    recording = Recording(backend)
    chunks = tokens_of(recording, {"long": wave[: 60 * 16000 + 479]}, 90.0, "step-audio")["long"]
    assert recording.calls == [[3000, 3000]] and len(chunks) == 1500  # the 479-sample tail is skipped
    head = tokens_of(backend, {"head": wave[: 30 * 16000]}, 0.0)["head"]
    second = tokens_of(backend, {"second": wave[30 * 16000 : 60 * 16000]}, 0.0)["second"]
    assert np.array_equal(chunks, np.concatenate([head, second]))
    # Up to 30 s the three layouts agree.
    short = {"a": wave[: 29 * 16000]}
    outputs = [tokens_of(backend, short, 0.0, mode)["a"] for mode in ("s3tokenizer", "step-audio", "sliding")]
    assert all(np.array_equal(outputs[0], other) for other in outputs[1:])


def test_weights_load_from_a_directory_and_bad_files_give_one_line_errors(tiny, tmp_path):
    weights, _ = tiny[("v2", 25)]
    assert load_torch_model(weights.parent / weights.name).config.version == "v2"
    cases = {}
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    cases["garbage"] = (tmp_path / "garbage.pt", {})
    state = tiny_state("v1")
    del state["encoder.blocks.1.attn.key.weight"]
    state["encoder.blocks.1.attn.key.bias"] = torch.zeros(128)
    torch.save(state, tmp_path / "renamed.pt")
    cases["renamed"] = (tmp_path / "renamed.pt", {"rate": 25})
    cases["no rate"] = (tiny[("v1", 25)][0], {})
    cases["wrong version"] = (tiny[("v1", 25)][0], {"version": "v2", "rate": 25})
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pt")
    cases["other"] = (tmp_path / "other.pt", {})
    messages = {}
    for name, (path, kwargs) in cases.items():
        with pytest.raises(AudiotokError) as err:
            load_torch_model(path, **kwargs)
        messages[name] = err.value.one_line()
        assert "\n" not in messages[name]
    assert "missing encoder.blocks.1.attn.key.weight" in messages["renamed"] and "unexpected encoder.blocks.1.attn.key.bias" in messages["renamed"]
    assert "--rate 25" in messages["no rate"]
    assert "v1 weights" in messages["wrong version"]
    with pytest.raises(AudiotokError, match="cannot load ONNX model"):
        S3Onnx(tmp_path / "garbage.pt")
    with pytest.raises(AudiotokError, match="--rate 50"):
        S3Onnx(tiny[("v1", 25)][1], rate=50)
