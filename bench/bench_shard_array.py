"""tokenize-shards as a job array: 1, 2 and 4 tasks (--task J/N, one worker process each)
through recipes/utils/launch.sh's local backend, on the same corpus, rounds alternated.

    .venv/bin/python bench/bench_shard_array.py [--seconds 300] [--rounds 3]

The corpus: bench_shards.py's (the shared recordings when AUDIOTOK_TEST_AUDIO is set, else
generated tones), in 8 tar shards; the tokenizer an MFCC units bundle (k 100). Each run is
the whole array, timed from launch to the last task's exit (every task starts Python and loads
the model, as on a cluster), into a fresh output directory; check-shard-tokens then checks
it (every sample exactly once) and its merged file must equal the one-task run's.
"""

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_shards import make_bundle, recordings, write_corpus
from harness import Results, alternate, ratio_of

ROOT = Path(__file__).resolve().parents[1]
TASKS = (1, 2, 4)


def array_run(corpus: Path, bundle: Path, work: Path, tasks: int, fresh) -> tuple[float, bytes]:
    import time

    out = work / f"tokens-{tasks}-{next(fresh)}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)  # each task divides the cores it sees among its workers, as a user's would
    command = [sys.executable, "-m", "audiotok", "-q", "tokenize-shards", "--task", f"JOB/{tasks}", "--input-dir", str(corpus)]
    command += ["--output-dir", str(out), "--tokenizer", f"bundle:{bundle}", "--num-proc", "1", "--device", "cpu"]
    launcher = [str(ROOT / "recipes/utils/launch.sh"), "--backend", "local", "--max-jobs", str(tasks), f"JOB=1:{tasks}", str(out / "log/tok.JOB.log")]
    started = time.perf_counter()
    subprocess.run([*launcher, *command], check=True, env=env, cwd=work)
    wall = time.perf_counter() - started
    merged = out.with_suffix(".jsonl")
    check = subprocess.run(
        [sys.executable, "-m", "audiotok", "-q", "check-shard-tokens", "--input-dir", str(corpus), "--output-dir", str(out), "-o", str(merged)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if check.returncode != 0:
        raise SystemExit(f"{tasks} tasks: {check.stderr}")
    return wall, (check.stdout.strip(), merged.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="audio in the corpus")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = Results("shard_array")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items = recordings(args.seconds)
        seconds = write_corpus(work / "shards", items)
        bundle = make_bundle(work, items)
        fresh = itertools.count()
        runs = {f"{n} task(s)": (lambda n=n: array_run(work / "shards", bundle, work, n, fresh)) for n in TASKS}
        timings = alternate(runs, rounds=args.rounds)
        case = f"{seconds:.0f} s of audio, {len(items)} samples, 8 shards, mfcc k 100, local backend, {os.cpu_count()} cores"
        results.timings(case, timings, unit_of_work=seconds, unit="audio s")
        for n in TASKS[1:]:
            value, low, high = ratio_of(timings, ours=f"{n} task(s)", peer="1 task(s)")
            results.fact(case, f"speed-up of {n} tasks over 1 (1-task time / {n}-task time)", f"{value:.2f}x (per round {low:.2f}..{high:.2f})")
        summaries = {t.last[0] for t in timings.values()}
        same = len({t.last[1] for t in timings.values()}) == 1
        results.fact(case, "check-shard-tokens", " | ".join(sorted(summaries)))
        results.fact(case, "merged output equal for 1, 2, 4 tasks", str(same))
        if not same:
            raise SystemExit("the merged outputs differ between task counts")


if __name__ == "__main__":
    main()
