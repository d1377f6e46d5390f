"""The audio front end of a feature recipe: what is done to a recording between
reading it (mono, or the --channel taken) and the feature backend.

The steps run in a fixed order: resample to the backend's rate; trim leading
and trailing silence (librosa.effects.trim's rule: frames whose RMS is within
top_db of the loudest); pad zeros at the end so the length is the receptive
field plus a whole number of strides (every sample reaches a frame). The
recipe records the parameters of each step under `front_end`, and `tokenize`
replays them from there, never from a preset's name, so a bundle keeps
meaning what it meant when it was made:

    "front_end": {"name": "seed004", "resample": {"method": "soxr", "quality": "HQ"},
                  "trim": {"top_db": 30.0, "frame_length": 2048, "hop_length": 512},
                  "pad": {"stride": 320, "receptive_field": 400}}

A recipe without `front_end` (written before it was recorded) means `none`.
"""

from dataclasses import dataclass

import numpy as np

from audiotok.dsp.resample import RESAMPLERS
from audiotok.errors import AudiotokError, ItemError, UsageError

SOXR_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


@dataclass(frozen=True)
class Trim:
    top_db: float
    frame_length: int = 2048
    hop_length: int = 512


@dataclass(frozen=True)
class Pad:
    stride: int
    receptive_field: int


@dataclass(frozen=True)
class FrontEnd:
    name: str
    resampler: str = "soxr"
    quality: str = "VHQ"  # soxr only
    trim: Trim | None = None
    pad: Pad | None = None

    def __call__(self, samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
        from audiotok.dsp.resample import resample
        from audiotok.dsp.trim import nonsilent_span

        if rate != target_rate:
            samples = resample(samples, rate, target_rate, quality=self.quality, method=self.resampler)
        if self.trim is not None:
            start, end = nonsilent_span(samples, self.trim.top_db, self.trim.frame_length, self.trim.hop_length)
            samples = samples[start:end]
            if len(samples) == 0:
                raise ItemError("nothing left after trimming silence")
        if self.pad is not None:
            remainder = (len(samples) - self.pad.receptive_field) % self.pad.stride
            if remainder:
                samples = np.pad(samples, (0, self.pad.stride - remainder))
        return np.ascontiguousarray(samples, dtype=np.float32)

    def stream(self, source, target_rate: int):
        """What __call__ gives, block by block, for a long recording (an io.audio.AudioStream); None where
        the whole signal is needed (trimming looks for the loudest frame; torchaudio resamples it whole)."""
        from audiotok.dsp.resample import resampled_stream

        if self.trim is not None:
            return None
        resampled = resampled_stream(source, target_rate, self.quality, self.resampler)
        if resampled is None or self.pad is None:
            return resampled
        return PaddedStream(resampled, self.pad)

    def steps(self) -> tuple:
        """What the front end does, without its name (equal steps give equal audio)."""
        return (self.resampler, self.quality if self.resampler == "soxr" else None, self.trim, self.pad)

    def as_dict(self) -> dict:
        resample = {"method": self.resampler, "quality": self.quality} if self.resampler == "soxr" else {"method": self.resampler}
        record = {"name": self.name, "resample": resample}
        if self.trim is not None:
            record["trim"] = dict(self.trim.__dict__)
        if self.pad is not None:
            record["pad"] = dict(self.pad.__dict__)
        return record

    def describe(self) -> str:
        """One phrase for messages: `seed004 (soxr HQ resampling, trim at 30 dB ..., pad to 400 + n x 320 samples)`."""
        parts = [f"{self.resampler}{' ' + self.quality if self.resampler == 'soxr' else ''} resampling"]
        if self.trim is not None:
            parts.append(f"trim at {self.trim.top_db:g} dB over frames of {self.trim.frame_length} hop {self.trim.hop_length}")
        if self.pad is not None:
            parts.append(f"pad to {self.pad.receptive_field} + n x {self.pad.stride} samples")
        return f"{self.name} ({', '.join(parts)})"


class PaddedStream:
    """A stream with the zeros of a Pad step after its last block."""

    def __init__(self, source, pad: Pad):
        self.source, self.rate = source, source.rate
        remainder = (len(source) - pad.receptive_field) % pad.stride
        self.zeros = pad.stride - remainder if remainder else 0

    def __len__(self) -> int:
        return len(self.source) + self.zeros

    def blocks(self):
        yield from self.source.blocks()
        if self.zeros:
            yield np.zeros(self.zeros, np.float32)


# What extraction always did: libsoxr at its best quality, nothing else.
NONE = FrontEnd("none")
# Seed 004's processor before its SSL encoder: soxr.resample at python-soxr's default
# quality (HQ), librosa.effects.trim(top_db=30) with librosa's frames, and zeros to a
# whole number of the CNN's strides past its receptive field (HuBERT/wav2vec2: 320, 400).
SEED004 = FrontEnd("seed004", quality="HQ", trim=Trim(30.0), pad=Pad(320, 400))
PRESETS = {front_end.name: front_end for front_end in (NONE, SEED004)}


def preset(name: str) -> FrontEnd:
    """The front end a --front-end NAME option means."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown --front-end {name!r}", f"choose one of {', '.join(PRESETS)}") from None


def recorded_front_end(recipe: dict, where: str = "the recipe") -> FrontEnd:
    """The front end a feature recipe records (`none` when it records none)."""
    record = recipe.get("front_end")
    if record is None:
        return NONE
    try:
        return _parse(record)
    except (KeyError, TypeError, ValueError) as err:
        raise AudiotokError(f"{where}: the recorded audio front end {record!r} is not understood ({err})", "make it again with this audiotok") from None


def _parse(record: dict) -> FrontEnd:
    unknown = set(record) - {"name", "resample", "trim", "pad"}
    if unknown:
        raise ValueError(f"unknown step {sorted(unknown)[0]!r}")
    resample = record.get("resample") or {"method": "soxr", "quality": "VHQ"}
    method, quality = resample["method"], resample.get("quality", "VHQ")
    if method not in RESAMPLERS or quality not in SOXR_QUALITIES:
        raise ValueError(f"unknown resampler {method!r} {quality!r}")
    trim = record.get("trim")
    pad = record.get("pad")
    front_end = FrontEnd(
        str(record.get("name", "custom")),
        method,
        quality if method == "soxr" else "VHQ",
        None if trim is None else Trim(float(trim["top_db"]), _positive(trim["frame_length"]), _positive(trim["hop_length"])),
        None if pad is None else Pad(_positive(pad["stride"]), _positive(pad["receptive_field"], minimum=0)),
    )
    if front_end.trim is not None and front_end.trim.top_db <= 0:
        raise ValueError("trim top_db must be above 0")
    return front_end


def _positive(value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{value!r} is not a whole number >= {minimum}")
    return value
