"""Signal-processing feature backends: Kaldi fbank and MFCC, Whisper log-mel.

Each backend maps one mono float waveform at its sample rate to a float32
matrix [frames, dim] and describes itself by a *recipe* (what a tokenizer
bundle records). Kaldi features use kaldi-native-fbank with Kaldi's
defaults (25 ms frames, 10 ms shift, snip_edges, no dither) on int16-scaled
samples, as Kaldi does; log-mel is Whisper's recipe (STFT 400/160, slaney
mel filters, log10, floor at max - 8, (x + 4) / 4).
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads with the first backend that needs it
    import torch


@dataclass
class Recipe:
    backend: str
    sample_rate: int
    frame_rate: float
    dim: int
    model: str | None = None
    model_hash: str | None = None
    layer: int | None = None
    options: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def deltas(features: np.ndarray, window: int = 2) -> np.ndarray:
    """Kaldi/torchaudio deltas: sum_n n (c[t+n] - c[t-n]) / (2 sum_n n^2), edges repeated."""
    padded = np.pad(features, ((window, window), (0, 0)), mode="edge")
    total = len(features)
    out = np.zeros_like(features)
    for n in range(1, window + 1):
        out += n * (padded[window + n : window + n + total] - padded[window - n : window - n + total])
    return out / (2 * sum(n * n for n in range(1, window + 1)))


class KaldiFeatures:
    """`fbank` (log mel filterbank, 80 bins) or `mfcc` (13 cepstra, 23 bins), Kaldi-compatible."""

    def __init__(
        self, kind: str, sample_rate: int = 16000, num_bins: int | None = None, num_ceps: int = 13, add_deltas: bool = False, use_energy: bool = False
    ):
        import kaldi_native_fbank as knf

        self.kind = kind
        self.sample_rate = sample_rate
        self.add_deltas = add_deltas
        opts = knf.FbankOptions() if kind == "fbank" else knf.MfccOptions()
        opts.frame_opts.dither = 0.0  # deterministic features
        opts.frame_opts.samp_freq = float(sample_rate)
        opts.mel_opts.num_bins = num_bins or (80 if kind == "fbank" else 23)
        opts.use_energy = use_energy
        if kind == "mfcc":
            opts.num_ceps = num_ceps
        self.options = opts
        self._knf = knf
        base = opts.mel_opts.num_bins if kind == "fbank" else num_ceps
        self.dim = base * (3 if add_deltas else 1)
        self.recipe = Recipe(
            kind,
            sample_rate,
            100.0,
            self.dim,
            options={"num_bins": opts.mel_opts.num_bins, "num_ceps": num_ceps if kind == "mfcc" else None, "deltas": add_deltas, "use_energy": use_energy},
        )

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        computer = self._knf.OnlineFbank(self.options) if self.kind == "fbank" else self._knf.OnlineMfcc(self.options)
        computer.accept_waveform(float(self.sample_rate), (samples * 32768.0).astype(np.float32))
        computer.input_finished()
        frames = np.array([computer.get_frame(i) for i in range(computer.num_frames_ready)], dtype=np.float32)
        return self._finish(frames)

    def stream(self, source) -> np.ndarray:
        """The features of a long recording given block by block (`source.blocks()`): equal to __call__ on the whole."""
        computer = self._knf.OnlineFbank(self.options) if self.kind == "fbank" else self._knf.OnlineMfcc(self.options)
        parts, taken = [], 0

        def take():
            nonlocal taken
            ready = computer.num_frames_ready
            # get_frame views the computer's memory, which pop() frees: copy first.
            parts.append(
                np.array([computer.get_frame(i) for i in range(taken, ready)], dtype=np.float32).reshape(-1, self.dim // (3 if self.add_deltas else 1))
            )
            computer.pop(ready - taken)
            taken = ready

        for block in source.blocks():
            computer.accept_waveform(float(self.sample_rate), (block * 32768.0).astype(np.float32))
            take()
        computer.input_finished()
        take()
        return self._finish(np.concatenate(parts))

    def _finish(self, frames: np.ndarray) -> np.ndarray:
        frames = frames.reshape(-1, self.dim // (3 if self.add_deltas else 1))
        if self.add_deltas and len(frames):
            first = deltas(frames)
            frames = np.concatenate([frames, first, deltas(first)], axis=1)
        return frames


def whisper_mel_filters(num_mels: int, sample_rate: int = 16000, n_fft: int = 400) -> np.ndarray:
    """librosa's slaney mel filterbank [num_mels, n_fft // 2 + 1], equal to the bit to the one Whisper
    and S3Tokenizer ship (mel_filters.npz)."""
    from transformers.audio_utils import mel_filter_bank

    # float32 before the slaney scaling, as librosa rounds: computed in float64 and cast once,
    # 80-100 entries differ in their last bit, and so can a log-mel value and a token.
    return mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=num_mels,
        min_frequency=0.0,
        max_frequency=sample_rate / 2,
        sampling_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
        dtype=np.float32,
    ).T.copy()


class WhisperLogMel:
    """Whisper's log-mel spectrogram (80 or 128 bins), 100 frames a second, on the audio's own length."""

    N_FFT, HOP = 400, 160

    def __init__(self, num_mels: int = 80, sample_rate: int = 16000):
        import torch

        if num_mels not in (80, 128):
            raise ValueError("Whisper log-mel has 80 or 128 bins")
        self.sample_rate = sample_rate
        self.dim = num_mels
        self.filters = torch.from_numpy(whisper_mel_filters(num_mels, sample_rate, self.N_FFT))
        self.window = torch.hann_window(self.N_FFT)
        self.recipe = Recipe("logmel", sample_rate, 100.0, num_mels, options={"num_mels": num_mels})

    def log_mel(self, audio) -> "torch.Tensor":
        """[num_mels, frames] for a 1-D float tensor (Whisper's log_mel_spectrogram)."""
        import torch

        stft = torch.stft(audio, self.N_FFT, self.HOP, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        mel = self.filters @ power
        log_spec = torch.clamp(mel, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        import torch

        return self.log_mel(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))).T.contiguous().numpy()
