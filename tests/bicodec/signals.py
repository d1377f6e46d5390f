"""Deterministic speech-like test signals shared by the BiCodec tests and the golden-file script."""

import numpy as np

RATE = 16000

# name -> (seconds, peak, seed): short (reference clip tiled), mid, longer than the 6 s clip, quiet.
GOLDEN_CASES = {"short": (0.3, 0.5, 1), "mid": (2.0, 0.8, 2), "long": (6.5, 0.3, 3), "quiet": (1.2, 0.04, 4)}


def speech_like(seconds: float, peak: float = 0.5, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding pitch under a syllable-rate envelope, plus a little noise; float32 at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(RATE * seconds))) / RATE
    pitch = 110 + 40 * seed + 25 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * (3.0 + 0.5 * seed) * t)
    x = voiced * envelope + 0.05 * rng.standard_normal(len(t))
    return (x / np.max(np.abs(x)) * peak).astype(np.float32)


def golden_waves() -> dict[str, np.ndarray]:
    return {name: speech_like(*case) for name, case in GOLDEN_CASES.items()}
