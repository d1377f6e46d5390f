"""fit-kmeans on a feature archive larger than the sample it keeps: phase times and peak memory of the real CLI.

    .venv/bin/python bench/bench_kmeans_ooc.py [--frames 1000000] [--dim 768 --k 500] [--dir DIR] [--keep]
    .venv/bin/python bench/bench_kmeans_ooc.py --frames 5000000     # about 15 GB of ark: more than fits in RAM beside the rest

Writes a binary Kaldi archive of --frames frames (utterances of 200 to 800
frames from a seeded Gaussian mixture, generated and written an utterance at
a time: the corpus is never in memory), then runs
`audiotok fit-kmeans --k K ark:FILE BUNDLE` under /usr/bin/time and reports
the CLI's own phase times (sampling pass, k-means++, warm-up, Lloyd, exact
inertia: config.json's phase_seconds), its peak RSS, the frames sampled and
the archive's size. The archive lives in a temporary directory under --dir
and is deleted afterwards unless --keep. --rounds runs the CLI that many
times (the archive is written once). --quick is the bench/run_all.sh setting:
1M frames, --max-frames 250000 (the sampling pass over 3 GB and a fit on a
quarter of it, about 2 minutes).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import Results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audiotok.io.archives import encode_value  # noqa: E402


def write_archive(path: Path, frames: int, dim: int, components: int, seed: int) -> tuple[int, int]:
    """A seeded mixture, an utterance at a time; returns (utterances, bytes)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((components, dim), dtype=np.float32)
    widths = rng.uniform(0.5, 1.5, components).astype(np.float32)
    weights = rng.dirichlet(np.ones(components))
    written = utterances = 0
    with open(path, "wb") as out:
        while written < frames:
            length = min(int(rng.integers(200, 801)), frames - written)
            which = rng.choice(components, length, p=weights)
            matrix = means[which] + rng.standard_normal((length, dim), dtype=np.float32) * widths[which, None]
            out.write(f"utt{utterances:08d} ".encode() + encode_value(matrix, text=False))
            written += length
            utterances += 1
    return utterances, path.stat().st_size


def run_cli(archive: Path, bundle: Path, k: int, max_frames: int | None) -> tuple[float, dict, int, str]:
    """(wall seconds, config.json's kmeans record, peak RSS in bytes, the log)."""
    command = ["/usr/bin/time", "-f", "peak-rss-kb %M", sys.executable, "-m", "audiotok", "fit-kmeans", "--force", "--k", str(k)]
    if max_frames is not None:
        command += ["--max-frames", str(max_frames)]
    command += [f"ark:{archive}", str(bundle)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: fit-kmeans failed ({done.returncode}):\n{done.stderr[-3000:]}")
    rss = int(re.search(r"peak-rss-kb (\d+)", done.stderr).group(1)) * 1024
    record = json.loads((bundle / "config.json").read_text())["kmeans"]
    return wall, record, rss, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames in the archive (5000000: about 15 GB at dim 768)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--components", type=int, default=1000, help="Gaussians in the mixture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-frames", type=int, default=None, help="passed to fit-kmeans (default: fit-kmeans's own)")
    parser.add_argument("--rounds", type=int, default=1, help="CLI runs on the one archive")
    parser.add_argument("--dir", default=None, help="where the temporary archive goes (default: the system's temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the archive and the bundle")
    parser.add_argument("--quick", action="store_true", help="the run_all setting: 1M frames, --max-frames 250000")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.max_frames = 1_000_000, args.max_frames or 250_000

    work = Path(tempfile.mkdtemp(prefix="bench-kmeans-ooc-", dir=args.dir))
    try:
        archive = work / "feats.ark"
        start = time.perf_counter()
        utterances, size = write_archive(archive, args.frames, args.dim, args.components, args.seed)
        print(
            f"wrote {archive}: {args.frames} frames x {args.dim}, {utterances} utterances, {size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        case = f"{args.frames} frames x {args.dim} ({size / 1e9:.1f} GB ark), K={args.k}"
        runs = [run_cli(archive, work / "bundle", args.k, args.max_frames) for _ in range(args.rounds)]
        results = Results("fit-kmeans out of core")
        record = runs[-1][1]
        print(runs[-1][3].strip().splitlines()[-1])
        results.fact(case, "frames sampled", f"{record['frames']} of {args.frames} ({record['utterances']} utterances)")
        results.fact(case, "iterations", f"{record['iterations']} (inertia {record['inertia']:.6e})")
        order = ["sampling", "k-means++", "warm-up", "Lloyd", "mini-batch", "inertia"]  # config.json sorts its keys
        for phase in sorted(record["phase_seconds"], key=lambda name: order.index(name) if name in order else len(order)):
            values = [run[1]["phase_seconds"][phase] for run in runs]
            results.fact(case, f"phase {phase}", f"median {statistics.median(values):.1f} s (spread {min(values):.1f}..{max(values):.1f}, {len(values)} runs)")
        walls = [run[0] for run in runs]
        results.fact(case, "CLI wall", f"median {statistics.median(walls):.1f} s (spread {min(walls):.1f}..{max(walls):.1f}, {len(walls)} runs)")
        peak = max(run[2] for run in runs)
        results.fact(case, "peak RSS (the CLI process)", f"{peak / 2**30:.2f} GiB; target <= 4 GB: {'met' if peak <= 4e9 else 'NOT met'}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
