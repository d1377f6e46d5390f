"""The frontend of FunASR's online Paraformer, as Step-Audio runs it: Kaldi fbank, LFR, CMVN.

80 log-mel bins from torchaudio's Kaldi fbank (hamming window, 25 ms frames every
10 ms, snip_edges, energy_floor 0, no dither) on samples scaled by 32768; then low
frame rate (LFR) stacking of 7 fbank frames every 6, with 3 copies of frame 0 in
front and the last frame repeated past the end: 560 dims, one frame per 60 ms;
then (x + shift) * scale with the two vectors of `am.mvn`.

How many frames. Step-Audio feeds FunASR 240 ms steps (3840 samples, 4 LFR frames)
and its fork of `WavFrontendOnline` emits the last, shorter step only when that
step's fbank rows plus the one row still pending reach 7 (upstream FunASR later
added `is_final or` to that test). So a recording whose last piece holds 400..879
samples loses its last LFR frame: `step_audio_frame_count` reproduces that count,
and both the offline and the streaming paths here follow it.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads with the first backend that needs it
    import torch


@dataclass(frozen=True)
class FrontendConfig:
    sample_rate: int = 16000
    num_mels: int = 80
    frame_length_ms: int = 25
    frame_shift_ms: int = 10
    lfr_m: int = 7
    lfr_n: int = 6
    window: str = "hamming"

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * self.frame_length_ms // 1000

    @property
    def shift_samples(self) -> int:
        return self.sample_rate * self.frame_shift_ms // 1000

    @property
    def dim(self) -> int:
        return self.num_mels * self.lfr_m

    @property
    def left_copies(self) -> int:
        return (self.lfr_m - 1) // 2

    @property
    def hop(self) -> int:
        """Samples per LFR frame."""
        return self.lfr_n * self.shift_samples

    def fbank_frames(self, samples: int) -> int:
        return 0 if samples < self.frame_samples else (samples - self.frame_samples) // self.shift_samples + 1


def step_audio_frame_count(samples: int, config: FrontendConfig, step_frames: int) -> int:
    """LFR frames Step-Audio's streaming call gives for `samples` (see the module docstring).

    Every full step of `step_frames * hop` samples emits `step_frames` frames and leaves
    one padded fbank row pending; the last step emits only if its rows reach lfr_m.
    """
    full_steps = samples // (step_frames * config.hop)
    rows_left = config.fbank_frames(samples) + config.left_copies - full_steps * step_frames * config.lfr_n
    tail = -(-(rows_left - config.left_copies) // config.lfr_n) if rows_left >= config.lfr_m else 0
    return full_steps * step_frames + tail


def read_am_mvn(path) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) from a Kaldi nnet1 text file: the vectors after <AddShift> and <Rescale>.

    Each sits on the `<LearnRateCoef> 0 [ ... ]` line that follows its component tag.
    Raises ValueError naming what is missing or malformed.
    """
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    found: dict[str, np.ndarray] = {}
    for tag, following in zip(lines, lines[1:] + [""], strict=True):
        name = tag.split()[0] if tag.split() else ""
        if name not in ("<AddShift>", "<Rescale>"):
            continue
        tokens = following.split()
        if len(tokens) < 4 or tokens[0] != "<LearnRateCoef>" or tokens[2] != "[" or tokens[-1] != "]":
            raise ValueError(f"{name} is not followed by a '<LearnRateCoef> R [ ... ]' line")
        try:
            found[name] = np.array(tokens[3:-1], dtype=np.float32)
        except ValueError:
            raise ValueError(f"{name} holds a value that is not a number") from None
    for name in ("<AddShift>", "<Rescale>"):
        if name not in found:
            raise ValueError(f"no {name} vector")
        if not np.all(np.isfinite(found[name])):
            raise ValueError(f"{name} holds NaN or Inf")
    return found["<AddShift>"], found["<Rescale>"]


class ParaformerFrontend:
    """Samples (float, 16 kHz) -> normalised LFR frames [frames, 560], offline or streamed."""

    def __init__(self, shift: np.ndarray, scale: np.ndarray, config: FrontendConfig = FrontendConfig(), step_frames: int = 4):
        import torch

        self.torch = torch
        self.config = config
        self.step_frames = step_frames
        if shift.shape != (config.dim,) or scale.shape != (config.dim,):
            raise ValueError(f"CMVN vectors have {shift.shape[0]} and {scale.shape[0]} values; expected {config.dim}")
        self.shift = torch.from_numpy(np.ascontiguousarray(shift, dtype=np.float32))
        self.scale = torch.from_numpy(np.ascontiguousarray(scale, dtype=np.float32))

    def frame_count(self, samples: int) -> int:
        return step_audio_frame_count(samples, self.config, self.step_frames)

    def fbank(self, samples) -> "torch.Tensor":
        """Kaldi fbank [frames, num_mels] of a float32 tensor, as FunASR computes it."""
        from torchaudio.compliance import kaldi

        c = self.config
        if len(samples) < c.frame_samples:
            return self.torch.zeros(0, c.num_mels)
        return kaldi.fbank(
            (samples * (1 << 15)).unsqueeze(0),
            num_mel_bins=c.num_mels,
            frame_length=c.frame_length_ms,
            frame_shift=c.frame_shift_ms,
            dither=0.0,
            energy_floor=0.0,
            window_type=c.window,
            sample_frequency=c.sample_rate,
        )

    def stack(self, rows, count: int) -> "torch.Tensor":
        """LFR frames 0..count-1 of fbank `rows` given in padded coordinates (left copies included),
        repeating the last row where a frame reaches past the end; then CMVN."""
        c = self.config
        needed = (count - 1) * c.lfr_n + c.lfr_m if count else 0
        if len(rows) < needed:
            rows = self.torch.cat([rows, rows[-1:].expand(needed - len(rows), -1)])
        frames = rows[:needed].unfold(0, c.lfr_m, c.lfr_n).transpose(1, 2).reshape(count, c.dim)
        return (frames + self.shift) * self.scale

    def __call__(self, samples: np.ndarray) -> "torch.Tensor":
        """All frames of one recording at once (the offline path)."""
        torch = self.torch
        count = self.frame_count(len(samples))
        if count == 0:
            return torch.zeros(0, self.config.dim)
        rows = self.fbank(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)))
        rows = torch.cat([rows[:1].expand(self.config.left_copies, -1), rows])
        return self.stack(rows, count)

    def stream(self) -> "FrontendStream":
        return FrontendStream(self)


class FrontendStream:
    """The same frames, emitted as audio arrives; state stays under one LFR window of audio."""

    def __init__(self, frontend: ParaformerFrontend):
        self.frontend = frontend
        self.config = frontend.config
        self.samples_seen = 0
        self.emitted = 0  # LFR frames given out so far
        self.pending_samples = np.zeros(0, np.float32)  # from the start of the next fbank frame
        self.rows = None  # fbank rows in padded coordinates from LFR frame `emitted`'s first row on

    def feed(self, samples: np.ndarray) -> "torch.Tensor":
        torch, c = self.frontend.torch, self.config
        self.samples_seen += len(samples)
        self.pending_samples = np.concatenate([self.pending_samples, np.asarray(samples, dtype=np.float32)])
        new_rows = c.fbank_frames(len(self.pending_samples))
        if new_rows:
            fbank = self.frontend.fbank(torch.from_numpy(self.pending_samples[: (new_rows - 1) * c.shift_samples + c.frame_samples]))
            self.pending_samples = self.pending_samples[new_rows * c.shift_samples :]
            if self.rows is None:
                self.rows = fbank[:1].expand(c.left_copies, -1)
            self.rows = torch.cat([self.rows, fbank])
        # A frame is complete once all lfr_m of its rows exist; it never needs end padding then.
        complete = 0 if self.rows is None else max(0, (len(self.rows) - c.lfr_m) // c.lfr_n + 1)
        return self._emit(complete)

    def finish(self) -> "torch.Tensor":
        """The last frames, padded at the end, as many as Step-Audio's count allows."""
        remaining = self.frontend.frame_count(self.samples_seen) - self.emitted
        return self._emit(max(0, remaining))

    def _emit(self, count: int) -> "torch.Tensor":
        c = self.config
        if count == 0:
            return self.frontend.torch.zeros(0, c.dim)
        frames = self.frontend.stack(self.rows, count)
        self.rows = self.rows[count * c.lfr_n :]
        self.emitted += count
        return frames
