"""Unit quality on real speech: PNMI and purities of MFCC units and of Whisper-encoder
units against forced alignments, through the CLI end to end.

    AUDIOTOK_TEST_AUDIO=../shared/data/speech AUDIOTOK_TEST_WHISPER=../shared/models/whisper-tiny.en \\
        .venv/bin/python bench/bench_units_pnmi.py [--k 100] [--layers 2,4]

k-means is fitted on all recordings of the audio folder; the report scores
the recordings that have an MFA TextGrid (phones tier). A random-label
baseline (same k, same frames) shows what chance gives.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def audiotok(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "audiotok", "-q", *map(str, args)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"audiotok {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", default=os.environ.get("AUDIOTOK_TEST_AUDIO"))
    parser.add_argument("--whisper", default=os.environ.get("AUDIOTOK_TEST_WHISPER"))
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--layers", default="2,4")
    args = parser.parse_args()
    if not args.audio:
        sys.exit("set AUDIOTOK_TEST_AUDIO (or --audio) to the shared speech folder")
    audio = Path(args.audio)
    textgrids = sorted(str(p) for p in audio.glob("*.TextGrid"))
    setups = [("mfcc+deltas", ["--backend", "mfcc", "--deltas"])]
    if args.whisper:
        setups += [(f"whisper-tiny.en L{layer}", ["--model", args.whisper, "--layer", layer]) for layer in args.layers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, options in setups:
            work = tmp / name.replace(" ", "_")
            audiotok("extract-feats", *options, audio, f"ark,scp:{work}/f.ark,{work}/f.scp")
            audiotok("fit-kmeans", "--k", args.k, "--seed", 0, f"scp:{work}/f.scp", work / "km")
            audiotok("quantize", work / "km", f"scp:{work}/f.scp", "-o", work / "units.txt")
            report = json.loads(audiotok("report", work / "units.txt", "--bundle", work / "km", "--alignments", audio, "--format", "json"))
            # Chance level: the same frames with labels drawn uniformly from k.
            rng = np.random.default_rng(0)
            lines = (work / "units.txt").read_text().splitlines()
            (work / "random.txt").write_text(
                "".join(f"{line.split()[0]} {' '.join(map(str, rng.integers(0, args.k, len(line.split()) - 1)))}\n" for line in lines)
            )
            chance = json.loads(
                audiotok("report", work / "random.txt", "--k", args.k, "--frame-rate", report["frame_rate"], "--alignments", audio, "--format", "json")
            )
            rows.append((name, report, chance))
    print(f"k={args.k}, k-means on {audio} (all recordings), scored on {len(textgrids)} MFA TextGrids")
    print(f"{'features':>22} {'Hz':>5} {'frames':>7} {'phones':>6} {'PNMI':>6} {'phone pur.':>10} {'cluster pur.':>12} {'usage':>6} {'PNMI random':>11}")
    for name, r, c in rows:
        print(
            f"{name:>22} {r['frame_rate']:>5g} {r['aligned_frames']:>7} {r['phones']:>6} {r['pnmi']:>6.3f} "
            f"{r['phone_purity']:>10.3f} {r['cluster_purity']:>12.3f} {r['codebook_usage']:>6.2f} {c['pnmi']:>11.3f}"
        )


if __name__ == "__main__":
    main()
