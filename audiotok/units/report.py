"""Unit-quality statistics of a table of discrete units, and plots of them.

    unit_summary      codebook usage, entropy, perplexity, bit rates, run lengths
    phone_unit_stats  phone purity, cluster purity and PNMI against phone alignments
                      (Hsu et al. 2021, HuBERT, section IV.C)
    compare_units     parity of two unit tables: missing keys, length mismatches, miss rate
    plot_code_usage, plot_units_spectrogram   PNG figures (matplotlib, Agg), save_figure writes one

Statistics are plain numbers (None when undefined), so a report is a flat
dict that prints as `name value` lines or one JSON object; compare_units
also lists the keys behind its counts.
"""

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.io.unit_writer import run_lengths
from audiotok.units.alignments import Interval

log = logging.getLogger("audiotok")
# Above this share of frames outside every aligned interval, the frame rate is probably wrong.
UNALIGNED_WARNING = 0.2
DPI = 100
LABEL_PIXELS = 12  # a run narrower than this on the plot is left unlabelled rather than overprinted

Units = Mapping[str, np.ndarray]


def code_counts(units: Units, k: int) -> np.ndarray:
    """How often each code 0..k-1 occurs; a code outside that range is an error naming its key."""
    counts = np.zeros(k, dtype=np.int64)
    for key, codes in units.items():
        if len(codes) and (codes.min() < 0 or codes.max() >= k):
            bad = codes.min() if codes.min() < 0 else codes.max()
            raise AudiotokError(f"{key}: code {bad} is outside 0..{k - 1}", "give the codebook size the units were made with (--k or --bundle)")
        counts += np.bincount(codes, minlength=k)
    return counts


def smallest_k(units: Units) -> int:
    """The largest code + 1: the codebook size a table without one is taken to have."""
    return 1 + max((int(codes.max()) for codes in units.values() if len(codes)), default=0)


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of the distribution that `counts` (any shape) define."""
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def unit_summary(units: Units, k: int, frame_rate: float | None = None) -> dict:
    """Codebook and rate statistics of a whole table; rates only with a frame rate (Hz)."""
    counts = code_counts(units, k)
    tokens = int(counts.sum())
    runs = sum(len(run_lengths(codes)[1]) for codes in units.values())
    entropy = entropy_bits(counts)
    used = int((counts > 0).sum())
    summary = {
        "utterances": len(units),
        "tokens": tokens,
        "k": k,
        "used_codes": used,
        "codebook_usage": used / k,
        "dead_codes": k - used,
        "entropy_bits": entropy,
        "perplexity": 2.0**entropy,
        "dedup_ratio": runs / tokens if tokens else None,
        "mean_run_length": tokens / runs if runs else None,
    }
    if frame_rate is not None:
        summary.update(
            {
                "frame_rate": frame_rate,
                "seconds": tokens / frame_rate,
                "tokens_per_s": frame_rate,
                "nominal_bits_per_s": math.log2(k) * frame_rate,  # what a fixed-length code of log2(k) bits costs
                "entropy_bits_per_s": entropy * frame_rate,  # what an ideal unigram entropy coder costs
            }
        )
    return summary


def frame_phones(intervals: list[Interval], num_frames: int, frame_rate: float) -> tuple[np.ndarray, list[str]]:
    """The phone at each frame's centre, (i + 0.5) / frame_rate.

    Returns (indices into the returned phone list, -1 where the centre lies in
    no interval) so callers can drop unaligned frames. Intervals are half-open
    [start, end) and sorted by start; where they overlap the later one wins.
    """
    phones = [phone for _, _, phone in intervals]
    if not intervals or num_frames == 0:
        return np.full(num_frames, -1, dtype=np.int64), phones
    starts = np.array([s for s, _, _ in intervals])
    ends = np.array([e for _, e, _ in intervals])
    centres = (np.arange(num_frames) + 0.5) / frame_rate
    index = np.searchsorted(starts, centres, side="right") - 1
    inside = (index >= 0) & (centres < ends[np.maximum(index, 0)])
    return np.where(inside, index, -1), phones


def purity_and_pnmi(joint_counts: np.ndarray) -> dict:
    """Phone purity, cluster purity and PNMI of a [phones, codes] count matrix (HuBERT, IV.C).

    With p(y, z) the joint distribution of phone y and code z:
    phone purity = E_z[max_y p(y|z)] = sum_z max_y p(y, z),
    cluster purity = E_y[max_z p(z|y)] = sum_y max_z p(y, z),
    PNMI = I(y; z) / H(y), undefined (None) when there is a single phone.
    """
    total = joint_counts.sum()
    if total == 0:
        return {"phone_purity": None, "cluster_purity": None, "pnmi": None}
    p = joint_counts / total
    p_phone, p_code = p.sum(axis=1), p.sum(axis=0)
    nonzero = p > 0
    outer = np.outer(p_phone, p_code)
    mutual = float((p[nonzero] * np.log2(p[nonzero] / outer[nonzero])).sum())
    phone_entropy = entropy_bits(p_phone)
    return {
        "phone_purity": float(joint_counts.max(axis=0).sum() / total),  # summed as counts: exact 1.0 when pure
        "cluster_purity": float(joint_counts.max(axis=1).sum() / total),
        "pnmi": mutual / phone_entropy if phone_entropy > 0 else None,
    }


def phone_unit_stats(units: Units, alignments: Mapping[str, list[Interval]], frame_rate: float) -> dict:
    """Match units to phones frame by frame over the keys both tables hold; purities and PNMI."""
    matched = [key for key in units if key in alignments]
    phone_ids: dict[str, int] = {}
    phone_column, code_column = [], []
    unaligned = 0
    for key in matched:
        codes = units[key]
        index, phones = frame_phones(alignments[key], len(codes), frame_rate)
        keep = index >= 0
        unaligned += int((~keep).sum())
        ids = np.array([phone_ids.setdefault(phone, len(phone_ids)) for phone in phones], dtype=np.int64)
        phone_column.append(ids[index[keep]])
        code_column.append(codes[keep])
    y = np.concatenate(phone_column) if phone_column else np.zeros(0, dtype=np.int64)
    z = np.concatenate(code_column) if code_column else np.zeros(0, dtype=np.int64)
    # Only codes that occur get a column: unused codes add nothing to any statistic.
    used_codes, z = np.unique(z, return_inverse=True)
    joint = np.zeros((len(phone_ids), len(used_codes)), dtype=np.int64)
    np.add.at(joint, (y, z), 1)
    aligned = len(y)
    if matched and unaligned > UNALIGNED_WARNING * (aligned + unaligned):
        log.warning("%d of %d frames fall outside every aligned interval: is the frame rate (%g Hz) right?", unaligned, aligned + unaligned, frame_rate)
    return {
        "aligned_utterances": len(matched),
        "units_without_alignment": len(units) - len(matched),
        "alignments_without_units": sum(1 for key in alignments if key not in units),
        "aligned_frames": aligned,
        "unaligned_frames": unaligned,
        "phones": int((joint.sum(axis=1) > 0).sum()),
        **purity_and_pnmi(joint),
    }


def compare_units(first: Units, second: Units) -> dict:
    """Token parity of two tables key by key; the miss rate counts differing tokens over the
    positions both sequences have (the shorter length where lengths differ)."""
    shared = [key for key in first if key in second]
    compared = differing = 0
    length_mismatches = []
    for key in shared:
        a, b = first[key], second[key]
        if len(a) != len(b):
            length_mismatches.append(key)
        n = min(len(a), len(b))
        compared += n
        differing += int((a[:n] != b[:n]).sum())
    return {
        "compared_utterances": len(shared),
        "only_in_units": [key for key in first if key not in second],
        "only_in_compare": [key for key in second if key not in first],
        "length_mismatches": length_mismatches,
        "compared_tokens": compared,
        "differing_tokens": differing,
        "miss_rate": differing / compared if compared else None,
    }


# ---------------------------------------------------------------- plots


def save_figure(figure, path: str | Path) -> None:
    """Draw a matplotlib Figure with Agg (no display needed) and write it as a PNG, atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from audiotok.io.atomic import atomic_open

    FigureCanvasAgg(figure)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)


def plot_code_usage(counts: np.ndarray, path: str | Path) -> None:
    """Counts per code sorted descending on a log scale: a flat curve is a well-used codebook."""
    from matplotlib.figure import Figure

    ordered = np.sort(counts)[::-1]
    used = ordered[ordered > 0]
    figure = Figure(figsize=(8, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(np.arange(1, len(used) + 1), used, drawstyle="steps-mid")
    if len(used):
        axes.set_yscale("log")
    axes.set_xlim(0, len(counts) + 1)
    axes.set_xlabel("code rank")
    axes.set_ylabel("count")
    axes.set_title(f"code usage: {len(used)} of {len(counts)} codes used")
    axes.grid(True, which="both", alpha=0.3)
    save_figure(figure, path)


def log_spectrogram(samples: np.ndarray, rate: int, window_s: float = 0.025, hop_s: float = 0.010) -> np.ndarray:
    """|STFT| in dB, [frequency bins, frames], Hann window."""
    window = int(round(window_s * rate))
    hop = int(round(hop_s * rate))
    if len(samples) < window:
        samples = np.pad(samples, (0, window - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(window), axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-10)


def plot_units_spectrogram(samples: np.ndarray, rate: int, codes: np.ndarray, frame_rate: float, path: str | Path, title: str = "") -> None:
    """A spectrogram with the unit sequence under it, one coloured span (labelled when wide enough) per run."""
    import matplotlib
    from matplotlib.figure import Figure

    duration = max(len(samples) / rate, len(codes) / frame_rate)
    spectrogram = log_spectrogram(samples, rate)
    width = min(max(8.0, 1.5 * duration), 30.0)  # inches: longer utterances get wider figures
    seconds_per_pixel = duration / (0.9 * width * DPI)  # the axes take about 90% of the width
    figure = Figure(figsize=(width, 5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(4, 1))
    top.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma", extent=(0, len(samples) / rate, 0, rate / 2000), vmin=spectrogram.max() - 80)
    top.set_ylabel("kHz")
    top.set_title(title)
    colours = matplotlib.colormaps["tab20"]
    start = 0
    for length in run_lengths(codes)[1]:
        code = int(codes[start])
        left, span = start / frame_rate, length / frame_rate
        bottom.axvspan(left, left + span, color=colours(code % colours.N))
        if span >= LABEL_PIXELS * seconds_per_pixel:
            bottom.text(left + span / 2, 0.5, str(code), ha="center", va="center", fontsize=7, rotation=90)
        start += length
    bottom.set_yticks([])
    bottom.set_xlim(0, duration)
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("units")
    save_figure(figure, path)
