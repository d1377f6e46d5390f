"""The S3 references, as their authors wrote them, for tests/units/test_s3_reference.py and
bench/bench_s3_fidelity.py: the s3tokenizer package (PyPI 0.3.0) as its own CLI drives it, and
Step-Audio's get_vq06_code written line by line from its tokenizer.py; plus s3tokenizer models
with seeded random weights whose codes depend on the audio."""

import numpy as np
import s3tokenizer
import soundfile as sf
import torch
from s3tokenizer.model import ModelConfig, S3Tokenizer
from s3tokenizer.model_v2 import ModelConfig as ModelConfigV2
from s3tokenizer.model_v2 import S3TokenizerV2

# The s3tokenizer model names that pick each variant (its own rule: exact names, 'v2' in the name).
NAMES = {("v1", 25): "speech_tokenizer_v1_25hz", ("v1", 50): "speech_tokenizer_v1", ("v2", 25): "speech_tokenizer_v2_25hz"}
# Real speech from the shared recordings (AUDIOTOK_TEST_AUDIO), joined into long recordings.
LONG_PARTS = ("acoustic_corpus.wav", "cold_corpus.wav", "2414-128291-0002.flac")
LONG_SECONDS = (53.0, 55.0, 65.5)  # s3tokenizer's last window: 1 s (tail lost), 3 s (part lost), 13.5 s
CODEWORD_PARTS = ("se10x016-08071999-1334_u0016002.wav", "se10x016-08071999-1334_u0016004.wav", "2412-153948-0000.flac")


def speech_clips(root) -> dict[str, tuple[np.ndarray, int]]:
    """{key: (float32 samples, rate)}: 15 s, 7.7 s at 22.05 kHz, and the long joins."""
    from pathlib import Path

    root = Path(root)
    joined = np.concatenate([sf.read(root / name, dtype="float32")[0] for name in LONG_PARTS])
    clips = {"short": (sf.read(root / "1688-142285-0000.flac", dtype="float32")[0], 16000), "lj22k": sf.read(root / "LJ050-0131.wav", dtype="float32")}
    for seconds in LONG_SECONDS:
        clips[f"long{seconds:g}"] = (joined[: int(seconds * 16000)], 16000)
    return clips


def codeword_audio(root) -> list[torch.Tensor]:
    """Other recordings, for codewords near the encoder's outputs."""
    from pathlib import Path

    return [torch.from_numpy(sf.read(Path(root) / name, dtype="float32")[0]) for name in CODEWORD_PARTS]


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


def reference_model(version: str, rate: int, codeword_audio: list[torch.Tensor], layers: int = 1):
    """An s3tokenizer model, seeded; v1 codewords from its own encoder's outputs on `codeword_audio`,
    v2's FSQ projection scaled to them (a random codebook gives one code for every frame)."""
    torch.manual_seed(rate + (7 if version == "v2" else 0))
    if version == "v2":
        model = S3TokenizerV2(NAMES[(version, rate)], ModelConfigV2(n_audio_layer=layers))
    else:
        model = S3Tokenizer(NAMES[(version, rate)], ModelConfig(n_audio_layer=layers))
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
