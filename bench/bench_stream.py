"""Streaming tokenization (audiotok stream / StreamingTokenizer) against offline `tokenize`,
measured in one run: per-chunk processing time (mean, p95), the real-time factor, and the
share of units equal to offline units, for chunks of 0.5, 1 and 2 s.

    .venv/bin/python bench/bench_stream.py [--audio DIR] [--seconds 25] [--left-context 5 --lookahead 0.5]

Bundles: (a) Kaldi MFCC + deltas (39 dims, 100 Hz), k=100; (b) a HuBERT-base-size model
with random weights (transformers HubertConfig() defaults: the compute of the real one),
layer 6, k=500 centroids drawn at random from its own offline frames (dim 768).
Audio: --seconds of the recordings in --audio (AUDIOTOK_TEST_AUDIO), each one a session
fed chunk by chunk; espeak-ng sentences when no directory is given.
RTF = processing seconds / audio seconds (below 1: faster than real time); the offline
row is `tokenize`'s computation on whole recordings, the baseline.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNKS = (0.5, 1.0, 2.0)
SENTENCES = [
    "The quick brown fox jumps over the lazy dog while the children watch from the window.",
    "Streaming tokenizers turn speech into discrete units as soon as the audio arrives.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "A large rainbow appeared over the hills after the storm had finally passed by.",
    "Every morning he walked to the station, bought a newspaper, and waited for the train.",
    "Numbers like seventeen, forty two and one hundred are read aloud one after another.",
]


def load_audio(audio_dir, seconds):
    from audiotok.dsp.resample import resample
    from audiotok.io.audio import decode
    from audiotok.io.audio_table import open_audio_source

    waves, total = [], 0.0
    if audio_dir:
        source, _ = open_audio_source(str(audio_dir))
        for item in source:
            audio = item.load()
            wave = resample(audio.samples, audio.rate, 16000)
            waves.append(wave[: int((seconds - total) * 16000)])
            total += len(waves[-1]) / 16000
            if total >= seconds - 0.01:
                break
        return waves, total, f"{len(waves)} recordings from {audio_dir}"
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            for i, sentence in enumerate(SENTENCES):
                path = Path(tmp) / f"{i}.wav"
                subprocess.run(["espeak-ng", "-w", str(path), sentence], check=True, capture_output=True)
                audio = decode(str(path))
                waves.append(resample(audio.samples, audio.rate, 16000))
                total += len(waves[-1]) / 16000
                if total >= seconds:
                    break
        return waves, total, f"{len(waves)} espeak-ng sentences (no --audio)"
    from tests.streaming.helpers import babble

    while total < seconds:
        waves.append(babble(min(8.0, seconds - total + 0.5), seed=len(waves)))
        total += len(waves[-1]) / 16000
    return waves, total, "synthetic speech-like audio (no --audio, no espeak-ng)"


def make_bundles(directory: Path, waves):
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from audiotok.tokenizers.features import open_backend
    from audiotok.units.bundle import Bundle

    rng = np.random.default_rng(0)
    mfcc = open_backend("mfcc", deltas=True)
    frames = np.concatenate(mfcc(waves))
    Bundle(frames[rng.choice(len(frames), 100, replace=False)].copy(), mfcc.recipe.as_dict(), {"seed": 0}).save(directory / "km_mfcc")

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(directory / "hubert-base-random")
    Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=False).save_pretrained(directory / "hubert-base-random")
    hubert = open_backend("model", model=str(directory / "hubert-base-random"), layer=6, device="cpu")
    frames = np.concatenate([hubert([w])[0] for w in waves])
    # Short runs (--seconds 8) have fewer frames than centroids: draw with replacement, jittered apart.
    chosen = frames[rng.choice(len(frames), 500, replace=len(frames) < 500)]
    chosen += rng.normal(0, 1e-3, chosen.shape).astype(np.float32)
    Bundle(chosen, hubert.recipe.as_dict(), {"seed": 0}).save(directory / "km_hubert")
    return {"mfcc+deltas": directory / "km_mfcc", "hubert-base L6 (random)": directory / "km_hubert"}


def offline(bundle_dir, waves):
    """`tokenize`'s computation per recording: the recipe's backend, then the assigner. Returns units, seconds."""
    from audiotok.tokenizers.features import backend_from_recipe
    from audiotok.units.assign import open_assigner
    from audiotok.units.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    backend = backend_from_recipe(bundle.recipe, "cpu", "float32")
    assigner = open_assigner(bundle, "cpu")
    assigner(backend([waves[0][:16000]])[0])  # warm up
    start = time.perf_counter()
    units = [assigner(backend([w])[0]) for w in waves]
    return units, time.perf_counter() - start


def streamed(bundle_dir, waves, chunk, left, lookahead):
    from audiotok.streaming.engine import StreamingTokenizer

    engine = StreamingTokenizer(str(bundle_dir), left_context=left, lookahead=lookahead, max_chunk=chunk)
    engine.feed("warm-up", waves[0][:16000])
    engine.finish("warm-up")
    step = int(chunk * 16000)
    times, units = [], []
    for i, wave in enumerate(waves):
        parts = []
        for start in range(0, len(wave), step):
            begin = time.perf_counter()
            parts.append(engine.feed(i, wave[start : start + step]))
            times.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        parts.append(engine.finish(i))
        times.append(time.perf_counter() - begin)
        units.append(np.concatenate(parts))
    return units, np.array(times)


def agreement(a_list, b_list):
    same = sum(int(np.sum(a == b)) for a, b in zip(a_list, b_list, strict=True) if len(a) == len(b))
    if any(len(a) != len(b) for a, b in zip(a_list, b_list, strict=True)):
        return float("nan")  # a length mismatch is a bug, not a disagreement
    return same / sum(len(a) for a in a_list)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", default=os.environ.get("AUDIOTOK_TEST_AUDIO"))
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--left-context", type=float, default=5.0)
    parser.add_argument("--lookahead", type=float, default=0.5)
    args = parser.parse_args()

    import torch

    from audiotok.units.encoders import quiet_transformers

    quiet_transformers()
    waves, total, described = load_audio(args.audio, args.seconds)
    print(
        f"audio: {total:.1f} s, {described}; torch threads {torch.get_num_threads()}; "
        f"encoder context: {args.left_context:g} s left, {args.lookahead:g} s look-ahead"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundles = make_bundles(Path(tmp), waves)
        print(f"{'bundle':26} {'chunk s':>7} {'chunks':>6} {'mean ms':>8} {'p95 ms':>8} {'RTF':>7} {'= offline':>9}")
        for name, bundle in bundles.items():
            reference, seconds = offline(bundle, waves)
            print(f"{name:26} {'offline':>7} {len(waves):6d} {1000 * seconds / len(waves):8.1f} {'':>8} {seconds / total:7.4f} {'':>9}")
            for chunk in CHUNKS:
                units, times = streamed(bundle, waves, chunk, args.left_context, args.lookahead)
                print(
                    f"{name:26} {chunk:7g} {len(times):6d} {1000 * times.mean():8.1f} {1000 * np.percentile(times, 95):8.1f} "
                    f"{times.sum() / total:7.4f} {agreement(units, reference):9.4f}"
                )


if __name__ == "__main__":
    main()
