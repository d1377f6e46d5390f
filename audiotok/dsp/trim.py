"""Finding the speech in a recording: by frame energy (librosa's trim, Step-Audio's
padding rule) or by voice activity (silero-vad's packaged model, offline).

Both return regions in samples, `[(start, end), ...]`; `start` may be
negative and `end` past the signal when padding reaches beyond it, and
`cut_region` fills that with zeros, as Step-Audio does.
"""

import math
from dataclasses import dataclass

import numpy as np

from audiotok.errors import ItemError


@dataclass(frozen=True)
class EnergyTrim:
    top_db: float = 20.0
    frame_length: int = 512
    hop_length: int = 128
    pre_pad: float = 0.05  # seconds kept before the speech
    post_pad: float = 0.22  # seconds kept after it
    length_multiple: int = 240  # speech length rounded up to this many samples


def nonsilent_span(samples: np.ndarray, top_db: float, frame_length: int, hop_length: int) -> tuple[int, int]:
    """librosa.effects.trim's span: frames whose RMS is within top_db of the loudest frame.

    Centered frames over zero padding, power in dB against the maximum
    (amin 1e-10), span from the first loud frame * hop to the last + 1.
    """
    half = frame_length // 2
    padded = np.pad(samples.astype(np.float64), (half, half))
    frames = 1 + (len(padded) - frame_length) // hop_length
    if frames < 1:
        return 0, len(samples)
    # Sum of squares per frame from a cumulative sum: O(n) instead of materialising frames.
    cumulative = np.concatenate(([0.0], np.cumsum(padded * padded)))
    starts = np.arange(frames) * hop_length
    power = (cumulative[starts + frame_length] - cumulative[starts]) / frame_length
    power = np.maximum(power, 0.0)
    amin = 1e-10
    db = 10 * np.log10(np.maximum(amin, power)) - 10 * np.log10(max(amin, float(power.max())))
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * hop_length), min(len(samples), int((loud[-1] + 1) * hop_length))


def energy_region(samples: np.ndarray, rate: int, params: EnergyTrim) -> tuple[int, int]:
    """Step-Audio's trim_silence as a region: speech span, rounded up, with pre/post padding."""
    start, end = nonsilent_span(samples, params.top_db, params.frame_length, params.hop_length)
    blocks = math.ceil((end - start) / params.length_multiple)
    first = start - int(params.pre_pad * rate)
    length = int(blocks * params.length_multiple + (params.pre_pad + params.post_pad) * rate)
    return first, first + length


def ensure_min_length(region: tuple[int, int], min_samples: int, total: int) -> tuple[int, int]:
    """Widen a region around its centre to min_samples, shifted to lie within [0, total] where it fits."""
    start, end = region
    if end - start >= min_samples:
        return region
    start = (start + end) // 2 - min_samples // 2
    end = start + min_samples
    if start < 0:
        start, end = 0, end - start
    if end > total:
        shift = min(start, end - total)
        start, end = start - shift, end - shift
    return start, end


def cut_region(samples: np.ndarray, region: tuple[int, int]) -> np.ndarray:
    """samples[start:end], with zeros where the region reaches outside the signal."""
    start, end = region
    inner = samples[max(start, 0) : max(min(end, len(samples)), 0)]
    left, right = max(0, -start), max(0, end - max(len(samples), start))
    if left or right:
        inner = np.pad(inner, (left, right))
    return np.ascontiguousarray(inner, dtype=np.float32)


@dataclass(frozen=True)
class VadTrim:
    threshold: float = 0.5
    min_speech: float = 0.25  # seconds; shorter speech is ignored
    min_silence: float = 0.1  # seconds of silence that end a speech region
    speech_pad: float = 0.03  # seconds added on each side of a region


class SileroVad:
    """silero-vad's packaged ONNX model on the CPU; works offline."""

    RATE = 16000

    def __init__(self):
        import os

        import torch
        from silero_vad import load_silero_vad

        # silero-vad pins torch to one thread when imported; put the setting back.
        threads = torch.get_num_threads()
        self.model = load_silero_vad(onnx=True)
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", threads)))

    def regions(self, samples: np.ndarray, rate: int, params: VadTrim) -> list[tuple[int, int]]:
        """Speech regions in samples of `rate`."""
        import torch
        from silero_vad import get_speech_timestamps

        from audiotok.dsp.resample import resample

        audio16 = resample(samples, rate, self.RATE) if rate != self.RATE else samples
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(audio16)),
            self.model,
            threshold=params.threshold,
            sampling_rate=self.RATE,
            min_speech_duration_ms=int(params.min_speech * 1000),
            min_silence_duration_ms=int(params.min_silence * 1000),
            speech_pad_ms=int(params.speech_pad * 1000),
        )
        self.model.reset_states()
        scale = rate / self.RATE
        return [(int(round(s["start"] * scale)), min(len(samples), int(round(s["end"] * scale)))) for s in stamps]


def vad_region(vad: SileroVad, samples: np.ndarray, rate: int, params: VadTrim) -> tuple[int, int]:
    """From the start of the first speech region to the end of the last one."""
    regions = vad.regions(samples, rate, params)
    if not regions:
        raise ItemError("no speech found by the voice activity detector")
    return regions[0][0], regions[-1][1]


def check_region(region: tuple[int, int]) -> None:
    if region[1] <= region[0]:
        raise ItemError("nothing left after trimming")
