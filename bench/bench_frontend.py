"""Front-end speed and quality against named baselines, measured in the same run.

    .venv/bin/python bench/bench_frontend.py [--seconds 120]

resample: audiotok (libsoxr VHQ) vs torchaudio.functional.resample (default
  windowed sinc), speed as x real time and the error against the exact
  band-limited signal sampled at the new rate.
trim: audiotok's energy span (cumulative sums) vs the frame-by-frame
  definition librosa's trim uses; the two must give the same span.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from audiotok.dsp.resample import resample  # noqa: E402
from audiotok.dsp.trim import nonsilent_span  # noqa: E402


def best_time(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def chirp_mix(rate, seconds):
    """Tones inside the 8 kHz band of 16 kHz output, so both resamplers keep them."""
    return lambda tt: sum(0.2 * np.sin(2 * np.pi * f * tt) for f in (220.0, 1000.0, 3100.0, 6000.0))


def bench_resample(seconds):
    import torch
    import torchaudio.functional as AF

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    print(f"resample, {seconds:.0f} s of audio, best of 3")
    print(f"{'conversion':>14} {'VHQ xRT':>9} {'HQ xRT':>8} {'torchaudio xRT':>15} {'VHQ/ta speed':>13} {'err VHQ':>9} {'err HQ':>9} {'err torchaudio':>15}")
    for rate_in, rate_out in ((44100, 16000), (48000, 16000), (22050, 16000), (16000, 48000)):
        signal = chirp_mix(rate_in, seconds)
        x = signal(np.arange(int(rate_in * seconds)) / rate_in).astype(np.float32)
        exact = signal(np.arange(round(len(x) * rate_out / rate_in)) / rate_out)
        ours_t, ours = best_time(lambda: resample(x, rate_in, rate_out))
        hq_t, hq = best_time(lambda: resample(x, rate_in, rate_out, "HQ"))
        tensor = torch.from_numpy(x)
        theirs_t, theirs = best_time(lambda: AF.resample(tensor, rate_in, rate_out).numpy())
        inner = slice(rate_out, -rate_out)  # skip edge transients
        err_ours = float(np.max(np.abs(ours[inner] - exact[inner])))
        err_hq = float(np.max(np.abs(hq[inner] - exact[inner])))
        n = min(len(theirs), len(exact))
        err_theirs = float(np.max(np.abs(theirs[:n][inner] - exact[:n][inner])))
        print(
            f"{rate_in:>6}->{rate_out:<6} {seconds / ours_t:>9.0f} {seconds / hq_t:>8.0f} {seconds / theirs_t:>15.0f} "
            f"{theirs_t / ours_t:>12.2f}x {err_ours:>9.1e} {err_hq:>9.1e} {err_theirs:>15.1e}"
        )


def frame_loop_span(y, top_db=20, frame_length=512, hop_length=128):
    padded = np.pad(y.astype(np.float64), frame_length // 2)
    n = 1 + (len(padded) - frame_length) // hop_length
    power = np.array([np.mean(padded[i * hop_length : i * hop_length + frame_length] ** 2) for i in range(n)])
    db = 10 * np.log10(np.maximum(1e-10, power)) - 10 * np.log10(max(1e-10, power.max()))
    loud = np.flatnonzero(db > -top_db)
    return int(loud[0] * hop_length), min(len(y), int((loud[-1] + 1) * hop_length))


def bench_trim(seconds):
    rng = np.random.default_rng(0)
    rate = 16000
    y = rng.normal(0, 1e-4, int(rate * seconds)).astype(np.float32)
    y[rate:-rate] += (0.3 * np.sin(np.arange(len(y) - 2 * rate) * 0.05)).astype(np.float32)
    ours_t, ours = best_time(lambda: nonsilent_span(y, 20, 512, 128))
    base_t, base = best_time(lambda: frame_loop_span(y), repeat=1)
    assert ours == base, (ours, base)
    print(
        f"\nenergy trim span, {seconds:.0f} s at 16 kHz: audiotok {seconds / ours_t:,.0f} xRT, "
        f"frame-by-frame baseline {seconds / base_t:,.0f} xRT, ratio {base_t / ours_t:.1f}x, same span {ours}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    bench_resample(args.seconds)
    bench_trim(args.seconds)
