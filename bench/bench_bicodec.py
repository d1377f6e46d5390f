"""BiCodec tokenizer: one recording at a time (Spark-TTS's way) vs padded batches with
length masks (bicodec-extract), on the full-size architecture with random weights
(wav2vec2-large-xlsr-53: 24 x 1024 layers, 16 run; BiCodec encoder 12 x 384, ECAPA c512,
Perceiver, FSQ): the compute of the real Spark-TTS-0.5B tokenizer.

    AUDIOTOK_TEST_AUDIO=../shared/data/speech .venv/bin/python bench/bench_bicodec.py [--seconds 40] [--batch-seconds 60]

Prints audio-seconds per second of each way and their ratio, and whether the tokens agree.
With Spark-TTS's own sources importable (PYTHONPATH holding spark_tts_lib, see
tests/bicodec/make_golden.py), it also times Spark-TTS's BiCodecTokenizer.tokenize per file
and compares its tokens. The model directory (about 1.6 GB) is written to a temporary
folder, or to --model-dir and reused. Threads: OMP_NUM_THREADS (default: all cores).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus(seconds: float) -> dict[str, np.ndarray]:
    """Real recordings from AUDIOTOK_TEST_AUDIO when set, else speech-like signals; about `seconds` in all."""
    from audiotok.dsp.resample import resample

    waves, total = {}, 0.0
    audio_dir = os.environ.get("AUDIOTOK_TEST_AUDIO")
    if audio_dir:
        from audiotok.io.audio_table import open_audio_source

        source, _ = open_audio_source([audio_dir])
        for item in source:
            audio = item.load()
            waves[item.key] = resample(audio.samples, audio.rate, 16000).astype(np.float32)[: int(16000 * 15)]
            total += len(waves[item.key]) / 16000
            if total >= seconds:
                break
        return waves
    from tests.bicodec.signals import speech_like

    rng = np.random.default_rng(0)
    while total < seconds:
        length = float(rng.uniform(2.0, 12.0))
        waves[f"synthetic{len(waves):02d}"] = speech_like(length, peak=0.5, seed=len(waves))
        total += length
    return waves


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="audio to tokenize (default 40)")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="padded audio per batch (default 60, as the CLI)")
    parser.add_argument("--model-dir", help="write (or reuse) the random full-size model here")
    args = parser.parse_args()

    import torch

    from audiotok.bicodec.extract import bicodec_tokens
    from audiotok.bicodec.tokenizer import BiCodecTokenizer
    from tests.builders.bicodec import write_random_bicodec

    waves = corpus(args.seconds)
    total = sum(len(w) for w in waves.values()) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model_dir or Path(tmp) / "Spark-TTS-random")
        if not (model_dir / "BiCodec" / "model.safetensors").exists():
            _, seconds = timed(write_random_bicodec, model_dir, "full", 0)
            print(f"wrote the full-size random model in {seconds:.1f} s")
        tokenizer = BiCodecTokenizer(model_dir)
        print(f"{len(waves)} recordings, {total:.1f} s of audio; torch threads {torch.get_num_threads()}")
        tokenizer([next(iter(waves.values()))[:16000]])  # warm-up

        one_by_one, per_item_s = timed(lambda: {k: tokenizer([w])[0] for k, w in waves.items()})

        class Item:
            def __init__(self, key, wave):
                self.key, self.wave = key, wave

            def load(self, channel=None):
                return SimpleNamespace(samples=self.wave, rate=16000)

        batched, batched_s = timed(lambda: dict(bicodec_tokens([Item(k, w) for k, w in waves.items()], tokenizer, batch_seconds=args.batch_seconds)))
        print(f"one at a time (Spark-TTS's way): {total / per_item_s:7.2f} audio-s/s")
        print(f"batched ({args.batch_seconds:g} s batches):   {total / batched_s:7.2f} audio-s/s   ratio {per_item_s / batched_s:.2f}x")
        report_agreement("batched vs one at a time", batched, one_by_one)
        try:
            from spark_tts_lib.models.audio_tokenizer import BiCodecTokenizer as SparkTokenizer
        except ImportError:
            print("Spark-TTS's own code is not importable: reference timing skipped")
            return
        import soundfile as sf

        reference = SparkTokenizer(model_dir, device="cpu")
        paths = {}
        for key, wave in waves.items():
            paths[key] = Path(tmp) / f"{key}.wav"
            sf.write(paths[key], wave, 16000, subtype="FLOAT")

        def spark_run():
            with torch.no_grad():
                out = {}
                for key, path in paths.items():
                    g, s = reference.tokenize(str(path))
                    out[key] = {"global_tokens": g.reshape(-1).tolist(), "semantic_tokens": s.reshape(-1).tolist()}
                return out

        spark, spark_s = timed(spark_run)
        print(f"Spark-TTS's own tokenize:        {total / spark_s:7.2f} audio-s/s   batched is {spark_s / batched_s:.2f}x faster")
        report_agreement("ours vs Spark-TTS", batched, spark)


def report_agreement(what: str, ours: dict, theirs: dict) -> None:
    same_global = sum(ours[k]["global_tokens"] == theirs[k]["global_tokens"] for k in ours)
    pairs = [(a, b) for k in ours for a, b in zip(ours[k]["semantic_tokens"], theirs[k]["semantic_tokens"], strict=True)]
    agree = sum(a == b for a, b in pairs) / max(1, len(pairs))
    print(f"{what}: global tokens identical for {same_global}/{len(ours)} recordings; semantic tokens agree {agree:.4%} of {len(pairs)}")


if __name__ == "__main__":
    main()
