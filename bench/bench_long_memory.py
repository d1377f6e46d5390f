"""Peak memory (RSS) of the main commands on one short and one or two long recordings.

    python bench/bench_long_memory.py [--audio ../shared/data/speech] [--hours 1 2] [--rounds 3]
                                      [--commands info resample ...] [--s3-model /tmp/hashwork/s3_v1_25.pt]
                                      [--work DIR] [--out bench/long_memory.md]

Builds the recordings (the shared speech concatenated to 3 s and to each length of --hours,
16 kHz PCM-16 WAV) and the models (an MFCC k-means bundle; a HuBERT-size bundle: HuBERT-base's
shape, 12 layers 768 wide, random seeded weights; an S3 model as bench/output_hashes.py builds
them) in WORKDIR, runs each command as a child process and reads its peak RSS from os.wait4,
in rounds alternating the lengths, and prints a markdown table of medians: RSS for each length
(3 s, 1 min, then --hours), the longest minus 3 s and minus 1 min (past a model's 30 s window
and 60 s batch), and whether the longest stays within 300 MB of 3 s.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDIOTOK = [sys.executable, "-m", "audiotok", "-q"]
RATE = 16000
TARGET_MB = 300.0


def peak_rss_mb(args: list[str], log: Path, code: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one child process running the audiotok of `code`; a failed command stops the bench."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    start = time.monotonic()
    with open(log, "ab") as errors:
        child = subprocess.Popen([*AUDIOTOK, *map(str, args)], stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=code)  # -m imports from the cwd
        _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): audiotok {' '.join(map(str, args))}; see {log}")
    return usage.ru_maxrss / 1024, time.monotonic() - start  # ru_maxrss is in KiB on Linux


def write_recording(path: Path, speech: list[Path], seconds: float) -> Path:
    """The shared speech, one file after another, to `seconds` (written block by block)."""
    import soundfile as sf

    from audiotok.dsp.resample import resample
    from audiotok.io.audio import decode

    if path.exists():
        return path
    total = int(seconds * RATE)
    with sf.SoundFile(path.with_suffix(".part.wav"), "w", RATE, 1, "PCM_16") as out:
        written, index = 0, 0
        while written < total:
            audio = decode(speech[index % len(speech)])
            samples = resample(audio.samples, audio.rate, RATE)[: total - written]
            out.write(samples)
            written += len(samples)
            index += 1
    path.with_suffix(".part.wav").rename(path)
    return path


def build_models(work: Path, short: Path, s3_model: str | None) -> dict[str, str]:
    models = {}
    mfcc = work / "mfcc_bundle"
    if not mfcc.exists():
        subprocess.run([*AUDIOTOK, "extract-feats", "--backend", "mfcc", short, f"ark:{work / 'mfcc.ark'}"], check=True)
        subprocess.run([*AUDIOTOK, "fit-kmeans", "--k", "20", "--seed", "1", f"ark:{work / 'mfcc.ark'}", mfcc], check=True)
    models["mfcc"] = str(mfcc)
    hubert, hubert_bundle = work / "hubert_base_random", work / "hubert_bundle"
    if not hubert_bundle.exists():
        import torch
        from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

        torch.manual_seed(0)
        HubertModel(HubertConfig()).save_pretrained(hubert)  # HuBERT-base: group norm, 12 layers, 768 wide
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=False).save_pretrained(hubert)
        feats = work / "hubert.ark"
        subprocess.run([*AUDIOTOK, "extract-feats", "--device", "cpu", "--model", hubert, "--layer", "6", short, f"ark:{feats}"], check=True)
        subprocess.run([*AUDIOTOK, "fit-kmeans", "--k", "20", "--seed", "1", f"ark:{feats}", hubert_bundle], check=True)
    models["hubert"] = str(hubert_bundle)
    if s3_model:
        models["s3"] = s3_model
    return models


def commands(models: dict[str, str], out: Path) -> dict[str, list]:
    """Each command as arguments with AUDIO for the recording."""
    table = {
        "info": ["info", "AUDIO"],
        "resample (ark)": ["resample", "--force", "--rate", "8000", "AUDIO", f"ark:{out / 'resampled.ark'}"],
        "extract-feats mfcc": ["extract-feats", "--force", "--backend", "mfcc", "AUDIO", f"ark:{out / 'mfcc.ark'}"],
        "tokenize (mfcc bundle)": ["tokenize", "--force", models["mfcc"], "AUDIO", "-o", out / "mfcc_units.txt"],
        "tokenize (HuBERT-size bundle)": ["tokenize", "--force", "--device", "cpu", models["hubert"], "AUDIO", "-o", out / "hubert_units.txt"],
    }
    if "s3" in models:
        table["s3-extract"] = ["s3-extract", "--force", "--device", "cpu", "--model", models["s3"], "--rate", "25", "AUDIO", "-o", out / "s3.txt"]
    return table


def prepare(args, lengths: dict[str, float]) -> None:
    args.work.mkdir(parents=True, exist_ok=True)
    speech = sorted(p for p in args.audio.iterdir() if p.suffix in (".flac", ".wav"))
    recordings = {name: write_recording(args.work / f"speech_{seconds:g}s.wav", speech, seconds) for name, seconds in lengths.items()}
    models = build_models(args.work, recordings["3 s"], args.s3_model if args.s3_model and os.path.exists(args.s3_model) else None)
    (args.work / "models.json").write_text(json.dumps(models))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=Path(os.environ.get("AUDIOTOK_TEST_AUDIO", ROOT.parent / "shared" / "data" / "speech")))
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commands", nargs="*", help="names from the table (default: all)")
    parser.add_argument("--s3-model", default="/tmp/hashwork/s3_v1_25.pt", help="S3Tokenizer weights (v1, 25 Hz); '' leaves s3-extract out")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_long_memory"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "long_memory.md")
    parser.add_argument("--code", type=Path, default=ROOT, help="the audiotok checkout whose commands run (default: this one)")

    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    # 1 min: longer than a model window (30 s) and a batch (60 s), so its growth over 3 s is what
    # the models' windows take; a bounded command grows little past it.
    lengths = {"3 s": 3.0, "1 min": 60.0, **{f"{h:g} h": h * 3600 for h in args.hours}}
    if args.prepare:
        prepare(args, lengths)
        return
    # The recordings and models are made in a child: a child's peak RSS counts the memory of
    # the process it was forked from, so this one stays small (no numpy, torch or audiotok).
    subprocess.run([sys.executable, __file__, "--prepare", *sys.argv[1:]], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    recordings = {name: args.work / f"speech_{seconds:g}s.wav" for name, seconds in lengths.items()}
    models = json.loads((args.work / "models.json").read_text())
    table = commands(models, args.work)
    chosen = args.commands or list(table)
    log = args.work / "stderr.log"
    rss: dict[tuple[str, str], list[float]] = {}
    for round_number in range(args.rounds):
        order = list(lengths) if round_number % 2 == 0 else list(reversed(lengths))
        for name in chosen:
            for length in order:
                argv = [str(recordings[length]) if a == "AUDIO" else a for a in table[name]]
                mb, seconds = peak_rss_mb(argv, log, args.code)
                rss.setdefault((name, length), []).append(mb)
                print(f"round {round_number + 1}: {name} {length}: {mb:.0f} MB in {seconds:.1f} s", file=sys.stderr, flush=True)

    longest = list(lengths)[-1]
    lines = [
        f"Peak RSS in MB (median of {args.rounds} rounds), 16 kHz mono WAV of the shared speech concatenated; "
        f"{os.cpu_count()} CPUs, models on the CPU; code: {args.code}.",
        "",
        "| command | "
        + " | ".join(f"RSS {length}" for length in lengths)
        + f" | {longest} minus 3 s | {longest} minus 1 min | target met (<= {TARGET_MB:.0f} MB) |",
        "|---|" + "---:|" * len(lengths) + "---:|---:|:---:|",
    ]
    for name in chosen:
        medians = {length: statistics.median(rss[(name, length)]) for length in lengths}
        growth = medians[longest] - medians["3 s"]
        cells = " | ".join(f"{medians[length]:.0f}" for length in lengths)
        lines.append(f"| {name} | {cells} | {growth:.0f} | {medians[longest] - medians['1 min']:.0f} | {'yes' if growth <= TARGET_MB else 'no'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
