"""Feature streams: samples in, feature frames out, each frame as soon as it is final.

Every stream has `feed(samples) -> frames [n, dim]`, `finish() -> frames` and
`buffered()` (the rows of storage it holds). Frames come in order, numbered as offline.

- Kaldi fbank/MFCC: frame t reads samples [hop t, hop t + length) (snip_edges) and
  nothing else, so running the offline computer on a slice that starts at a frame
  boundary gives the very same frames. Deltas read base frames t-4..t+4 (two passes
  of a +-2 window, edges repeated at the true start and end): a frame waits for 4
  base frames of look-ahead. Equal to offline bit for bit.
- Whisper log-mel: STFT frame t reads [hop t - 200, hop t + 200) of the reflect-padded
  signal, which is frame-local too; but Whisper floors every value at the utterance's
  maximum minus 8, a global quantity. The stream floors at the maximum seen so far,
  which differs from offline only where a later frame raises the maximum (and
  elsewhere by float rounding: 1.2e-7 at most, measured).
- Encoders with global attention (HuBERT family, Whisper's encoder, ONNX): each run
  reads [left context + chunk + look-ahead], starting on a frame boundary so its
  frame j is offline frame start / hop + j, and only the chunk's frames are kept.
- Paraformer (Step-Audio vq02): the model's own streaming session, exact by design.
"""

import logging
import threading

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.streaming.buffers import RowBuffer

log = logging.getLogger("audiotok")


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), np.float32)


class SampleStream:
    """A stream that buffers samples and emits every frame that `_emit(final)` can finish."""

    samples: RowBuffer

    def feed(self, samples: np.ndarray) -> np.ndarray:
        self.samples.append(samples)
        return self._emit(final=False)

    def finish(self) -> np.ndarray:
        return self._emit(final=True)

    def _emit(self, final: bool) -> np.ndarray:
        raise NotImplementedError


class KaldiStream(SampleStream):
    """Kaldi fbank or MFCC (with deltas when the recipe has them), equal to offline."""

    def __init__(self, features):
        options = features.options.frame_opts
        if not options.snip_edges:
            raise AudiotokError("streaming needs Kaldi features with snip_edges (the offline frame positions)")
        self.features = features
        self.length = int(round(options.samp_freq * options.frame_length_ms / 1000))
        self.hop = int(round(options.samp_freq * options.frame_shift_ms / 1000))
        self.base_dim = features.dim // (3 if features.add_deltas else 1)
        self.samples = RowBuffer()
        self.next_frame = 0
        self.deltas = DeltaStream(self.base_dim) if features.add_deltas else None

    def buffered(self) -> int:
        return self.samples.capacity + (self.deltas.frames.capacity if self.deltas else 0)

    def _emit(self, final: bool) -> np.ndarray:
        ready = 0 if self.samples.end < self.length else (self.samples.end - self.length) // self.hop + 1
        base = _empty(self.base_dim)
        if ready > self.next_frame:
            first = self.next_frame * self.hop
            base = self._compute(self.samples.view(first, (ready - 1) * self.hop + self.length))
            self.next_frame = ready
            self.samples.drop_before(ready * self.hop)
        if self.deltas is None:
            return base
        return self.deltas.feed(base, final)

    def _compute(self, samples: np.ndarray) -> np.ndarray:
        knf = self.features._knf
        computer = knf.OnlineFbank(self.features.options) if self.features.kind == "fbank" else knf.OnlineMfcc(self.features.options)
        # Scaled to int16 range exactly as the offline path scales (KaldiFeatures.__call__).
        computer.accept_waveform(float(self.features.sample_rate), (samples * 32768.0).astype(np.float32))
        computer.input_finished()
        rows = [computer.get_frame(i) for i in range(computer.num_frames_ready)]
        return np.array(rows, dtype=np.float32).reshape(-1, self.base_dim)


class DeltaStream:
    """[base, delta, delta-delta] as `features.deltas` twice over the whole utterance, frame by frame."""

    REACH = 4  # base frames on each side that a second-order delta with window 2 reads

    def __init__(self, dim: int):
        from audiotok.units.features import deltas

        self.deltas = deltas
        self.dim = dim
        self.frames = RowBuffer(dim)
        self.next_frame = 0

    def feed(self, base: np.ndarray, final: bool) -> np.ndarray:
        self.frames.append(base)
        total = self.frames.end
        stop = total if final else total - self.REACH
        if stop <= self.next_frame:
            return _empty(3 * self.dim)
        # A slice starting past frame 0 repeats a wrong edge, but only into rows that are not kept.
        low = max(0, self.next_frame - self.REACH)
        window = self.frames.view(low, min(total, stop + self.REACH))
        first = self.deltas(window)
        second = self.deltas(first)
        keep = slice(self.next_frame - low, stop - low)
        out = np.concatenate([window[keep], first[keep], second[keep]], axis=1)
        self.next_frame = stop
        self.frames.drop_before(stop - self.REACH)
        return out


class LogMelStream:
    """Whisper log-mel; the floor (maximum - 8) uses the maximum so far (see the module docstring)."""

    def __init__(self, mel):
        self.mel = mel
        self.n_fft, self.hop = mel.N_FFT, mel.HOP
        self.pad = mel.N_FFT // 2  # torch.stft(center=True) reflects this many samples at each end
        self.padded = RowBuffer()  # the reflect-padded signal, by index in it
        self.raw = np.zeros(0, np.float32)  # the first samples, until the left reflection can be built
        self.received = 0
        self.next_frame = 0
        self.maximum = -np.inf

    def feed(self, samples: np.ndarray) -> np.ndarray:
        self.received += len(samples)
        if self.padded.end == 0:
            self.raw = np.concatenate([self.raw, samples])
            if len(self.raw) <= self.pad:
                return _empty(self.mel.dim)
            self.padded.append(self.raw[1 : self.pad + 1][::-1])
            samples, self.raw = self.raw, np.zeros(0, np.float32)
        self.padded.append(samples)
        return self._emit((self.padded.end - self.n_fft) // self.hop + 1)

    def finish(self) -> np.ndarray:
        if self.padded.end == 0:
            # Too short to reflect: offline fails on it too (no frames), or gives what it gives.
            try:
                return self.mel(self.raw)
            except RuntimeError:
                return _empty(self.mel.dim)
        # The buffer always keeps more than `pad` samples past the left reflection, so the tail is there.
        tail = self.padded.view(self.padded.end - self.pad - 1, self.padded.end - 1)[::-1].copy()
        self.padded.append(tail)
        return self._emit(self.received // self.hop)

    def buffered(self) -> int:
        return self.padded.capacity

    def _emit(self, stop: int) -> np.ndarray:
        import torch

        if stop <= self.next_frame:
            return _empty(self.mel.dim)
        first = self.next_frame * self.hop
        signal = torch.from_numpy(self.padded.view(first, (stop - 1) * self.hop + self.n_fft).copy())
        stft = torch.stft(signal, self.n_fft, self.hop, window=self.mel.window, center=False, return_complex=True)
        log_spec = torch.clamp(self.mel.filters @ (stft.abs() ** 2), min=1e-10).log10()
        self.maximum = max(self.maximum, float(log_spec.max()))
        out = ((torch.maximum(log_spec, torch.tensor(self.maximum - 8.0)) + 4.0) / 4.0).T.contiguous().numpy()
        self.next_frame = stop
        self.padded.drop_before(stop * self.hop)
        return out


class EncoderStream(SampleStream):
    """A global-attention encoder on [left context + chunk + look-ahead], keeping the chunk's frames."""

    def __init__(self, backend, model_lock: threading.Lock, left_context: float, lookahead: float, max_chunk: float, extent: int | None = None):
        rate, self.hop = backend.sample_rate, backend.hop
        self.backend, self.lock = backend, model_lock
        self.left = int(round(left_context * rate / self.hop)) * self.hop  # whole frames: windows start on frame boundaries
        self.lookahead = int(round(lookahead * rate))
        self.max_frames = max(1, int(max_chunk * rate / self.hop))
        self.extent = extent or self._first_frame_extent()
        limit = getattr(backend, "window_samples", None)
        if limit is not None and self.left + self.max_frames * self.hop + self.extent + self.lookahead > limit:
            raise AudiotokError(
                f"left context + chunk + look-ahead exceed the encoder's fixed {limit / rate:g} s window",
                "lower --left-context, --lookahead or --chunk",
            )
        self.samples = RowBuffer()
        self.next_frame = 0

    def frames_in(self, samples: int) -> int:
        """How many frames the encoder gives for this many samples (offline's count)."""
        if samples <= 0:
            return 0
        if hasattr(self.backend, "output_frames"):
            return max(0, int(self.backend.output_frames(samples)))
        # An encoder that does not say (ONNX): a strided front end, from its measured first frame.
        return 0 if samples < self.extent else (samples - self.extent) // self.hop + 1

    def _first_frame_extent(self) -> int:
        """The fewest samples that give one frame: frame f ends at sample hop f + extent."""
        if hasattr(self.backend, "output_frames"):
            return next((n for n in range(1, 8 * self.hop) if self.frames_in(n) >= 1), self.hop)

        # Ask the model itself for the shortest input it gives a frame for (inputs shorter
        # than its receptive field may fail outright), by bisection.
        def gives_a_frame(samples: int) -> bool:
            try:
                with self.lock:
                    return len(self.backend([np.zeros(samples, np.float32)])[0]) >= 1
            except Exception:  # noqa: BLE001 - runtimes refuse too-short inputs in their own ways
                return False

        low, high = 0, self.hop
        while not gives_a_frame(high):
            low, high = high, 2 * high
            if high > 64 * self.hop:
                raise AudiotokError(f"the encoder gives no frame even for {high} samples: cannot stream it")
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if gives_a_frame(middle) else (middle, high)
        return high

    def buffered(self) -> int:
        return self.samples.capacity

    def _emit(self, final: bool) -> np.ndarray:
        parts = []
        while True:
            received = self.samples.end
            ready = self.frames_in(received if final else received - self.lookahead)
            if ready <= self.next_frame:
                break
            stop = min(ready, self.next_frame + self.max_frames)
            first_sample = max(0, self.next_frame * self.hop - self.left)
            last_sample = min(received, (stop - 1) * self.hop + self.extent + self.lookahead)
            window = self.samples.view(first_sample, last_sample).copy()
            with self.lock:
                rows = self.backend([window])[0]
            offset = self.next_frame - first_sample // self.hop
            kept = rows[offset : offset + stop - self.next_frame]
            if len(kept) == 0:
                break
            parts.append(np.asarray(kept, dtype=np.float32))
            self.next_frame += len(kept)
            self.samples.drop_before(max(0, self.next_frame * self.hop - self.left))
        return np.concatenate(parts) if parts else _empty(self.backend.dim)


class ParaformerStream:
    """Step-Audio's streaming Paraformer: the model's own session object."""

    def __init__(self, backend, model_lock: threading.Lock):
        self.session, self.lock, self.dim = backend.model.stream(), model_lock, backend.dim

    def feed(self, samples: np.ndarray) -> np.ndarray:
        with self.lock:
            return np.asarray(self.session.feed(samples), dtype=np.float32)

    def finish(self) -> np.ndarray:
        with self.lock:
            return np.asarray(self.session.finish(), dtype=np.float32)

    def buffered(self) -> int:
        return len(self.session.pending)


def open_stream_factory(backend, model_lock: threading.Lock, left_context: float, lookahead: float, max_chunk: float):
    """A function making one feature stream per session for this backend."""
    from audiotok.engine.batching import SignalBackend
    from audiotok.units.features import KaldiFeatures, WhisperLogMel

    if isinstance(backend, SignalBackend):
        if isinstance(backend.function, KaldiFeatures):
            return lambda: KaldiStream(backend.function)
        if isinstance(backend.function, WhisperLogMel):
            return lambda: LogMelStream(backend.function)
        raise AudiotokError(f"streaming does not support the {backend.recipe.backend!r} features")
    if backend.recipe.backend == "paraformer":
        if not hasattr(getattr(backend, "model", None), "stream"):
            raise AudiotokError("this Paraformer backend has no streaming session: streaming is not supported for it yet")
        return lambda: ParaformerStream(backend, model_lock)
    probe = EncoderStream(backend, model_lock, left_context, lookahead, max_chunk)  # checks the window limits up front
    if getattr(backend, "window_samples", None):
        log.warning(
            "Whisper's encoder reads a whole %g s window for every chunk: each chunk costs as much as that much audio offline (larger --chunk costs less)",
            backend.window_samples / backend.sample_rate,
        )
    return lambda: EncoderStream(backend, model_lock, left_context, lookahead, max_chunk, probe.extent)
