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

    @property
    def streams(self) -> bool:
        """Whether the function takes long recordings block by block (a `stream(source)` method)."""
        return hasattr(self.function, "stream")

    def __call__(self, waves):
        # A long recording comes as a stream (len() and blocks()), not as an array.
        return [self.function(w) if isinstance(w, np.ndarray) else self._stream(w) for w in waves]

    def _stream(self, source):
        try:
            return self.function.stream(source)
        except ItemError as err:  # a bad block (found while reading) costs its item: the error is its output
            return err


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


class StreamWindows:
    """The windows [start, start + size) of a long recording (len() and blocks()), cut from its blocks
    as they are read: windows are read in order, and only a window and a block are held at once."""

    def __init__(self, source, starts: list[int], size: int, ends: list[int] | None = None):
        self.source, self.starts, self.size = source, starts, size
        # Each window ends at start + size, at the recording's end, or where `ends` says.
        self.ends = ends or [min(start + size, len(source)) for start in starts]
        self._blocks = iter(source.blocks())
        self._buffer = np.zeros(0, np.float32)
        self._offset = 0  # the recording's sample at _buffer[0]
        self._next = 0

    def pieces(self) -> list["LazyWindow"]:
        return [LazyWindow(self, index, end - start) for index, (start, end) in enumerate(zip(self.starts, self.ends, strict=True))]

    def read(self, index: int) -> np.ndarray:
        if index != self._next:
            raise RuntimeError(f"window {index} of a stream read before window {self._next}")
        self._next += 1
        start, end = self.starts[index], self.ends[index]
        parts = [self._buffer[start - self._offset :]]
        position = self._offset + len(self._buffer)  # where the next block starts
        while position < end:
            block = next(self._blocks, None)
            if block is None:
                break
            parts.append(block[max(0, start - position) :])  # windows with a gap between them skip it
            position += len(block)
        self._buffer, self._offset = (np.concatenate(parts) if len(parts) > 1 else parts[0]), start
        if index == len(self.starts) - 1:
            for _ in self._blocks:  # the end of the stream checks the file (truncation, NaN): raises ItemError
                pass
        return np.ascontiguousarray(self._buffer[: end - start], dtype=np.float32)


@dataclass
class LazyWindow:
    """One window of StreamWindows (or of anything with read(index) called in order): its length
    for batching, its model input when its batch runs."""

    windows: object
    index: int
    length: int

    def __len__(self) -> int:
        return self.length

    def read(self) -> np.ndarray:
        return self.windows.read(self.index)


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


def map_pieces(
    items: Iterable, prepare, model, *, batch_seconds: float, rate: float, padding_safe: bool, block: int = 64, skip=None, reduce=None
) -> Iterator[tuple[str, object, object]]:
    """THE model loop: (key, outputs or ItemError, prepared) for each item, in input order.

    prepare(item) -> (waves, prepared): the pieces the model takes for this item (the windows
    of a recording, or the whole of it) and what the caller needs to join their outputs; it
    raises ItemError for an item that cannot be used, which then never reaches a batch.
    The pieces of `block` consecutive items are batched longest first, each batch's padded
    length times its size within batch_seconds (lengths in units of `rate` a second; a model
    that is not padding_safe gets pieces of one length a batch); model(waves) gives one
    output per wave. outputs: the item's piece outputs in the order prepare gave them.
    A piece may be a LazyWindow of a long recording (read when its batch runs, so a recording
    is never held whole); reduce(output), when given, is what is kept of each piece's output.
    """
    for chunk in in_blocks(items, block, skip):
        prepared: dict[str, object] = {}
        counts: dict[str, int] = {}
        pieces = []
        for item in chunk:
            try:
                waves, prepared[item.key] = prepare(item)
            except ItemError as err:
                prepared[item.key] = err
                continue
            counts[item.key] = len(waves)
            pieces += [Piece(item.key, index, wave) for index, wave in enumerate(waves)]
        outputs: dict[str, dict[int, object]] = {key: {} for key in counts}
        for batch in make_batches(pieces, batch_seconds, rate, padding_safe):
            ready = []
            for piece in batch:
                if isinstance(prepared[piece.key], ItemError):
                    continue  # another window of its recording failed
                try:
                    ready.append((piece, piece.wave.read() if isinstance(piece.wave, LazyWindow) else piece.wave))
                except ItemError as err:  # found while reading a long recording: its item fails
                    prepared[piece.key] = err
            ready = [(piece, wave) for piece, wave in ready if not isinstance(prepared[piece.key], ItemError)]
            for (piece, _), output in zip(ready, model([wave for _, wave in ready]) if ready else [], strict=True):
                outputs[piece.key][piece.start] = output if reduce is None or isinstance(output, ItemError) else reduce(output)
        for item in chunk:
            if isinstance(prepared[item.key], ItemError):
                yield item.key, prepared[item.key], None
            else:
                yield item.key, [outputs[item.key][index] for index in range(counts[item.key])], prepared[item.key]


def extract_features(
    items: Iterable,
    backend,
    *,
    channel=None,
    batch_seconds=60.0,
    block=64,
    window_seconds=30.0,
    overlap_seconds=1.0,
    skip=None,
    front_end=None,
    per_frame=None,
) -> Iterator[tuple[str, np.ndarray | ItemError]]:
    """Yield (key, features [frames, dim]) or (key, ItemError) for each item, in input order.

    skip(key) -> True leaves an item out (finished by an earlier run).
    per_frame(features) -> one value a frame (nearest-centroid units): applied to each window's
    features, so that a long recording's features are never held whole; the item's values are
    yielded instead of its features.
    front_end: what is done to each recording before the backend (audiotok.dsp.front_end;
    default: resampling to the backend's rate only).
    """
    from audiotok.dsp.front_end import NONE

    front_end = front_end or NONE

    rate, hop = backend.sample_rate, backend.hop
    # No window: the backend takes whole recordings (signal features have no length limit;
    # a streaming encoder with bounded context, as Step-Audio's Paraformer, is never windowed).
    if getattr(backend, "whole_recordings", False):
        window_seconds = None
    window = None if window_seconds is None else int(window_seconds * rate) // hop * hop
    overlap = int(overlap_seconds * rate)
    resampled_from: set[int] = set()

    def note_rate(audio_rate):
        if audio_rate != rate and audio_rate not in resampled_from:
            resampled_from.add(audio_rate)
            log.info("resampling %d Hz audio to the model's %d Hz", audio_rate, rate)

    def prepare(item):
        stream = long_stream(item, channel) if window is not None or getattr(backend, "streams", False) else None
        streamed = None if stream is None else front_end.stream(stream, rate)
        if streamed is not None:
            note_rate(stream.rate)
            if window is None:
                return [streamed], [0]
            starts = window_starts(len(streamed), window, overlap, hop)
            return StreamWindows(streamed, starts, window).pieces(), starts
        audio = item.load(channel)
        note_rate(audio.rate)
        samples = front_end(audio.samples, audio.rate, rate)
        starts = [0] if window is None else window_starts(len(samples), window, overlap, hop)
        return [samples if window is None else samples[s : s + window] for s in starts], starts

    batching = getattr(backend, "batching", True)
    limit = batch_seconds if batching else 0.0
    # Nothing to batch: stream item by item.
    for key, outputs, starts in map_pieces(
        items,
        prepare,
        backend,
        batch_seconds=limit,
        rate=rate,
        padding_safe=backend.padding_safe,
        block=block if batching else 1,
        skip=skip,
        reduce=per_frame,
    ):
        outputs = next((o for o in outputs if isinstance(o, ItemError)), outputs) if isinstance(outputs, list) else outputs
        if isinstance(outputs, ItemError):
            yield key, outputs
            continue
        frames = stitch([(start // hop, frames) for start, frames in zip(starts, outputs, strict=True)])
        if len(frames) == 0:
            yield key, ItemError("too short: the backend gave no frames")
        else:
            yield key, frames if per_frame is not None else np.ascontiguousarray(frames, dtype=np.float32)


def long_stream(item, channel):
    """The item's recording block by block when it is long (audiotok.io.audio.long_seconds), else None."""
    stream = getattr(item, "stream", None)
    return None if stream is None else stream(channel)


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
