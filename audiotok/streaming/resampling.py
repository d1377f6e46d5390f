"""Resampling a stream piece by piece with libsoxr's streaming resampler.

Resampling each piece on its own would restart the filter at every boundary
(a click each chunk). soxr's ResampleStream keeps the filter state across
pieces; at the end it is flushed and the total length is made exactly the
offline length (`audiotok.dsp.resample.resampled_length`), as `resample` does.
"""

import numpy as np

from audiotok.dsp.resample import resampled_length


class StreamResampler:
    def __init__(self, rate_in: int, rate_out: int, quality: str = "VHQ"):
        import soxr

        self.rate_in, self.rate_out = rate_in, rate_out
        self._stream = None if rate_in == rate_out else soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality=quality)
        self.samples_in = 0
        self.samples_out = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.samples_in += len(samples)
        if self._stream is None:
            return samples
        out = self._stream.resample_chunk(samples, last=False)
        return self._count(out)

    def finish(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        length = resampled_length(self.samples_in, self.rate_in, self.rate_out)
        tail = tail[: max(0, length - self.samples_out)]
        if self.samples_out + len(tail) < length:
            tail = np.pad(tail, (0, length - self.samples_out - len(tail)))
        return self._count(tail)

    def _count(self, out: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(out, dtype=np.float32)
        self.samples_out += len(out)
        return out
