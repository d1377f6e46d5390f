"""Level normalisation: peak (Step-Audio), percentile volume (BiCodec), RMS dB and LUFS."""

import numpy as np

from audiotok.errors import ItemError


def peak_normalize(samples: np.ndarray, peak: float = 0.999, floor: float = 0.01) -> np.ndarray:
    """Step-Audio's energy_norm: x / max(max|x|, floor) * peak."""
    return (samples / max(float(np.max(np.abs(samples))), floor) * peak).astype(np.float32)


def volume_normalize(samples: np.ndarray, coeff: float = 0.2) -> np.ndarray:
    """BiCodec's (Spark-TTS) audio_volume_normalize, step by step.

    Quiet audio (peak < 0.1) is first raised to peak 0.1; the gain then
    brings the mean of the 90-99th percentile of |x| above 0.01 (taken from
    the magnitudes sorted before that first step, as the original does) to
    `coeff`, clipped to [0.1, 10]; audio over 1.0 is scaled back to peak 1.
    """
    magnitudes = np.sort(np.abs(samples))
    audio = samples.astype(np.float64)
    if magnitudes[-1] < 0.1:
        audio = audio / max(float(magnitudes[-1]), 1e-3) * 0.1
    loud = magnitudes[magnitudes > 0.01]
    count = loud.shape[0]
    if count <= 10:
        return audio.astype(np.float32)
    volume = float(np.mean(loud[int(0.9 * count) : int(0.99 * count)]))
    audio = audio * float(np.clip(coeff / volume, 0.1, 10))
    peak = float(np.max(np.abs(audio)))
    if peak > 1:
        audio = audio / peak
    return audio.astype(np.float32)


def rms_db(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def rms_normalize(samples: np.ndarray, target_db: float) -> np.ndarray:
    level = rms_db(samples)
    if not np.isfinite(level):
        raise ItemError("digital silence: RMS level is -inf dB, nothing to normalise")
    return (samples * 10 ** ((target_db - level) / 20)).astype(np.float32)


def loudness_lufs(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4) through pyloudnorm."""
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    if len(samples) < int(meter.block_size * rate):
        raise ItemError(f"too short for a loudness measurement ({len(samples) / rate:.3f} s < {meter.block_size} s)")
    return float(meter.integrated_loudness(samples.astype(np.float64)))


def loudness_normalize(samples: np.ndarray, rate: int, target_lufs: float) -> np.ndarray:
    level = loudness_lufs(samples, rate)
    if not np.isfinite(level):
        raise ItemError("no measurable loudness (silence below the gating threshold)")
    return (samples * 10 ** ((target_lufs - level) / 20)).astype(np.float32)


def limit_peak(samples: np.ndarray, limit: float) -> np.ndarray:
    """Scale down so that max|x| <= limit (gain normalisation can push peaks past 1)."""
    peak = float(np.max(np.abs(samples)))
    return samples if peak <= limit else (samples * (limit / peak)).astype(np.float32)
