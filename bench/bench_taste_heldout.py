"""What TASTE's speech side adds on unseen utterances: a held-out ablation run through the real commands.

On a handful of training utterances the decoder can memorise each item's S3 units from its text
alone, so a model trained with the speech embeddings zeroed scores about as well on them. On a
recording it has not seen, the text cannot tell which units that voice, speed and pitch produced;
the per-text-token speech embeddings (from Whisper) can. This bench measures that:

  1. corpus: --utterances English sentences (seeded word lists) spoken by espeak-ng in several
     voices, speeds and pitches, 16 kHz wavs + manifest.jsonl; ~15% of the keys held out (seeded);
  2. targets (--targets): s3, a random S3 v1 tokenizer (recipes/taste/local/random_s3.py) whose
     fitted codewords come from the training audio only, then `audiotok s3-extract`; or
     mfcc-kmeans, `extract-feats --backend mfcc --deltas` + `fit-kmeans` (train audio only) +
     `quantize`, every 4th 100 Hz unit kept (25 Hz, like S3). The random S3 units mostly name the
     voice and pitch of the recording (a random encoder's frames cluster by utterance: ~7
     distinct units an utterance), so few of them follow the words; the k-means units follow
     the phones as well as the voice, the closer stand-in for a real (ASR-trained) S3;
  3. features: `audiotok taste-extract` with the real Whisper tiny.en (also the text model);
  4. `audiotok taste-train` twice, same config and seed: full, and `--zero-speech` (text only),
     with the held-out split as data.valid;
  5. a table: train / held-out teacher-forced accuracy and top-5 for both, the majority and
     copy-previous baselines on held-out, and held-out greedy free-running accuracy (units
     right in place) computed from each saved model through the Python API.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_taste_heldout.py [--work DIR] [--utterances 200]
        [--max-steps 600] [--config small|tiny] [--targets s3|mfcc-kmeans] [--whisper DIR]

Every command runs as a subprocess with OMP_NUM_THREADS=1. --work keeps the outputs (and a rerun
reuses finished stages); without it they go to a temporary directory that is removed.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUBJECTS = [
    "the farmer",
    "my sister",
    "a young doctor",
    "the old captain",
    "our neighbour",
    "the teacher",
    "a tired pilot",
    "the little girl",
    "his brother",
    "the quiet student",
    "a clever fox",
    "the baker",
    "her uncle",
    "the night guard",
    "a busy lawyer",
    "the singer",
]
VERBS = [
    "painted",
    "carried",
    "opened",
    "found",
    "cleaned",
    "watched",
    "bought",
    "dropped",
    "borrowed",
    "fixed",
    "followed",
    "hid",
    "sold",
    "described",
    "measured",
    "counted",
]
OBJECTS = [
    "a green bottle",
    "the wooden gate",
    "seven apples",
    "an empty basket",
    "the broken clock",
    "a heavy letter",
    "the silver spoon",
    "two yellow chairs",
    "a paper map",
    "the frozen river",
    "a tall ladder",
    "the purple blanket",
    "nine small stones",
    "a warm coat",
]
ENDINGS = [
    "before dinner",
    "near the station",
    "on a windy morning",
    "after the storm",
    "in the garden",
    "without a word",
    "at midnight",
    "behind the church",
    "during the long summer",
    "under the bridge",
    "last Tuesday",
    "with great care",
    "",
    "",
    "",
]
VOICES = ["en-us", "en-gb", "en+f3", "en-us+m3", "en-gb-scotland", "en-029+f2", "en-gb-x-rp+m5", "en-us+f4"]


def run(command: list[str], log_path: Path) -> float:
    """Run one audiotok (or helper) command with one thread; its stderr goes to log_path. -> seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.time()
    with open(log_path, "w") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.time() - start
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed (exit {done.returncode}); see {log_path}:\n" + "".join(log_path.read_text().splitlines(True)[-15:]))
    print(f"  {seconds:7.1f} s  {' '.join(Path(c).name if c.startswith('/') and i < 3 else c for i, c in enumerate(command))}", file=sys.stderr)
    return seconds


def make_corpus(work: Path, count: int, seed: int) -> list[dict]:
    """espeak-ng utterances (16 kHz wavs) and their manifest rows; distinct sentences, seeded."""
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    rng = random.Random(seed)
    wav_dir = work / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    rows, seen = [], set()
    while len(rows) < count:
        text = " ".join(p for p in (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(ENDINGS)) if p)
        voice, speed, pitch = rng.choice(VOICES), rng.randrange(130, 191, 5), rng.randrange(30, 71, 5)
        if text in seen:
            continue
        seen.add(text)
        key = f"utt{len(rows):04d}"
        path = wav_dir / f"{key}.wav"
        if not path.exists():
            raw = wav_dir / f"{key}.22k.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text], check=True)
            audio, rate = sf.read(raw, dtype="float32")
            audio = resample_poly(audio, 16000, rate).astype(np.float32)
            sf.write(path, audio, 16000, subtype="PCM_16")
            raw.unlink()
        rows.append({"key": key, "audio_path": str(path), "text": text[0].upper() + text[1:] + ".", "voice": voice, "speed": speed, "pitch": pitch})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps({k: r[k] for k in ("key", "audio_path", "text")}) + "\n" for r in rows))


def held_out_scores(model_dir: Path, features: Path, units: Path, head: int = 5) -> dict:
    """From a saved model, on the held-out items: greedy free-running accuracy (units right in
    place, over the true units); teacher-forced accuracy on each utterance's first `head` units
    (before the true units have shown the voice); and teacher-forced accuracy with the speech
    embeddings zeroed at evaluation (does the trained model use them at all)."""
    import torch
    from safetensors.torch import load_file

    from audiotok.taste.data import UnitCorpus, collate
    from audiotok.taste.model import TasteModel

    torch.set_num_threads(1)
    meta = json.loads((model_dir / "config.json").read_text())
    config = meta["config"]
    corpus = UnitCorpus(str(features), str(units), config, "valid")
    model = TasteModel(config, corpus.text_dim, corpus.whisper_dim)
    model.load_state_dict(load_file(str(model_dir / "model.safetensors")))
    model.eval()
    counts = dict.fromkeys(("free", "total", "head", "head_total", "zeroed"), 0)
    with torch.no_grad():
        for start in range(0, len(corpus), 16):
            items = [corpus.item(i) for i in range(start, min(start + 16, len(corpus)))]
            batch = collate(items)
            produced = model.generate(batch, max_units=max(len(it.units) for it in items) + 10)
            forced = model(batch)["logits"].argmax(-1)
            zeroed = model(batch, zero_speech=True)["logits"].argmax(-1)
            for row, (item, free) in enumerate(zip(items, produced)):
                true = item.units.tolist()
                counts["free"] += sum(a == b for a, b in zip(true, free))
                counts["total"] += len(true)
                counts["head"] += sum(a == b for a, b in zip(true[:head], forced[row, :head].tolist()))
                counts["head_total"] += min(head, len(true))
                counts["zeroed"] += sum(a == b for a, b in zip(true, zeroed[row, : len(true)].tolist()))
    return {
        "valid_free_running_accuracy": counts["free"] / counts["total"],
        f"valid_first{head}_accuracy": counts["head"] / counts["head_total"],
        "valid_accuracy_speech_zeroed": counts["zeroed"] / counts["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="keep outputs here (a rerun reuses finished stages)")
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--held-out", type=float, default=0.15, help="share of the keys held out")
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--config", default="small", choices=["small", "tiny"])
    parser.add_argument("--s3-codebook", type=int, default=4096)
    parser.add_argument("--s3-fitted", type=int, default=256)
    parser.add_argument("--targets", default="s3", choices=["s3", "mfcc-kmeans"], help="s3: the random-S3 recipe helper; mfcc-kmeans: k-means of MFCCs")
    parser.add_argument("--kmeans-k", type=int, default=256)
    parser.add_argument("--whisper", default=os.environ.get("AUDIOTOK_TEST_WHISPER", "/work/shared/models/whisper-tiny.en"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if not Path(args.whisper).is_dir():
        sys.exit(f"error: no Whisper model at {args.whisper} (set AUDIOTOK_TEST_WHISPER or --whisper)")
    if not shutil.which("espeak-ng"):
        sys.exit("error: espeak-ng is not installed")

    temporary = None if args.work else tempfile.TemporaryDirectory(prefix="taste_heldout_")
    work = Path(args.work or temporary.name)
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    py, audiotok = sys.executable, [sys.executable, "-m", "audiotok"]
    begun = time.time()

    start = time.time()
    rows = make_corpus(work, args.utterances, args.seed)
    import soundfile as sf

    seconds = [sf.info(r["audio_path"]).duration for r in rows]
    keys = sorted(r["key"] for r in rows)
    random.Random(args.seed + 1).shuffle(keys)
    held = set(keys[: max(1, round(args.held_out * len(keys)))])
    splits = {"train": [r for r in rows if r["key"] not in held], "valid": [r for r in rows if r["key"] in held]}
    for name, part in splits.items():
        write_jsonl(work / f"{name}.jsonl", part)
    print(
        f"corpus: {len(rows)} utterances ({min(seconds):.1f}-{max(seconds):.1f} s, {sum(seconds) / 60:.1f} min), {len(splits['train'])} train, "
        f"{len(splits['valid'])} held out, {len({r['voice'] for r in rows})} voices; {time.time() - start:.0f} s",
        file=sys.stderr,
    )

    tag = "s3" if args.targets == "s3" else f"km{args.kmeans_k}"
    if args.targets == "s3":
        s3_model = work / f"s3_random_{args.s3_codebook}_{args.s3_fitted}.pt"
        if not s3_model.exists():  # codewords from the training audio only: the held-out audio stays unseen
            run(
                [
                    py,
                    str(ROOT / "recipes/taste/local/random_s3.py"),
                    str(s3_model),
                    "--codebook-size",
                    str(args.s3_codebook),
                    "--fitted-codes",
                    str(args.s3_fitted),
                    "--fit",
                    f"jsonl:{work / 'train.jsonl'}",
                    "--seed",
                    str(args.seed),
                ],
                logs / "random_s3.log",
            )
    for name in splits:
        units = work / f"units_{tag}_{name}.txt"
        if units.exists():
            pass
        elif args.targets == "s3":
            run(
                [
                    *audiotok,
                    "s3-extract",
                    "--model",
                    str(s3_model),
                    "--version",
                    "v1",
                    "--rate",
                    "25",
                    "--device",
                    args.device,
                    f"jsonl:{work / f'{name}.jsonl'}",
                    "-o",
                    str(units),
                ],
                logs / f"s3_{name}.log",
            )
        else:  # MFCC k-means units (phone- and voice-dependent, fitted on train), 100 Hz taken every 4th frame: 25 Hz like S3
            mfcc = work / f"mfcc_{name}"
            if not Path(f"{mfcc}.scp").exists():
                run(
                    [*audiotok, "extract-feats", "--backend", "mfcc", "--deltas", f"jsonl:{work / f'{name}.jsonl'}", f"ark,scp:{mfcc}.ark,{mfcc}.scp"],
                    logs / f"mfcc_{name}.log",
                )
            bundle = work / f"kmeans_{args.kmeans_k}"
            if not (bundle / "centroids.npy").exists():
                run(
                    [*audiotok, "fit-kmeans", "--k", str(args.kmeans_k), "--seed", str(args.seed), f"scp:{work / 'mfcc_train'}.scp", str(bundle)],
                    logs / "fit_kmeans.log",
                )
            frames = work / f"units_{tag}_100hz_{name}.txt"
            run([*audiotok, "quantize", str(bundle), f"scp:{mfcc}.scp", "-o", str(frames)], logs / f"quantize_{name}.log")
            units.write_text("".join(" ".join([line.split()[0], *line.split()[1:][::4]]) + "\n" for line in frames.read_text().splitlines() if line.strip()))
        run(
            [*audiotok, "taste-extract", str(work / f"{name}.jsonl"), "-o", str(work / f"taste_{name}"), "--whisper", args.whisper, "--device", args.device],
            logs / f"taste_extract_{name}.log",
        )

    config = work / f"{args.config}_{tag}.yaml"  # the preset with decoder.unit_vocab set to the unit codebook
    config.write_text(f"preset: {args.config}\ndecoder:\n  unit_vocab: {args.s3_codebook if args.targets == 's3' else args.kmeans_k}\n")
    data = [
        "--features",
        str(work / "taste_train"),
        "--units",
        str(work / f"units_{tag}_train.txt"),
        "--valid-features",
        str(work / "taste_valid"),
        "--valid-units",
        str(work / f"units_{tag}_valid.txt"),
    ]
    results = {}
    for variant, extra in (("full", []), ("text_only", ["--zero-speech"])):
        out = work / f"exp_{tag}_{args.config}_{args.max_steps}_{variant}"  # per length: a shorter rerun must not resume a longer run
        if not (out / "summary.json").exists():
            run(
                [*audiotok, "taste-train", str(config), *data, "--output-dir", str(out), "--max-steps", str(args.max_steps), "--device", args.device, *extra],
                logs / f"train_{variant}.log",
            )
        summary = json.loads((out / "summary.json").read_text())
        evals = [row for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "valid_accuracy" in row]
        best = max(evals, key=lambda row: row["valid_accuracy"])  # the run overfits: where held-out accuracy peaked
        summary["best_valid_accuracy"], summary["best_valid_step"] = best["valid_accuracy"], best["step"]
        start = time.time()
        summary.update(held_out_scores(out, work / "taste_valid", work / f"units_{tag}_valid.txt"))
        print(f"  {time.time() - start:7.1f} s  held-out greedy free-running etc. ({variant})", file=sys.stderr)
        results[variant] = summary

    full, text = results["full"], results["text_only"]
    top = "top5_accuracy"
    targets = (
        f"random S3 v1 ({args.s3_codebook} codes, {args.s3_fitted} fitted on train audio)"
        if tag == "s3"
        else f"MFCC k-means ({args.kmeans_k}, fitted on train audio, 25 Hz)"
    )
    lines = [
        f"TASTE held-out ablation: {len(splits['train'])} train / {len(splits['valid'])} held-out espeak-ng utterances, "
        f"config {args.config}, {args.max_steps} steps, targets {targets}, Whisper {Path(args.whisper).name}",
        f"{'':34s}{'full':>10s}{'text only':>11s}",
        f"{'train accuracy (teacher-forced)':34s}{full['train_accuracy']:10.3f}{text['train_accuracy']:11.3f}",
        f"{'train top-5':34s}{full['train_' + top]:10.3f}{text['train_' + top]:11.3f}",
        f"{'held-out accuracy (teacher-forced)':34s}{full['valid_accuracy']:10.3f}{text['valid_accuracy']:11.3f}",
        f"{'held-out top-5':34s}{full['valid_' + top]:10.3f}{text['valid_' + top]:11.3f}",
        f"{'held-out loss':34s}{full['valid_loss']:10.3f}{text['valid_loss']:11.3f}",
        f"{'held-out accuracy, best eval':34s}{full['best_valid_accuracy']:10.3f}{text['best_valid_accuracy']:11.3f}",
        f"{'  at step':34s}{full['best_valid_step']:10d}{text['best_valid_step']:11d}",
        f"{'held-out greedy free-running':34s}{full['valid_free_running_accuracy']:10.3f}{text['valid_free_running_accuracy']:11.3f}",
        f"{'held-out acc., first 5 units':34s}{full['valid_first5_accuracy']:10.3f}{text['valid_first5_accuracy']:11.3f}",
        f"{'held-out acc., speech zeroed':34s}{full['valid_accuracy_speech_zeroed']:10.3f}{'':>11s}",
        f"{'train acc., speech zeroed':34s}{full.get('train_accuracy_speech_zeroed', float('nan')):10.3f}{'':>11s}",
        f"{'fusion gate (sigmoid)':34s}{full['fusion_gate']:10.3f}{text['fusion_gate']:11.3f}",
        f"held-out baselines: majority unit {full['valid_majority_accuracy']:.3f}, copy-previous unit {full['valid_copy_previous_accuracy']:.3f}",
        f"wall time {(time.time() - begun) / 60:.1f} min; outputs: {work if args.work else '(temporary, removed)'}",
    ]
    print("\n".join(lines))
    if args.work:
        (work / f"table_{tag}_{args.config}_{args.max_steps}.txt").write_text("\n".join(lines) + "\n")
    if temporary:
        temporary.cleanup()


if __name__ == "__main__":
    main()
