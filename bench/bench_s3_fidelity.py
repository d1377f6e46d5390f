"""Miss rates of s3-extract's long-audio modes against the two references, on full-size S3
models (128 mels, width 1280, 20 heads, 6 blocks) with seeded random weights built by the
s3tokenizer package itself (codewords from its encoder's outputs on other recordings).

    AUDIOTOK_TEST_AUDIO=../shared/data/speech .venv/bin/python bench/bench_s3_fidelity.py [--layers 6]

References: the s3tokenizer package 0.3.0 as its CLI drives it, and Step-Audio's
get_vq06_code written line by line (tests/units/s3_references.py); Step-Audio runs the 25 Hz
v1 only (it asserts 25 tokens a second), so its column is empty for the others. Clips: 15 s
and 7.7 s (22.05 kHz) of real speech, and joins of 53.0, 55.0 and 65.5 s. A miss is a position
where the tokens differ, or one that only one side has; the rate is over the reference's tokens.
Also shown: libsoxr instead of torchaudio's resampler (it changes the 22.05 kHz clip's tokens)
and, for v2, the 1e-6 attention LayerNorm epsilon (S3Tokenizer's git) beside the default 1e-5.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiotok.io.audio import decode  # noqa: E402 - after the path insertion
from audiotok.io.audio_table import AudioItem  # noqa: E402 - after the path insertion
from audiotok.units.s3 import S3Torch, load_torch_model, s3_tokens  # noqa: E402 - after the path insertion
from tests.units.s3_references import (  # noqa: E402 - after the path insertion
    NAMES,
    codeword_audio,
    reference_model,
    s3tokenizer_load_audio,
    s3tokenizer_tokens,
    speech_clips,
    step_audio_vq06,
)

SHORT = ("short", "lj22k")
LONG = ("long53", "long55", "long65.5")


def misses(ours: list[int], theirs: list[int]) -> int:
    common = min(len(ours), len(theirs))
    return sum(a != b for a, b in zip(ours[:common], theirs[:common], strict=True)) + abs(len(ours) - len(theirs))


def rate(ours: dict, theirs: dict, keys) -> str:
    if not theirs:
        return "-"
    wrong, total = sum(misses(ours[k], theirs[k]) for k in keys), sum(len(theirs[k]) for k in keys)
    return f"{wrong / total:.2%} ({wrong}/{total})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", default=os.environ.get("AUDIOTOK_TEST_AUDIO"))
    parser.add_argument("--layers", type=int, default=6)
    args = parser.parse_args()
    if not args.audio:
        sys.exit("give --audio DIR or set AUDIOTOK_TEST_AUDIO")
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for key, (samples, sample_rate) in speech_clips(args.audio).items():
            paths[key] = str(Path(tmp) / f"{key}.wav")
            sf.write(paths[key], samples, sample_rate, subtype="FLOAT")
        items = [AudioItem(k, p, p, _read=lambda channel, p=p: decode(p, channel)) for k, p in paths.items()]
        for (version, model_rate), name in NAMES.items():
            model = reference_model(version, model_rate, codeword_audio(args.audio), layers=args.layers)
            weights = Path(tmp) / f"{name}.pt"
            torch.save(model.state_dict(), weights)
            references = {"s3tokenizer": {k: s3tokenizer_tokens(model, s3tokenizer_load_audio(p)) for k, p in paths.items()}}
            references["step-audio"] = {}
            if model_rate == 25 and version == "v1":
                references["step-audio"] = {k: step_audio_vq06(model, s3tokenizer_load_audio(p)[None]) for k, p in paths.items()}
            runs = [(mode, None, "torchaudio") for mode in ("s3tokenizer", "step-audio", "sliding")] + [("s3tokenizer", None, "soxr")]
            runs += [("s3tokenizer", 1e-6, "torchaudio")] if version == "v2" else []
            for mode, eps, resampler in runs:
                backend = S3Torch(load_torch_model(weights, version, model_rate, attn_ln_eps=eps), "cpu")
                ours = {r.key: r.tokens.tolist() for r in s3_tokens(items, backend, long_audio=mode, resampler=resampler)}
                label = mode + (f", eps {eps:g}" if eps else "") + (f", {resampler}" if resampler != "torchaudio" else "")
                cells = [rate(ours, references[ref], keys) for ref in ("s3tokenizer", "step-audio") for keys in (SHORT, LONG)]
                rows.append((f"{version} {model_rate} Hz", label, *cells))
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
            distinct = sum(len(set(t)) for t in references["s3tokenizer"].values())
            print(f"{name}: {distinct} distinct codes over the clips", file=sys.stderr)
    print(f"{args.layers} blocks, {os.cpu_count()} CPUs, {time.perf_counter() - started:.0f} s\n")
    print("| model | s3-extract --long-audio | vs s3tokenizer <= 30 s | vs s3tokenizer > 30 s | vs Step-Audio <= 30 s | vs Step-Audio > 30 s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
