"""Bundles and signals shared by the streaming tests."""

from pathlib import Path

import numpy as np

from audiotok.tokenizers.features import open_backend
from audiotok.units.assign import open_assigner
from audiotok.units.bundle import Bundle


def babble(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """Speech-like test audio: gliding harmonics that switch every 80-250 ms, over quiet noise."""
    rng = np.random.default_rng(seed)
    out, phase = [], 0.0
    while sum(len(p) for p in out) < seconds * rate:
        n = int(rng.uniform(0.08, 0.25) * rate)
        f0 = np.linspace(rng.uniform(90, 250), rng.uniform(90, 250), n)
        phases = phase + np.cumsum(2 * np.pi * f0 / rate)
        phase = phases[-1]
        voiced = rng.random() < 0.7
        part = sum(rng.uniform(0.05, 0.3) / h * np.sin(h * phases) for h in range(1, 6)) if voiced else rng.normal(0, 0.05, n)
        out.append(part * np.hanning(n) ** 0.2)
    signal = np.concatenate(out)[: int(seconds * rate)] + rng.normal(0, 1e-3, int(seconds * rate))
    return signal.astype(np.float32)


def make_bundle(directory: Path, backend, signals: list[np.ndarray], k: int = 40, seed: int = 0) -> Path:
    """Centroids drawn from the backend's frames of `signals`, with its recipe: a bundle `tokenize` accepts."""
    frames = np.concatenate(backend(signals) if getattr(backend, "padding_safe", True) else [backend([s])[0] for s in signals])
    rng = np.random.default_rng(seed)
    Bundle(frames[rng.choice(len(frames), k, replace=False)].copy(), backend.recipe.as_dict(), {"seed": seed}).save(directory)
    return directory


def signal_bundle(directory: Path, kind: str, **options) -> Path:
    backend = open_backend(kind, **options)
    return make_bundle(directory, backend, [babble(3.0, seed=1), babble(2.0, seed=2)])


def offline_units(bundle_dir: Path, samples: np.ndarray, model=None) -> np.ndarray:
    """What `audiotok tokenize` gives for one recording (its backend, its assigner, no windowing under 30 s)."""
    from audiotok.tokenizers.features import backend_from_recipe

    bundle = Bundle.load(bundle_dir)
    backend = backend_from_recipe(bundle.recipe, "cpu", "float32", model)
    return open_assigner(bundle, "cpu")(backend([samples])[0])


def feed_in_pieces(engine, session, samples: np.ndarray, sizes) -> np.ndarray:
    """Feed `samples` cut at the given sizes (cycled), then finish; all units in order."""
    out, start, i = [], 0, 0
    while start < len(samples):
        size = int(sizes[i % len(sizes)])
        out.append(engine.feed(session, samples[start : start + size]))
        start += size
        i += 1
    out.append(engine.finish(session))
    return np.concatenate(out)
