"""quantize through the CLI vs sklearn and faiss on frames already in memory, alternated, same data.

    .venv/bin/python bench/bench_quantize.py [--frames 2000000] [--frames-large 2000000] [--rounds 3] [--profile]

For D=768 K=500 and D=1280 K=4096 a Kaldi archive of Gaussian-mixture frames (500-frame
utterances, written in chunks: never whole in memory), and with --real-features the frames of a
real feature archive (K=500 centroids fitted on them; the frames repeated up to --frames: real
features leave many more frames in doubt than a mixture's well-separated clusters), is piped into
`audiotok quantize BUNDLE`:
binary ark on stdin, text units on stdout, process start-up included. The peers get the same
frames as one in-memory float32 array and do no I/O: sklearn's `KMeans.predict` and faiss's
`IndexFlatL2.search` (k=1), both on every core. Rounds alternate the three.

Labels: the CLI's are compared with a float64 argmin of squared distances (fairseq's
ApplyKmeans arithmetic) on a seeded sample of 100k frames, and with sklearn's on every frame;
where those two differ, the float64 distances of that frame decide who was right.
Also printed: start-up on an empty archive, peak RSS for a corpus and one four times larger
(constant if it streams), and with --profile the time split of one CLI run (cProfile).
"""

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import Results, alternate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiotok.units.bundle import Bundle  # noqa: E402

UTTERANCE = 500  # frames an utterance: 10 s at 50 Hz
CHUNK = 100_000


def mixture(frames: int, dim: int, k: int, seed: int):
    """Centroids, and a generator of frame chunks drawn around them (the same frames each call)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, dim), dtype=np.float32)
    centroids = means + 0.1 * rng.standard_normal((k, dim), dtype=np.float32)

    def chunks():
        draw = np.random.default_rng(seed + 1)
        for start in range(0, frames, CHUNK):
            n = min(CHUNK, frames - start)
            yield means[draw.integers(0, k, n)] + 0.7 * draw.standard_normal((n, dim), dtype=np.float32)

    return centroids, chunks


def write_ark(path: Path, chunks, prefix: str = "utt") -> None:
    number = 0
    with open(path, "wb") as handle:
        for x in chunks():
            for start in range(0, len(x), UTTERANCE):
                m = x[start : start + UTTERANCE]
                handle.write(f"{prefix}{number:08d} ".encode() + b"\0BFM \4" + struct.pack("<i", len(m)) + b"\4" + struct.pack("<i", m.shape[1]) + m.tobytes())
                number += 1


def cli_command(bundle: Path) -> list[str]:
    return [sys.executable, "-m", "audiotok", "-v", "quantize", str(bundle)]


DOUBT = {}  # the CLI's last report of the frames its screen left in doubt


def run_cli(bundle: Path, ark: Path, wrapper: list[str] = ()) -> tuple[float, np.ndarray]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(ark, "rb") as stdin, tempfile.TemporaryFile() as stdout:
        start = time.perf_counter()
        done = subprocess.run([*wrapper, *cli_command(bundle)], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"audiotok quantize failed:\n{done.stderr.decode()}")
        DOUBT["line"] = next((line for line in done.stderr.decode().splitlines() if "left in doubt" in line), "")
        stdout.seek(0)
        lines = stdout.read().split(b"\n")
    labels = np.array(b" ".join(line.partition(b" ")[2] for line in lines if line).split(), dtype=np.int64)
    return seconds, labels


def peak_rss_mb(bundle: Path, ark: Path) -> float:
    """Peak RSS of the CLI, measured by GNU time (a child's rusage would count this process too)."""
    with tempfile.NamedTemporaryFile("r") as peak:
        run_cli(bundle, ark, ["/usr/bin/time", "-f", "%M", "-o", peak.name])
        return int(peak.read().split()[-1]) / 1024


def startup_seconds(rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        Bundle(np.eye(2, dtype=np.float32), {"dim": 2}, {}).save(Path(tmp) / "km")
        (Path(tmp) / "empty.ark").write_bytes(b"")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [*cli_command(Path(tmp) / "km"), f"ark:{tmp}/empty.ark", "--min-success", "0"]
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True)
            times.append(time.perf_counter() - start)
        return times


def float64_argmin(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    c = c.astype(np.float64)
    norms = (c**2).sum(1)
    out = []
    for start in range(0, len(x), 4096):
        part = x[start : start + 4096].astype(np.float64)
        out.append(np.argmin((part**2).sum(1, keepdims=True) - 2 * part @ c.T + norms, axis=1))
    return np.concatenate(out)


def check_labels(results: Results, case: str, x: np.ndarray, c: np.ndarray, ours: np.ndarray, sklearn: np.ndarray) -> None:
    sample = np.sort(np.random.default_rng(0).choice(len(x), min(len(x), 100_000), replace=False))
    same64 = float(np.mean(float64_argmin(x[sample], c) == ours[sample]))
    results.fact(case, "identical to a float64 argmin (100k-frame sample)", f"{same64:.6%}")
    differ = np.flatnonzero(ours != sklearn)
    if len(differ):
        right = float64_argmin(x[differ], c)
        ours_right = int(np.sum(right == ours[differ]))
        results.fact(case, "frames where CLI and sklearn differ", f"{len(differ)} of {len(x)}: float64 sides with the CLI in {ours_right}")
    else:
        results.fact(case, "frames where CLI and sklearn differ", f"0 of {len(x)}")


def profile_split(bundle: Path, ark: Path) -> None:
    """Where one CLI run spends its time. The main thread's timeline: reading and parsing the
    archive and writing text (cProfile), packing blocks and waiting for the labelling worker
    (the CLI's own debug counters), the rest being start-up and imports; the worker's screen
    (the product, top scores and bound) and float64 re-scoring overlap the main thread's reading."""
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        profile = f"{tmp}/cli.prof"
        with open(ark, "rb") as stdin:
            start = time.perf_counter()
            command = [sys.executable, "-m", "cProfile", "-o", profile, *cli_command(bundle)[1:]]
            done = subprocess.run(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=True)
            wall = time.perf_counter() - start
        stats = pstats.Stats(profile).stats
    counters = next(line for line in done.stderr.decode().splitlines() if "assignment seconds:" in line).partition("assignment seconds: ")[2]
    counted = {name: float(value) for name, _, value in (part.rpartition(" ") for part in counters.split(", "))}

    def cumulative(file_part: str, function: str) -> float:
        return sum(v[3] for (file, _, func), v in stats.items() if file.endswith(file_part) and func == function)

    main = {
        "archive reading and parsing": cumulative("io/archives.py", "ark_entries"),
        "packing frames into blocks": counted["packing"],
        "waiting for the labelling worker": counted["waiting for the worker"],
        "text formatting and writing": cumulative("io/unit_writer.py", "write"),
    }
    print(f"\n  time split of one CLI run ({wall:.2f} s wall under cProfile, start-up included):")
    for name, value in main.items():
        print(f"    {name:<46} {value:7.2f} s  {value / wall:6.1%}")
    rest = wall - sum(main.values())
    print(f"    {'start-up, imports, bundle, the rest':<46} {rest:7.2f} s  {rest / wall:6.1%}")
    print("    in the worker thread, overlapping the above:")
    for name in ("screen", "float64 re-scoring"):
        print(f"      {name:<44} {counted[name]:7.2f} s")


def real_features(ark: str, k: int, frames: int):
    """Centroids fitted on the frames of a real feature archive, and those frames repeated up to `frames`."""
    import kaldiio

    from audiotok.units.kmeans import fit_kmeans

    real = np.concatenate([m for _, m in kaldiio.load_ark(ark)]).astype(np.float32)
    centroids = fit_kmeans(real, k, seed=0).centroids

    def chunks():
        for start in range(0, frames, len(real)):
            yield real[: min(len(real), frames - start)]

    return centroids, chunks


def bench_case(results: Results, tmp: Path, dim: int, k: int, frames: int, rounds: int, profile: bool, real: str | None = None) -> None:
    import faiss
    from sklearn.cluster import KMeans

    if real:
        centroids, chunks = real_features(real, k, frames)
        dim = centroids.shape[1]
        case = f"real features ({Path(real).name}) D={dim} K={k}, {frames:,} frames"
    else:
        centroids, chunks = mixture(frames, dim, k, seed=dim)
        case = f"mixture D={dim} K={k}, {frames:,} frames"
    Bundle(centroids, {"dim": dim}, {}).save(tmp / "km")
    ark = tmp / "f.ark"
    write_ark(ark, chunks)
    x = np.concatenate(list(chunks()))
    km = KMeans(n_clusters=k)  # fitted by hand: predict needs only the centres
    km.cluster_centers_, km.n_features_in_, km._n_threads = centroids, dim, os.cpu_count()
    index = faiss.IndexFlatL2(dim)
    index.add(centroids)
    timings = alternate(
        {
            "audiotok quantize (CLI)": lambda: run_cli(tmp / "km", ark),
            "sklearn KMeans.predict": lambda: km.predict(x),
            "faiss IndexFlatL2.search": lambda: index.search(x, 1)[1][:, 0],
        },
        rounds,
    )
    results.ratio(case, timings, ours="audiotok quantize (CLI)", peer="sklearn KMeans.predict", target=1.5, unit_of_work=frames, unit="frames")
    results.ratio(
        case,
        {n: timings[n] for n in ("audiotok quantize (CLI)", "faiss IndexFlatL2.search")},
        "audiotok quantize (CLI)",
        "faiss IndexFlatL2.search",
        target=1.5,
    )
    check_labels(results, case, x, centroids, timings["audiotok quantize (CLI)"].last, timings["sklearn KMeans.predict"].last)
    results.fact(case, "screen and frames left in doubt", DOUBT.get("line", "").partition("DEBUG audiotok: ")[2])
    x = None  # the frames go before the profiled run
    if profile:
        profile_split(tmp / "km", ark)
    ark.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2_000_000, help="frames for D=768 K=500")
    parser.add_argument("--frames-large", type=int, default=2_000_000, help="frames for D=1280 K=4096")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the time split of one CLI run per case")
    parser.add_argument("--real-features", metavar="ARK", help="also a real feature archive (e.g. extract-feats output), K=500, repeated to --frames")
    parser.add_argument("--real-only", action="store_true", help="only the --real-features case (and start-up, memory)")
    parser.add_argument("--tmp", default=None, help="where the archives go (several GB at the default sizes)")
    args = parser.parse_args()
    results = Results("quantize")
    startup = startup_seconds(max(3, args.rounds))
    results.fact(
        "start-up", "CLI on an empty archive (median of rounds)", f"{np.median(startup):.2f} s (spread {min(startup):.2f}..{max(startup):.2f}), target <= 1.0 s"
    )
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        if not args.real_only:
            bench_case(results, tmp, 768, 500, args.frames, args.rounds, args.profile)
        if args.frames_large and not args.real_only:
            bench_case(results, tmp, 1280, 4096, args.frames_large, args.rounds, args.profile)
        if args.real_features:
            bench_case(results, tmp, 0, 500, args.frames, args.rounds, args.profile, real=args.real_features)
        # Peak memory for a corpus and one four times larger: constant if it streams.
        centroids, chunks = mixture(100_000, 768, 500, seed=1)
        Bundle(centroids, {"dim": 768}, {}).save(tmp / "km")
        write_ark(tmp / "small.ark", chunks)
        with open(tmp / "large.ark", "wb") as large:
            for copy in range(4):
                write_ark(tmp / "part.ark", chunks, prefix=f"c{copy}u")
                large.write((tmp / "part.ark").read_bytes())
        small, big = peak_rss_mb(tmp / "km", tmp / "small.ark"), peak_rss_mb(tmp / "km", tmp / "large.ark")
        results.fact("memory", "CLI peak RSS, 100k frames vs 400k frames", f"{small:.0f} MB vs {big:.0f} MB (ratio {big / small:.2f})")


if __name__ == "__main__":
    main()
