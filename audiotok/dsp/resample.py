"""Sample-rate conversion with libsoxr (the resampler of SoX)."""

import numpy as np
import soxr


def resampled_length(frames: int, rate_in: int, rate_out: int) -> int:
    """Output length: the input duration in output samples, rounded to the nearest (half up)."""
    return (2 * frames * rate_out + rate_in) // (2 * rate_in)


def resample(samples: np.ndarray, rate_in: int, rate_out: int, quality: str = "VHQ") -> np.ndarray:
    """Resample up or down; the length is exactly `resampled_length(...)`."""
    if rate_in == rate_out:
        return samples
    out = soxr.resample(samples, rate_in, rate_out, quality=quality)
    length = resampled_length(len(samples), rate_in, rate_out)
    # soxr's own length can differ from the rounded one by a sample; pad or cut to it.
    if len(out) > length:
        out = out[:length]
    elif len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return np.ascontiguousarray(out, dtype=np.float32)
