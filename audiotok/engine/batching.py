"""Running a feature backend over an audio table: windows, batches, order.

Recordings longer than the window are cut into windows that start on frame
boundaries and overlap; each output frame is taken from the window in which
it lies farthest from an edge. Pieces are batched by total padded seconds,
longest first, within a block of consecutive items, and results are emitted
in input order, so outputs are keyed and sorted like the input.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from audiotok.errors import ItemError

log = logging.getLogger(__name__)


class SignalBackend:
    """Adapts a per-waveform function (fbank, mfcc, logmel) to the batch interface."""

    padding_safe = True
    batching = False

    def __init__(self, function):
        self.function = function
        self.recipe = function.recipe
        self.sample_rate = function.sample_rate
        self.dim = function.dim
        self.hop = int(round(self.sample_rate / self.recipe.frame_rate))

    def __call__(self, waves):
        return [self.function(w) for w in waves]


@dataclass
class Piece:
    key: str
    start: int  # first sample of the window in the recording
    wave: np.ndarray


def window_starts(samples: int, window: int, overlap: int, hop: int) -> list[int]:
    """Window starts (multiples of hop) covering `samples` with at least `overlap` shared samples."""
    if samples <= window:
        return [0]
    stride = max(hop, (window - overlap) // hop * hop)
    starts = list(range(0, samples - window, stride))
    last = -(-(samples - window) // hop) * hop  # the last window reaches the end
    if last > starts[-1]:
        starts.append(last)
    return starts


def stitch(pieces: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Join window outputs [(first_frame, frames)], splitting each overlap at its middle."""
    if len(pieces) == 1:
        return pieces[0][1]
    parts = []
    for i, (first, frames) in enumerate(pieces):
        begin = 0 if i == 0 else (first + pieces[i - 1][0] + len(pieces[i - 1][1])) // 2 - first
        end = len(frames) if i == len(pieces) - 1 else (pieces[i + 1][0] + first + len(frames)) // 2 - first
        parts.append(frames[max(begin, 0) : end])
    return np.concatenate(parts)


def make_batches(pieces: list[Piece], batch_seconds: float, sample_rate: int, padding_safe: bool) -> list[list[Piece]]:
    """Longest first; a batch's padded length times its size stays within batch_seconds."""
    order = sorted(pieces, key=lambda p: -len(p.wave))
    limit = batch_seconds * sample_rate
    batches: list[list[Piece]] = []
    for piece in order:
        if batches:
            current = batches[-1]
            fits = (len(current) + 1) * len(current[0].wave) <= limit
            if fits and (padding_safe or len(current[0].wave) == len(piece.wave)):
                current.append(piece)
                continue
        batches.append([piece])
    return batches


def extract_features(items: Iterable, backend, *, channel=None, batch_seconds=60.0, block=64, window_seconds=30.0, overlap_seconds=1.0, skip=None, front_end=None) -> Iterator[tuple[str, np.ndarray | ItemError]]:
    """Yield (key, features [frames, dim]) or (key, ItemError) for each item, in input order.

    skip(key) -> True leaves an item out (finished by an earlier run).
    front_end: what is done to each recording before the backend (audiotok.units.front_end;
    default: resampling to the backend's rate only).
    """
    from audiotok.units.front_end import NONE

    front_end = front_end or NONE

    rate, hop = backend.sample_rate, backend.hop
    # No window: the backend takes whole recordings (signal features have no length limit;
    # a streaming encoder with bounded context, as Step-Audio's Paraformer, is never windowed).
    if getattr(backend, "whole_recordings", False):
        window_seconds = None
    window = None if window_seconds is None else int(window_seconds * rate) // hop * hop
    overlap = int(overlap_seconds * rate)
    resampled_from: set[int] = set()

    def run_block(block_items):
        keys, failures, pieces = [], {}, []
        for item in block_items:
            keys.append(item.key)
            try:
                audio = item.load(channel)
                if audio.rate != rate and audio.rate not in resampled_from:
                    resampled_from.add(audio.rate)
                    log.info("resampling %d Hz audio to the model's %d Hz", audio.rate, rate)
                samples = front_end(audio.samples, audio.rate, rate)
            except ItemError as err:
                failures[item.key] = err
                continue
            if window is None:
                pieces.append(Piece(item.key, 0, samples))
            else:
                pieces += [Piece(item.key, s, samples[s : s + window]) for s in window_starts(len(samples), window, overlap, hop)]
        outputs: dict[str, list] = {}
        limit = batch_seconds if getattr(backend, "batching", True) else 0.0
        for batch in make_batches(pieces, limit, rate, backend.padding_safe):
            for piece, frames in zip(batch, backend([p.wave for p in batch]), strict=True):
                outputs.setdefault(piece.key, []).append((piece.start // hop, frames))
        for key in keys:
            if key in failures:
                yield key, failures[key]
                continue
            windows = sorted(outputs.get(key, []), key=lambda p: p[0])
            frames = stitch(windows) if windows else np.zeros((0, backend.dim), np.float32)
            if len(frames) == 0:
                yield key, ItemError("too short: the backend gave no frames")
            else:
                yield key, np.ascontiguousarray(frames, dtype=np.float32)

    if not getattr(backend, "batching", True):
        block = 1  # nothing to batch: stream item by item
    for chunk in in_blocks(items, block, skip):
        yield from run_block(chunk)


def in_blocks(items: Iterable, block: int, skip=None) -> Iterator[list]:
    """Consecutive items in lists of `block` (the last may be shorter), leaving out skip(key) ones."""
    pending = []
    for item in items:
        if skip is not None and skip(item.key):
            continue
        pending.append(item)
        if len(pending) >= block:
            yield pending
            pending = []
    if pending:
        yield pending
