"""ABX speed and memory: audiotok's engine against ZeroSpeech's libri-light-abx2 (zrc_abx2), and growth with the items.

    .venv/bin/python bench/bench_abx.py --features ark:whisper4.ark --frame-rate 50 [--speech DIR] [--scales 1 2 4 8]

The items come from the shared recordings' alignments (two speakers: MFA's test speaker and
SpeechBrain's spk1, phones folded to one set). Scale s repeats every aligned utterance s
times as new speakers, so items and speakers grow s-fold. Each tool runs in its own process
(zrc_abx2 from .venv/reference), on the same features and item files, all six conditions;
the time is the scoring alone (features in memory, imports and numba's compilation done),
the memory the process's peak RSS over its RSS before scoring. Rounds alternate the tools.
Every round also checks that both give the same scores.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Results, alternate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEAKERS = {"acoustic_corpus": "mfa", "cold_corpus": "mfa", "spk1_snt1": "spk1", "spk1_snt2": "spk1", "spk1_snt3": "spk1", "spk1_snt4": "spk1"}
ALIGNMENTS = ("acoustic_corpus.TextGrid", "cold_corpus.TextGrid", "speechbrain_phone_alignments.tsv")


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker(tool: str, npz: str, item_dir: str, frame_rate: float) -> None:
    """Score in this process and print {seconds, scores, rss_before_mb, peak_mb}."""
    features = dict(np.load(npz))
    if tool == "audiotok":
        from audiotok.abx import score as abx_score
        from audiotok.abx.items import read_item_file

        items = {kind: read_item_file(Path(item_dir, f"{kind}.item")) for kind in ("phone", "triphone")}
        tiny = {k: v[:40] for k, v in list(features.items())[:2]}
        abx_score.score(abx_score.load_datasets(items, tiny, frame_rate))  # compile numba's DTW first
        before = _rss_mb()
        start = time.perf_counter()
        datasets = abx_score.load_datasets(items, features, frame_rate)
        result = abx_score.score(datasets)
        seconds = time.perf_counter() - start
        scores = result.scores
    else:
        sys.path.insert(0, str(ROOT / "tests" / "abx"))
        from zrc_abx2_reference import reference_scores

        before = _rss_mb()
        start = time.perf_counter()
        scores = reference_scores(features, item_dir, frame_rate)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "scores": scores, "rss_before_mb": before, "peak_mb": peak}))


def _run_worker(tool: str, npz: Path, item_dir: Path, frame_rate: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if tool == "zrc_abx2":
        env["PYTHONPATH"] = str(ROOT / ".venv" / "reference")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", tool, "--npz", str(npz), "--items", str(item_dir), "--frame-rate", str(frame_rate)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _prepare(features: dict, speech: Path, scale: int, directory: Path) -> tuple[Path, Path, int]:
    from audiotok.abx.items import build_items, write_item_file
    from audiotok.units.alignments import read_alignments

    alignments = read_alignments([str(speech / name) for name in ALIGNMENTS])
    tiled, speakers, aligned = {}, {}, {}
    for copy in range(scale):
        for key, speaker in SPEAKERS.items():
            name = f"{key}~{copy}"
            tiled[name] = np.ascontiguousarray(features[key], dtype=np.float32)
            speakers[name] = f"{speaker}~{copy}"
            aligned[name] = alignments[key]
    item_dir = directory / f"items{scale}"
    item_dir.mkdir(exist_ok=True)
    count = 0
    for kind in ("phone", "triphone"):
        items = build_items(aligned, speakers, kind, fold=True)
        write_item_file(items, item_dir / f"{kind}.item")
        count += len(items)
    npz = directory / f"features{scale}.npz"
    np.savez(npz, **tiled)
    return npz, item_dir, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", help="a feature archive holding the aligned recordings (ark:FILE)")
    parser.add_argument("--frame-rate", type=float, required=True)
    parser.add_argument("--speech", default=os.environ.get("AUDIOTOK_TEST_AUDIO", str(ROOT.parent / "shared" / "data" / "speech")))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--reference-scales", type=int, nargs="+", default=[1, 2], help="scales the (slower) reference also runs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=("audiotok", "zrc_abx2"), help=argparse.SUPPRESS)
    parser.add_argument("--npz", help=argparse.SUPPRESS)
    parser.add_argument("--items", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.npz, args.items, args.frame_rate)
        return
    if not (ROOT / ".venv" / "reference" / "zrc_abx2").is_dir():
        raise SystemExit("zrc_abx2 is not in .venv/reference: run make venv")
    from audiotok.io.archives import read_archive

    features = {key: value for key, value in read_archive(args.features) if key in SPEAKERS}
    missing = sorted(set(SPEAKERS) - set(features))
    if missing:
        raise SystemExit(f"{args.features} lacks {', '.join(missing)}")
    results = Results("abx")
    dim = next(iter(features.values())).shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            npz, item_dir, count = _prepare(features, Path(args.speech), scale, Path(tmp))
            case = f"dim {dim}, x{scale}: {count} items, {2 * scale} speakers"
            runs = {"audiotok": lambda n=npz, d=item_dir: _timed(_run_worker("audiotok", n, d, args.frame_rate))}
            if scale in args.reference_scales:
                runs["zrc_abx2"] = lambda n=npz, d=item_dir: _timed(_run_worker("zrc_abx2", n, d, args.frame_rate))
            timings = alternate(runs, rounds=args.rounds if len(runs) > 1 else 1)
            ours = timings["audiotok"].last
            if "zrc_abx2" in timings:
                results.ratio(case, timings, ours="audiotok", peer="zrc_abx2")
                peer = timings["zrc_abx2"].last
                worst = max(abs(ours["scores"][n] - v) for n, v in peer["scores"].items() if v is not None)
                results.fact(case, "largest score difference from zrc_abx2", f"{worst:.2g}")
                results.fact(case, "zrc_abx2 peak RSS growth", f"{peer['peak_mb'] - peer['rss_before_mb']:.0f} MB")
            else:
                results.timings(case, timings)
            results.fact(case, "audiotok peak RSS growth", f"{ours['peak_mb'] - ours['rss_before_mb']:.0f} MB")
            scores = ", ".join(f"{n} {100 * v:.2f}%" for n, v in ours["scores"].items() if v is not None)
            results.fact(case, "scores", scores)


def _timed(output: dict) -> tuple[float, dict]:
    return float(output["seconds"]), output


if __name__ == "__main__":
    main()
