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


def frame_rms(samples: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of centred frames over zero padding, in float32 as librosa.feature.rms computes it."""
    half = frame_length // 2
    padded = np.pad(np.asarray(samples, dtype=np.float32), (half, half))
    frames = max(0, 1 + (len(padded) - frame_length) // hop_length)
    windows = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length]
    rms = np.empty(frames, dtype=np.float32)
    # Blocks of frames bound the memory (squaring copies each frame's samples); a frame's
    # mean is a sum over its own contiguous row, the same in any block.
    block = max(1, (1 << 22) // frame_length)
    for first in range(0, frames, block):
        rows = windows[first : first + block]
        rms[first : first + block] = np.sqrt(np.mean(np.square(rows, dtype=np.float32), axis=-1))
    return rms


def nonsilent_span(samples: np.ndarray, top_db: float, frame_length: int, hop_length: int) -> tuple[int, int]:
    """librosa.effects.trim's span: frames whose RMS is within top_db of the loudest frame.

    librosa's arithmetic (0.11), step for step in float32, so that a frame lying
    on the threshold is decided as librosa decides it: frame RMS, squared again,
    dB against the loudest frame with amin 1e-5 squared; the span runs from the
    first loud frame x hop to the last + 1, cut at the signal's end.
    """
    rms = frame_rms(samples, frame_length, hop_length)
    if rms.size == 0:
        return 0, len(samples)
    amin = 1e-5**2
    db = 10.0 * np.log10(np.maximum(amin, np.square(rms)))
    db -= 10.0 * np.log10(np.maximum(amin, np.max(rms) ** 2))
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
