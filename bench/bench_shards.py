"""tokenize-shards throughput with 1 and 2 worker processes on the CPU, measured in one run.

    AUDIOTOK_TEST_AUDIO=../shared/data/speech .venv/bin/python bench/bench_shards.py [--seconds 600] [--bicodec full|tiny|none]

The corpus: the shared recordings (or generated tones when AUDIOTOK_TEST_AUDIO is unset),
repeated up to --seconds of audio and packed into 8 tar shards. Tokenizers: an MFCC units
bundle (fit-kmeans, k 100) and, when audiotok.bicodec is there, BiCodec with random weights
(`full`: Spark-TTS-0.5B's sizes, the compute of the real model; --bicodec-seconds of audio).
Each run is the real command in a subprocess, timed from start to exit (so process start
and model loading count, as they do for a user): audio s/s = corpus seconds / wall seconds;
and, from the command's own last stats line, audio s/s from the first loaded worker on.
The baseline is --num-proc 1; the ratios are --num-proc 2's speed over it.
"""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def recordings(seconds: float) -> list[tuple[bytes, str, float]]:
    """(audio bytes, extension, duration) covering `seconds`, real speech when available."""
    import soundfile as sf

    from tests.pipeline.shards import flac_bytes, signal_of

    audio_dir = os.environ.get("AUDIOTOK_TEST_AUDIO")
    pool = []
    if audio_dir:
        for path in sorted(Path(audio_dir).iterdir()):
            if path.suffix in (".flac", ".wav", ".ogg"):
                pool.append((path.read_bytes(), path.suffix[1:], sf.info(str(path)).duration))
    if not pool:
        pool = [(flac_bytes(signal_of(i, seconds=4.0), 16000), "flac", 4.0) for i in range(16)]
    chosen, total = [], 0.0
    while total < seconds:
        item = pool[len(chosen) % len(pool)]
        chosen.append(item)
        total += item[2]
    return chosen


def write_corpus(directory: Path, items: list, shards: int = 8) -> float:
    from tests.pipeline.shards import write_shard

    for s in range(shards):
        meta = {"text": "x", "language": "en"}
        samples = {f"u{n:05d}": {"audio": audio, "ext": ext, "meta": meta} for n, (audio, ext, _) in enumerate(items) if n % shards == s}
        write_shard(directory / f"bench-{s:02d}.tar", samples)
    return sum(d for _, _, d in items)


def run(corpus: Path, out: Path, tokenizer: str, num_proc: int, extra=()) -> tuple[float, float]:
    """(wall seconds of the command, audio s/s of its last stats line: from the first loaded worker on)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)  # the command divides the cores among its workers itself
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "audiotok", "tokenize-shards", "--input-dir", str(corpus), "--output-dir", str(out),
         "--tokenizer", tokenizer, "--num-proc", str(num_proc), "--device", "cpu", *extra],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"tokenize-shards failed:\n{result.stderr}")
    stats = [line for line in result.stderr.splitlines() if " stats: " in line]
    return wall, float(re.search(r"([0-9.]+) audio s/s", stats[-1]).group(1))


def compare(name: str, corpus: Path, seconds: float, tokenizer: str, work: Path, extra=()) -> None:
    runs = {n: run(corpus, work / f"{name}-{n}", tokenizer, n, extra) for n in (1, 2)}
    lines = {n: sum(len(p.read_text().splitlines()) for p in (work / f"{name}-{n}").glob("*.jsonl")) for n in runs}
    print(f"{name}: {seconds:.0f} s of audio in {lines[1]} samples, {os.cpu_count()} cores")
    for n, (wall, loaded_speed) in runs.items():
        print(f"  --num-proc {n}: {wall:7.2f} s wall, {seconds / wall:8.1f} audio s/s whole command, {loaded_speed:8.1f} after loading")
    print(f"  ratio (num-proc 2 vs 1): {runs[1][0] / runs[2][0]:.2f}x whole command, {runs[2][1] / runs[1][1]:.2f}x after loading")


def make_bundle(work: Path, corpus_items: list) -> Path:
    waves = work / "bundle-waves"
    waves.mkdir()
    for n, (audio, ext, _) in enumerate(corpus_items[:20]):
        (waves / f"w{n}.{ext}").write_bytes(audio)
    feats = f"ark:{work}/feats.ark"
    for args in (("extract-feats", "--backend", "mfcc", str(waves), feats), ("fit-kmeans", "--k", "100", feats, str(work / "km100"))):
        subprocess.run([sys.executable, "-m", "audiotok", "-q", *args], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return work / "km100"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="audio for the MFCC bundle runs")
    parser.add_argument("--bicodec", choices=("full", "tiny", "none"), default="full")
    parser.add_argument("--bicodec-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items = recordings(args.seconds)
        seconds = write_corpus(work / "shards", items)
        bundle = make_bundle(work, items)
        compare("mfcc bundle (k 100)", work / "shards", seconds, f"bundle:{bundle}", work)
        if args.bicodec == "none":
            return
        if importlib.util.find_spec("audiotok.bicodec") is None:
            print("bicodec: audiotok.bicodec is not there; skipped")
            return
        from tests.builders.bicodec import write_random_bicodec

        model = write_random_bicodec(work / "bicodec", args.bicodec)
        few = recordings(args.bicodec_seconds)
        few_seconds = write_corpus(work / "bicodec-shards", few, shards=4)
        compare(f"bicodec ({args.bicodec}, random weights)", work / "bicodec-shards", few_seconds, f"bicodec:{model}", work, ("--batch-seconds", "30"))
        print(json.dumps({"note": "wall includes process start and model loading in every worker"}))


if __name__ == "__main__":
    main()
