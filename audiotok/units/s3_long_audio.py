"""How a recording longer than the S3 tokenizer's 30 s becomes model inputs, and how their
tokens are joined: one layout per reference system, each reproducing it token for token.

- `s3tokenizer` (the s3tokenizer package, PyPI 0.3.0, `S3Tokenizer.quantize`): one log-mel
  over the whole recording; over 3000 frames, 3000-frame windows start at 0, 2600, 5200 ...
  while the start is inside the recording (the last one shorter); the first 2 s of tokens
  of every window but the first and the last 2 s of every window but the last are dropped.
  Where the last window is under 4 s, the one before it also ends at the recording's end, and
  the audio from 2 s before the end to 2 s after the last window's start is lost (up to 2 s):
  a 53.0 s file (last window 1 s) gives 1275 tokens, not 1325.
- `step-audio` (Step-Audio's `StepAudioTokenizer.get_vq06_code`): the audio is cut into
  480000-sample (30 s) chunks without overlap, a chunk under 480 samples is skipped, each
  chunk gets its own log-mel (so its own max - 8 floor), and the tokens are concatenated.
- `sliding` (audiotok's own): one log-mel over the whole recording, 30 s windows with at
  least 4 s overlap, the last one slid back to end at the recording's end, each overlap
  split at its middle. Loses nothing and cuts no context short at a chunk edge, but matches
  no reference past 30 s.

Up to 30 s (480000 samples) the three give the same tokens.
"""

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
MEL_HOP = 160  # samples per mel frame
WINDOW_FRAMES = 3000  # 30 s of mel: the longest input the model was trained on
OVERLAP_FRAMES = 400  # 4 s shared by consecutive windows (s3tokenizer, sliding)
STEP_AUDIO_CHUNK = 480000  # 30 s of samples
STEP_AUDIO_MIN_CHUNK = 480  # Step-Audio skips shorter chunks

MODES = ("s3tokenizer", "step-audio", "sliding")
DEFAULT_MODE = "s3tokenizer"
REFERENCES = {
    "s3tokenizer": "the s3tokenizer package 0.3.0 (S3Tokenizer.quantize)",
    "step-audio": "Step-Audio's StepAudioTokenizer.get_vq06_code",
    "sliding": "no reference past 30 s (audiotok's overlapping windows)",
}


@dataclass
class Window:
    order: int  # position among the recording's windows; for `sliding` the first mel frame
    mel: np.ndarray  # [frames, n_mels]


class ReflectPadded:
    """A stream (rate, len(), blocks()) with `pad` samples mirrored at each end, as torch.stft's center=True
    pads (the edge sample not repeated)."""

    def __init__(self, source, pad: int):
        self.source, self.pad, self.rate = source, pad, source.rate

    def __len__(self) -> int:
        return len(self.source) + 2 * self.pad

    def blocks(self):
        tail = np.zeros(0, np.float32)
        for number, block in enumerate(self.source.blocks()):
            if number == 0:
                yield np.ascontiguousarray(block[1 : self.pad + 1][::-1])  # blocks are far longer than pad
            tail = np.concatenate([tail, block])
            if len(tail) > self.pad + 1:
                yield tail[: -(self.pad + 1)]
                tail = tail[-(self.pad + 1) :]
        yield tail
        yield np.ascontiguousarray(tail[-2 : -(self.pad + 2) : -1])


class StreamedLogMel:
    """The log-mel of a long 16 kHz recording a few thousand frames at a time, frame for frame equal to
    the log-mel of the whole (the STFT of a frame sees only its 400 samples; a first pass over the
    blocks finds the maximum, whose value - 8 is the floor of every frame)."""

    CHUNK = 3000  # frames a first-pass step computes

    def __init__(self, source, mel):
        import torch

        self.torch, self.mel, self.source = torch, mel, source
        self.frames = len(source) // MEL_HOP  # center=True STFT frames, less the last (Whisper drops it)
        self.padded = ReflectPadded(source, mel.N_FFT // 2)
        chunks = list(range(0, self.frames, self.CHUNK))
        reader = self._reader(chunks, self.CHUNK)
        top = max(self._log_spec(reader.read(index)).max() for index in range(len(chunks)))
        self.floor = top - 8.0  # a float32 tensor, as log_spec.max() - 8.0 is

    def _reader(self, starts: list[int], frames: int):
        """The padded samples each frame range [start, start + frames) needs, read in order."""
        from audiotok.engine.batching import StreamWindows

        ends = [min(start + frames, self.frames) for start in starts]
        return StreamWindows(self.padded, [s * MEL_HOP for s in starts], 0, ends=[(e - 1) * MEL_HOP + self.mel.N_FFT for e in ends])

    def _log_spec(self, segment: np.ndarray):
        """log10 mel power [n_mels, frames] of a padded segment (WhisperLogMel.log_mel before its floor)."""
        stft = self.torch.stft(self.torch.from_numpy(segment), self.mel.N_FFT, self.mel.HOP, window=self.mel.window, return_complex=True, center=False)
        return self.torch.clamp(self.mel.filters @ (stft.abs() ** 2), min=1e-10).log10()

    def windows(self, starts: list[int], frames: int) -> list:
        """Lazy model inputs [frames, n_mels] for the frames [start, start + frames) of each start, read in order."""
        from audiotok.engine.batching import LazyWindow

        mels = _FlooredMels(self, self._reader(starts, frames))
        return [LazyWindow(mels, index, min(start + frames, self.frames) - start) for index, start in enumerate(starts)]


class _FlooredMels:
    def __init__(self, log_mel: StreamedLogMel, reader):
        self.log_mel, self.reader = log_mel, reader

    def read(self, index: int) -> np.ndarray:
        torch = self.log_mel.torch
        log_spec = self.log_mel._log_spec(self.reader.read(index))
        return ((torch.maximum(log_spec, self.log_mel.floor) + 4.0) / 4.0).T.numpy()


class _ChunkMels:
    """Step-Audio's chunks of a stream, each with its own log-mel."""

    def __init__(self, reader, log_mel):
        self.reader, self.log_mel = reader, log_mel

    def read(self, index: int) -> np.ndarray:
        return self.log_mel(self.reader.read(index))


class Layout:
    """`windows(samples, log_mel)` -> model inputs; `join(token arrays in window order)` -> tokens."""

    def __init__(self, mode: str, frames_per_token: int):
        if mode not in MODES:
            from audiotok.errors import UsageError

            raise UsageError(f"unknown long-audio mode {mode!r}", f"choose one of {', '.join(MODES)}")
        self.mode = mode
        self.frames_per_token = frames_per_token

    def windows(self, samples: np.ndarray, log_mel) -> list[Window]:
        """log_mel(samples) -> [frames, n_mels], computed once per call (its floor is per call)."""
        if self.mode == "step-audio":
            chunks = (samples[start : start + STEP_AUDIO_CHUNK] for start in range(0, len(samples), STEP_AUDIO_CHUNK))
            return [Window(i, log_mel(chunk)) for i, chunk in enumerate(c for c in chunks if len(c) >= STEP_AUDIO_MIN_CHUNK)]
        frames = log_mel(samples)
        if len(frames) <= WINDOW_FRAMES:
            return [Window(0, frames)]
        if self.mode == "s3tokenizer":
            starts = range(0, len(frames), WINDOW_FRAMES - OVERLAP_FRAMES)
            return [Window(i, frames[start : start + WINDOW_FRAMES]) for i, start in enumerate(starts)]
        from audiotok.engine.batching import window_starts

        # Windows start on token boundaries, so window tokens line up with the recording's.
        starts = window_starts(len(frames), WINDOW_FRAMES, OVERLAP_FRAMES, self.frames_per_token)
        return [Window(start, frames[start : start + WINDOW_FRAMES]) for start in starts]

    def streamed_windows(self, source, mel, log_mel) -> tuple[list, list[Window]]:
        """What windows() gives for a long 16 kHz recording read block by block (`source`: len() and blocks()):
        lazy model inputs (engine.batching.LazyWindow), read in order as their batches run, and their Windows
        (without mels) for join(). mel: a WhisperLogMel; log_mel(samples) as for windows()."""
        from audiotok.engine.batching import LazyWindow, StreamWindows, window_starts

        if self.mode == "step-audio":
            total = len(source)
            starts = [s for s in range(0, total, STEP_AUDIO_CHUNK) if min(total, s + STEP_AUDIO_CHUNK) - s >= STEP_AUDIO_MIN_CHUNK]
            chunks = _ChunkMels(StreamWindows(source, starts, STEP_AUDIO_CHUNK), log_mel)
            pieces = [LazyWindow(chunks, i, (min(total, s + STEP_AUDIO_CHUNK) - s) // MEL_HOP) for i, s in enumerate(starts)]
            return pieces, [Window(i, None) for i in range(len(starts))]
        streamed = StreamedLogMel(source, mel)
        if streamed.frames <= WINDOW_FRAMES:
            starts = [0]
        elif self.mode == "s3tokenizer":
            starts = list(range(0, streamed.frames, WINDOW_FRAMES - OVERLAP_FRAMES))
        else:
            starts = window_starts(streamed.frames, WINDOW_FRAMES, OVERLAP_FRAMES, self.frames_per_token)
        orders = range(len(starts)) if self.mode == "s3tokenizer" else starts
        return streamed.windows(starts, WINDOW_FRAMES), [Window(order, None) for order in orders]

    def join(self, windows: list[Window], tokens: list[np.ndarray]) -> np.ndarray:
        if not tokens:
            return np.zeros(0, np.int64)
        if len(tokens) == 1 or self.mode == "step-audio":
            return np.concatenate(tokens).astype(np.int64)
        if self.mode == "s3tokenizer":
            # s3tokenizer's merge: drop half the overlap (2 s of tokens) at every inner edge,
            # with Python's slice rules (a window shorter than what is dropped gives nothing).
            drop = OVERLAP_FRAMES // 2 // self.frames_per_token
            last = len(tokens) - 1
            kept = [t[(0 if i == 0 else drop) : (len(t) if i == last else -drop)] for i, t in enumerate(tokens)]
            return np.concatenate(kept).astype(np.int64)
        from audiotok.engine.batching import stitch

        pieces = [(w.order // self.frames_per_token, t[:, None]) for w, t in zip(windows, tokens, strict=True)]
        return stitch(pieces)[:, 0].astype(np.int64)
