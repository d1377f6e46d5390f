"""export through the CLI vs the pyarrow code a user would write instead, on the same unit table.

    .venv/bin/python bench/bench_export.py [--rows 20000] [--tokens 500] [--rounds 3]

A `key u1 u2 ...` table of random units (K=500) is turned into Parquet (uint16 lists, zstd)
by `audiotok export` and by the pyarrow script a user would write instead (read the lines,
one numpy array a row, one ListArray, one `pq.write_table`; it holds the whole table in
memory), each as its own process, start-up included. The flat token file (`--to tokens`) is
timed beside them. Runs alternate, each
round runs every variant once; prints medians, spreads, peak RSS of the CLI and the ratio.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def write_table(path: Path, rows: int, tokens: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as handle:
        for row in range(rows):
            handle.write(f"utt{row:07d} " + " ".join(map(str, rng.integers(0, 500, tokens))) + "\n")


def by_hand(table: Path, out: Path) -> None:
    """What a user writes without audiotok: parse, one ListArray of uint16, write one file."""
    keys, arrays = [], []
    with open(table) as handle:
        for line in handle:
            key, _, rest = line.partition(" ")
            keys.append(key)
            arrays.append(np.array(rest.split(), dtype=np.uint16))
    offsets = np.concatenate(([0], np.cumsum([len(a) for a in arrays]))).astype(np.int32)
    tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(arrays)))
    pq.write_table(pa.table({"key": keys, "tokens": tokens}), out, compression="zstd")


def timed(command: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of a command, the peak measured by GNU time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--by-hand", nargs=2, metavar=("TABLE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.by_hand:
        by_hand(Path(args.by_hand[0]), Path(args.by_hand[1]))
        return
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        table = work / "units.txt"
        write_table(table, args.rows, args.tokens)
        total = args.rows * args.tokens
        print(f"table: {args.rows} rows x {args.tokens} tokens = {total / 1e6:.1f}M tokens, {table.stat().st_size / 1e6:.1f} MB of text")
        times = {"audiotok export --to parquet": [], "pyarrow by hand": [], "audiotok export --to tokens": []}
        memory = {name: [] for name in times}
        commands = {
            "pyarrow by hand": [sys.executable, __file__, "--by-hand", str(table), str(work / "hand.parquet")],
            **{
                f"audiotok export --to {target}": [sys.executable, "-m", "audiotok", "-q", "export", str(table), "--vocab-size", "500"]
                + ["--to", target, "--force", "-o", str(work / target)]
                for target in ("parquet", "tokens")
            },
        }
        for _ in range(args.rounds):
            for name in times:  # alternate the variants within each round
                seconds, peak = timed(commands[name])
                times[name].append(seconds)
                memory[name].append(peak)
        exported = pq.read_table(sorted((work / "parquet").glob("*.parquet")))
        hand = pq.read_table(work / "hand.parquet")
        assert exported["key"].equals(hand["key"]) and exported["tokens"].to_pylist() == hand["tokens"].to_pylist()
        print(f"{'variant':32} {'median s':>9} {'spread s':>9} {'Mtokens/s':>10} {'peak MB':>8}")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:32} {median:9.2f} {max(values) - min(values):9.2f} {total / median / 1e6:10.2f} {statistics.median(memory[name]):8.0f}")
        ratio = statistics.median(times["pyarrow by hand"]) / statistics.median(times["audiotok export --to parquet"])
        print(f"ratio (pyarrow by hand time / audiotok export time, same Parquet content): {ratio:.2f}x")


if __name__ == "__main__":
    main()
