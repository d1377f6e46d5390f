"""Sample-rate conversion: libsoxr (the resampler of SoX, the default) or torchaudio's
`transforms.Resample` with its defaults, which Step-Audio and S3Tokenizer use."""

from functools import lru_cache

import numpy as np
import soxr

RESAMPLERS = ("soxr", "torchaudio")


def resampled_length(frames: int, rate_in: int, rate_out: int) -> int:
    """Output length: the input duration in output samples, rounded to the nearest (half up)."""
    return (2 * frames * rate_out + rate_in) // (2 * rate_in)


def resample(samples: np.ndarray, rate_in: int, rate_out: int, quality: str = "VHQ", method: str = "soxr") -> np.ndarray:
    """Resample up or down.

    soxr: the length is exactly `resampled_length(...)`. torchaudio: the output of
    `torchaudio.transforms.Resample(rate_in, rate_out)` as it is (windowed sinc, Hann,
    width 6, rolloff 0.99; length ceil(frames x rate_out / rate_in)), for tokens equal to
    tools that resample that way; `quality` does not apply.
    """
    if rate_in == rate_out:
        return samples
    if method == "torchaudio":
        return _torchaudio_resample(samples, rate_in, rate_out)
    if method != "soxr":
        raise ValueError(f"unknown resampler {method!r}: choose one of {', '.join(RESAMPLERS)}")
    out = soxr.resample(samples, rate_in, rate_out, quality=quality)
    length = resampled_length(len(samples), rate_in, rate_out)
    # soxr's own length can differ from the rounded one by a sample; pad or cut to it.
    if len(out) > length:
        out = out[:length]
    elif len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return np.ascontiguousarray(out, dtype=np.float32)


@lru_cache(maxsize=8)
def _torchaudio_resampler(rate_in: int, rate_out: int):
    # The transform (not functional.resample): it builds its kernel in float64 and casts it
    # to float32, functional.resample builds it in the input's dtype; the outputs differ.
    import torchaudio

    return torchaudio.transforms.Resample(orig_freq=rate_in, new_freq=rate_out)


def _torchaudio_resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import torch

    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None, :]
    with torch.inference_mode():
        out = _torchaudio_resampler(rate_in, rate_out)(wave)[0]
    return np.ascontiguousarray(out.numpy(), dtype=np.float32)


class ResampledStream:
    """A long recording (anything with `rate`, `len()` and `blocks()`) resampled block by block with soxr:
    the blocks joined equal `resample(whole, rate_in, rate_out, quality)` sample for sample."""

    def __init__(self, source, rate_out: int, quality: str = "VHQ"):
        self.source, self.rate, self.quality = source, rate_out, quality

    def __len__(self) -> int:
        return resampled_length(len(self.source), self.source.rate, self.rate)

    def blocks(self):
        stream = soxr.ResampleStream(self.source.rate, self.rate, 1, dtype="float32", quality=self.quality)
        length, given = len(self), 0
        for block in self.source.blocks():
            out = stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32))
            out = out[: max(0, length - given)]
            given += len(out)
            if len(out):
                yield out
        out = stream.resample_chunk(np.zeros(0, np.float32), last=True)[: max(0, length - given)]
        given += len(out)
        # soxr's own length can differ from the rounded one by a sample; pad to it, as resample() does.
        if given < length:
            out = np.concatenate([out, np.zeros(length - given, np.float32)])
        if len(out):
            yield np.ascontiguousarray(out, dtype=np.float32)


def resampled_stream(source, rate_out: int, quality: str = "VHQ", method: str = "soxr"):
    """`source` at `rate_out`, block by block; None where only the whole signal can be resampled (torchaudio)."""
    if source.rate == rate_out:
        return source
    if method != "soxr":
        return None
    return ResampledStream(source, rate_out, quality)
