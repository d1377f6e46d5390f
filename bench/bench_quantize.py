"""quantize through the CLI vs in-memory baselines, measured in one run on the same data.

    .venv/bin/python bench/bench_quantize.py [--frames 400000] [--utt-frames 500]

For D=768 K=500 and D=1280 K=4096: a feature archive of Gaussian-mixture
frames is piped into `audiotok quantize BUNDLE` (binary ark on stdin, text
units on stdout, process start-up included) and compared with fairseq's
ApplyKmeans in NumPy and sklearn's KMeans.predict on the frames already in
memory. Prints frames/s, the speed ratios and the fraction of identical
labels; then the peak memory of the CLI for a corpus and one 4x larger.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiotok.units.bundle import Bundle  # noqa: E402


def mixture(frames, dim, k, seed):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, dim)).astype(np.float32)
    x = means[rng.integers(0, k, frames)] + 0.7 * rng.standard_normal((frames, dim)).astype(np.float32)
    centroids = means + 0.1 * rng.standard_normal((k, dim)).astype(np.float32)
    return x.astype(np.float32), centroids


def write_ark(path, x, utt_frames):
    from kaldiio.matio import write_array

    with open(path, "wb") as handle:
        for i, begin in enumerate(range(0, len(x), utt_frames)):
            handle.write(f"utt{i:07d} ".encode())
            write_array(handle, x[begin : begin + utt_frames])


def fairseq_apply_kmeans(x, centroids):
    """fairseq examples/hubert/simple_kmeans/dump_km_label.py ApplyKmeans, NumPy path."""
    c_np = centroids.T
    cnorm = (c_np**2).sum(0, keepdims=True)
    dist = (x**2).sum(1, keepdims=True) - 2 * np.matmul(x, c_np) + cnorm
    return np.argmin(dist, axis=1)


def run_cli(bundle, ark):
    """Seconds, labels and peak RSS (MB) of `audiotok quantize BUNDLE < ark > units`.

    GNU time measures the peak: a child's own rusage would include this process's memory,
    which Linux carries over a fork and exec.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(ark, "rb") as stdin, tempfile.TemporaryFile() as stdout, tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        command = ["/usr/bin/time", "-f", "%M", "-o", peak.name, sys.executable, "-m", "audiotok", "-q", "quantize", str(bundle)]
        subprocess.run(command, stdin=stdin, stdout=stdout, env=env, check=True)
        seconds = time.perf_counter() - start
        stdout.seek(0)
        text = stdout.read().decode()
        peak_mb = int(peak.read().split()[-1]) / 1024
    labels = np.concatenate([np.array(line.split()[1:], dtype=np.int64) for line in text.splitlines()])
    return seconds, labels, peak_mb


def tmp_empty_run():
    with tempfile.TemporaryDirectory() as tmp:
        Bundle(np.eye(2, dtype=np.float32), {"dim": 2}, {}).save(Path(tmp) / "km")
        (Path(tmp) / "empty.ark").write_bytes(b"")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "audiotok", "-q", "quantize", "--min-success", "0", str(Path(tmp) / "km"), f"ark:{tmp}/empty.ark"],
            env=env,
            capture_output=True,
        )
        return time.perf_counter() - start


def best(fn, repeat=2):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=400000)
    parser.add_argument("--utt-frames", type=int, default=500, help="frames per utterance in the archive (10 s at 50 Hz)")
    args = parser.parse_args()
    from sklearn.cluster import KMeans

    empty = tmp_empty_run()
    print(f"CLI start-up (an empty archive): {empty:.2f} s, included below\n")
    print(
        f"{'D':>5} {'K':>5} {'frames':>8} {'CLI fr/s':>10} {'numpy fr/s':>11} {'sklearn fr/s':>13} {'CLI/numpy':>10} {'CLI/sklearn':>12} {'same as numpy':>14}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for dim, k in ((768, 500), (1280, 4096)):
            frames = args.frames if k <= 1000 else args.frames // 4
            x, centroids = mixture(frames, dim, k, seed=dim)
            Bundle(centroids, {"dim": dim}, {}).save(tmp / "km")
            write_ark(tmp / "f.ark", x, args.utt_frames)
            numpy_t, reference = best(lambda: fairseq_apply_kmeans(x, centroids))
            km = KMeans(n_clusters=k)  # fitted by hand: predict needs only the centres
            km.cluster_centers_, km.n_features_in_, km._n_threads = centroids, dim, os.cpu_count()
            sklearn_t, _ = best(lambda: km.predict(x))
            cli_t, labels, _ = run_cli(tmp / "km", tmp / "f.ark")
            same = float(np.mean(labels == reference))
            print(
                f"{dim:>5} {k:>5} {frames:>8} {frames / cli_t:>10.0f} {frames / numpy_t:>11.0f} "
                f"{frames / sklearn_t:>13.0f} {numpy_t / cli_t:>9.2f}x {sklearn_t / cli_t:>11.2f}x {same:>14.6f}"
            )
        # Peak memory of the CLI for a corpus and one four times larger: constant if it streams.
        x, centroids = mixture(args.frames // 4, 768, 500, seed=1)
        Bundle(centroids, {"dim": 768}, {}).save(tmp / "km")
        peaks = []
        for copies in (1, 4):
            with open(tmp / "f.ark", "wb"):
                pass
            for c in range(copies):
                write_ark(tmp / "part.ark", x, args.utt_frames)
                data = (tmp / "part.ark").read_bytes().replace(b"utt", f"c{c}u".encode())
                with open(tmp / "f.ark", "ab") as handle:
                    handle.write(data)
            peaks.append(run_cli(tmp / "km", tmp / "f.ark")[2])
        print(f"\nCLI peak RSS: {peaks[0]:.0f} MB for {args.frames // 4} frames, {peaks[1]:.0f} MB for {args.frames} frames (ratio {peaks[1] / peaks[0]:.2f})")


if __name__ == "__main__":
    main()
