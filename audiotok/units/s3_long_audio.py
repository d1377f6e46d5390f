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
