"""Scores of a trained tokenizer on whole utterances.

mel MSE and MAE on the scaled mel ([-1, 1]; x 40 gives dB), between the input and
its encode -> decode reconstruction; the baseline predicts every frame of an
utterance by that utterance's mean spectrum (what a model that ignores time would
do). SI-SNR compares the Griffin-Lim resynthesis of the reconstruction with the
Griffin-Lim resynthesis of the original mel (same iterations, same seeded start),
so it measures what the tokens lose, not what Griffin-Lim loses.
"""

import numpy as np
import torch
import torch.nn.functional as F

from audiotok.errors import ItemError


def si_snr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SNR in dB (zero-mean signals, projection on the reference)."""
    length = min(len(estimate), len(reference))
    estimate = estimate[:length].astype(np.float64) - estimate[:length].mean()
    reference = reference[:length].astype(np.float64) - reference[:length].mean()
    energy = np.dot(reference, reference)
    if energy <= 0:
        raise ItemError("silent reference: SI-SNR is undefined")
    target = np.dot(estimate, reference) / energy * reference
    noise = estimate - target
    return float(10.0 * np.log10(max(np.dot(target, target), 1e-20) / max(np.dot(noise, noise), 1e-20)))


def mel_scores(model, mel: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Scores of one utterance's scaled mel through encode -> decode, and the reconstruction."""
    from audiotok.bsq.tokens import reconstruct_utterance

    weight = next(model.parameters())
    mel = mel.to(weight.device, weight.dtype)
    _, rebuilt = reconstruct_utterance(model, mel)
    scores = {
        "frames": mel.shape[0],
        "mse": F.mse_loss(rebuilt, mel).item(),
        "mae": F.l1_loss(rebuilt, mel).item(),
        "baseline_mse": F.mse_loss(mel.mean(0, keepdim=True).expand_as(mel), mel).item(),
        "baseline_mae": F.l1_loss(mel.mean(0, keepdim=True).expand_as(mel), mel).item(),
    }
    return scores, rebuilt


def utterance_scores(model, frontend, samples: np.ndarray, griffin_lim_iterations: int = 0) -> dict:
    if len(samples) == 0:
        raise ItemError("no samples")
    mel = frontend(samples)
    scores, rebuilt = mel_scores(model, mel)
    if griffin_lim_iterations:
        original = frontend.griffin_lim(mel.float().cpu(), griffin_lim_iterations)
        resynthesised = frontend.griffin_lim(rebuilt.float().cpu(), griffin_lim_iterations)
        scores["si_snr"] = si_snr(resynthesised, original)
    return scores


def summarise(rows: list[dict]) -> dict:
    """Frame-weighted means over utterances (long utterances count for their length)."""
    frames = np.array([r["frames"] for r in rows], dtype=np.float64)
    summary = {"utterances": len(rows), "frames": int(frames.sum())}
    for name in ("mse", "mae", "baseline_mse", "baseline_mae", "si_snr"):
        if rows and name in rows[0]:
            summary[name] = float(np.average([r[name] for r in rows], weights=frames))
    if summary.get("baseline_mse"):
        summary["mse_over_baseline"] = summary["mse"] / summary["baseline_mse"]
    return summary
