"""S3 tokens against code nobody here wrote: the s3tokenizer package from PyPI (0.3.0, pinned in
requirements.txt) and Step-Audio's vq06 loop written line by line from its tokenizer.py.

s3tokenizer builds its own v1 25 Hz, v1 50 Hz and v2 models (full width, 1280 x 20 heads; one
block instead of six, for speed) with seeded random weights; audiotok loads those weights through
its own loader. A random codebook gives one code for every frame, so v1's codewords are the
encoder's own (L2-normalised) outputs on other recordings and v2's FSQ projection is scaled to the
encoder's outputs; the tests require many distinct codes. Real speech from AUDIOTOK_TEST_AUDIO,
joined into 53.0, 55.0 and 65.5 s recordings: s3tokenizer's windows at 0, 2600, 5200 frames with
a last window of 1 s (the whole tail lost), 3 s (part of it lost) and 13.5 s.
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from audiotok.io.audio import Audio, AudioInfo
from audiotok.io.audio_table import AudioItem
from audiotok.units.features import WhisperLogMel
from audiotok.units.s3 import S3Torch, load_torch_model, s3_tokens

s3tokenizer = pytest.importorskip("s3tokenizer", reason="the s3tokenizer package (requirements.txt) is not installed")
from s3tokenizer.model import ModelConfig, S3Tokenizer  # noqa: E402
from s3tokenizer.model_v2 import ModelConfig as ModelConfigV2  # noqa: E402
from s3tokenizer.model_v2 import S3TokenizerV2  # noqa: E402

# The s3tokenizer model names that pick each variant (its own rule: exact names, 'v2' in the name).
NAMES = {("v1", 25): "speech_tokenizer_v1_25hz", ("v1", 50): "speech_tokenizer_v1", ("v2", 25): "speech_tokenizer_v2_25hz"}
LONG_PARTS = ("acoustic_corpus.wav", "cold_corpus.wav", "2414-128291-0002.flac")
CODEWORD_PARTS = ("se10x016-08071999-1334_u0016002.wav", "se10x016-08071999-1334_u0016004.wav", "2412-153948-0000.flac")


# ---------------------------------------------------------------- the references, as their authors wrote them


def s3tokenizer_load_audio(path: str, sr: int = 16000) -> torch.Tensor:
    """s3tokenizer.load_audio, reading with soundfile (torchaudio.load needs torchcodec here)."""
    data, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    audio = torch.from_numpy(data.T.copy())
    if sample_rate != sr:
        import torchaudio

        audio = torchaudio.transforms.Resample(sample_rate, sr)(audio)
    return audio[0]  # get the first channel


def s3tokenizer_tokens(model, audio: torch.Tensor) -> list[int]:
    """What s3tokenizer's own CLI does for one file: log-mel, padding, quantize (long audio inside)."""
    mels, mels_lens = s3tokenizer.padding([s3tokenizer.log_mel_spectrogram(audio)])
    codes, codes_lens = model.quantize(mels, mels_lens)
    return codes[0, : codes_lens[0].item()].tolist()


def step_audio_vq06(model, audio: torch.Tensor) -> list[int]:
    """Step-Audio's StepAudioTokenizer.get_vq06_code (tokenizer.py), its ONNX session replaced by
    the same network run by s3tokenizer; whisper.log_mel_spectrogram is s3tokenizer's (the same code)."""

    def split_audio(audio, chunk_duration=480000):
        start = 0
        chunks = []
        while start < len(audio):
            end = min(start + chunk_duration, len(audio))
            chunk = audio[start:end]
            if len(chunk) < 480:
                pass
            else:
                chunks.append(chunk)
            start = end
        return chunks

    audio = audio.squeeze(0)
    chunk_audios = split_audio(audio, chunk_duration=30 * 16000)
    speech_tokens = []
    for chunk in chunk_audios:
        duration = round(chunk.shape[0] / 16000, 2)
        feat = s3tokenizer.log_mel_spectrogram(chunk, n_mels=128)
        feat = feat.unsqueeze(0)
        feat_len = np.array([feat.shape[2]], dtype=np.int32)
        codes, codes_lens = model.quantize(feat, torch.from_numpy(feat_len))
        chunk_token = codes[0, : codes_lens[0].item()].flatten().tolist()
        assert abs(len(chunk_token) - duration * 25) <= 2
        speech_tokens += chunk_token
    return speech_tokens


# ---------------------------------------------------------------- models and audio


def reference_model(version: str, rate: int, codeword_audio: list[torch.Tensor]):
    torch.manual_seed(rate + (7 if version == "v2" else 0))
    if version == "v2":
        model = S3TokenizerV2(NAMES[(version, rate)], ModelConfigV2(n_audio_layer=1))
    else:
        model = S3Tokenizer(NAMES[(version, rate)], ModelConfig(n_audio_layer=1))
    model.eval()
    with torch.inference_mode():
        hidden = []
        for audio in codeword_audio:
            mels, lens = s3tokenizer.padding([s3tokenizer.log_mel_spectrogram(audio)])
            out, out_len = model.encoder(mels, lens)
            hidden.append(out[0, : out_len[0]])
        hidden = torch.cat(hidden)
        generator = torch.Generator().manual_seed(1)
        if version == "v2":
            codebook = model.quantizer._codebook.project_down
            direction = torch.randn(8, hidden.shape[1], generator=generator)
            projected = hidden @ direction.t()
            codebook.weight.copy_(direction / projected.std(0)[:, None])
            codebook.bias.copy_(-projected.mean(0) / projected.std(0))
        else:
            unit = torch.nn.functional.normalize(hidden, dim=-1)
            rows = unit[torch.randint(len(unit), (4096,), generator=generator)]
            model.quantizer._codebook.embed.copy_(rows + 0.02 * torch.randn(rows.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """{key: path}: real speech as float WAV (a short one, a 22.05 kHz one, three long joins)."""
    import os
    from pathlib import Path

    root = os.environ.get("AUDIOTOK_TEST_AUDIO")
    if not root or not Path(root).is_dir():
        pytest.skip("AUDIOTOK_TEST_AUDIO is not set (point it at ../shared/data/speech)")
    root = Path(root)
    out = tmp_path_factory.mktemp("s3ref")
    joined = np.concatenate([sf.read(root / name, dtype="float32")[0] for name in LONG_PARTS])
    clips = {"short": sf.read(root / "1688-142285-0000.flac", dtype="float32")[0]}
    for seconds in (53.0, 55.0, 65.5):
        clips[f"long{seconds:g}"] = joined[: int(seconds * 16000)]
    paths = {}
    for key, samples in clips.items():
        paths[key] = str(out / f"{key}.wav")
        sf.write(paths[key], samples, 16000, subtype="FLOAT")
    lj, lj_rate = sf.read(root / "LJ050-0131.wav", dtype="float32")
    paths["lj22k"] = str(out / "lj22k.wav")
    sf.write(paths["lj22k"], lj, lj_rate, subtype="FLOAT")
    codewords = [torch.from_numpy(sf.read(root / name, dtype="float32")[0]) for name in CODEWORD_PARTS]
    return paths, codewords, out


def audiotok_tokens(weights, version, rate, paths: dict, long_audio: str, resampler: str = "torchaudio", batch_seconds: float = 60.0) -> dict:
    from audiotok.io.audio import decode

    backend = S3Torch(load_torch_model(weights, version, rate), "cpu")

    def item(key, path):
        return AudioItem(key, path, path, _read=lambda channel, p=path: decode(p, channel))

    results = s3_tokens([item(k, p) for k, p in paths.items()], backend, long_audio=long_audio, resampler=resampler, batch_seconds=batch_seconds)
    return {r.key: r.tokens.tolist() for r in results}


def mismatches(ours: list[int], theirs: list[int]) -> str:
    if len(ours) != len(theirs):
        return f"{len(ours)} tokens vs {len(theirs)}"
    wrong = sum(a != b for a, b in zip(ours, theirs, strict=True))
    return f"{wrong}/{len(ours)} tokens differ" if wrong else ""


@pytest.fixture(scope="module")
def models(recordings, tmp_path_factory):
    """{(version, rate): (s3tokenizer model, the same weights saved for audiotok)}"""
    _, codewords, _ = recordings
    out = tmp_path_factory.mktemp("s3weights")
    found = {}
    for version, rate in NAMES:
        model = reference_model(version, rate, codewords)
        weights = out / f"{NAMES[(version, rate)]}.pt"
        torch.save(model.state_dict(), weights)
        found[(version, rate)] = (model, weights)
    return found


def test_log_mel_equals_s3tokenizer_to_the_bit(recordings):
    paths, _, _ = recordings
    mel = WhisperLogMel(128)
    for key in ("short", "lj22k", "long53"):
        audio = s3tokenizer_load_audio(paths[key])
        assert torch.equal(mel.log_mel(audio), s3tokenizer.log_mel_spectrogram(audio)), key


@pytest.mark.parametrize("version,rate", list(NAMES))
def test_s3tokenizer_mode_equals_the_package_token_for_token(models, recordings, version, rate, capsys):
    paths, _, _ = recordings
    model, weights = models[(version, rate)]
    # Every model: a short clip, a 22.05 kHz clip (torchaudio's resampler) and 53.0 s (tail lost).
    # The 25 Hz v1 also gets 55.0 s (part of the tail lost) and 65.5 s (three full windows).
    keys = ["short", "lj22k", "long53"] + (["long55", "long65.5"] if (version, rate) == ("v1", 25) else [])
    chosen = {k: paths[k] for k in keys}
    ours = audiotok_tokens(weights, version, rate, chosen, "s3tokenizer")
    theirs = {k: s3tokenizer_tokens(model, s3tokenizer_load_audio(p)) for k, p in chosen.items()}
    problems = {k: mismatches(ours[k], theirs[k]) for k in keys}
    with capsys.disabled():
        total = sum(len(t) for t in theirs.values())
        print(f"\n  s3tokenizer {NAMES[(version, rate)]}: {total} tokens, {sum(len(set(t)) for t in theirs.values())} distinct per clip summed, problems {problems}")
    assert not any(problems.values()), problems
    assert len(theirs["long53"]) == (1275 if rate == 25 else 2550)  # s3tokenizer loses the last 2 s
    for key in keys:
        assert len(set(theirs[key])) >= 0.2 * len(theirs[key]), f"{key}: too few distinct codes for a meaningful comparison"
    if (version, rate) == ("v1", 25):
        assert len(theirs["long55"]) == 1375 - 25  # the last window is 3 s: 1 s before its start + 2 s is lost
        assert len(theirs["long65.5"]) == 1638  # 13.5 s last window: nothing lost


def test_batched_and_one_at_a_time_agree_in_s3tokenizer_mode(models, recordings):
    paths, _, _ = recordings
    _, weights = models[("v1", 25)]
    chosen = {k: paths[k] for k in ("short", "lj22k", "long55")}
    assert audiotok_tokens(weights, "v1", 25, chosen, "s3tokenizer", batch_seconds=0.0) == audiotok_tokens(weights, "v1", 25, chosen, "s3tokenizer", batch_seconds=200.0)


def test_step_audio_mode_equals_step_audio_vq06_token_for_token(models, recordings):
    paths, _, _ = recordings
    model, weights = models[("v1", 25)]
    chosen = {k: paths[k] for k in ("short", "long65.5")}
    ours = audiotok_tokens(weights, "v1", 25, chosen, "step-audio")
    theirs = {k: step_audio_vq06(model, torch.from_numpy(sf.read(p, dtype="float32")[0])[None]) for k, p in chosen.items()}
    assert {k: mismatches(ours[k], theirs[k]) for k in chosen} == {k: "" for k in chosen}
    assert len(theirs["long65.5"]) == 750 + 750 + 138  # 30 s + 30 s + 5.5 s, each chunk on its own
    # Not the same as s3tokenizer's layout past 30 s: the floor and the windows differ.
    other = audiotok_tokens(weights, "v1", 25, {"long65.5": paths["long65.5"]}, "s3tokenizer")["long65.5"]
    assert len(other) == len(theirs["long65.5"]) and other != theirs["long65.5"]
