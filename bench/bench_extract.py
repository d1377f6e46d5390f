"""extract-feats vs a one-utterance-at-a-time fp32 PyTorch loop, on a HuBERT-base-size
model with random weights (the compute of the trained one), measured in one run.

    .venv/bin/python bench/bench_extract.py [--audio DIR] [--layer 6] [--seconds 120]

Two baselines run each utterance alone in fp32 and keep hidden_states[layer]:
the whole transformers model (a plain HF loop), and the model cut after
that layer (what fairseq's dump_hubert_feature does with output_layer).
audiotok runs fp32 (must be equal bit for bit) and bf16 (must give >= 99%
identical units); speed ratios are against the cut model, the faster one.
Units: nearest of 100 centroids drawn from the baseline's features.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus(audio_dir, seconds):
    from audiotok.dsp.resample import resample
    from audiotok.io.audio_table import open_audio_source

    waves, total = {}, 0.0
    if audio_dir:
        source, _ = open_audio_source(str(audio_dir))
        for item in source:
            audio = item.load()
            wave = resample(audio.samples, audio.rate, 16000)
            waves[item.key] = wave
            total += len(wave) / 16000
            if total >= seconds:
                break
    else:
        rng = np.random.default_rng(0)
        while total < seconds:
            length = rng.uniform(2, 12)
            t = np.arange(int(16000 * length)) / 16000
            waves[f"s{len(waves):03d}"] = (
                0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t * (1 + 0.1 * np.sin(t))) + 0.02 * rng.standard_normal(len(t))
            ).astype(np.float32)
            total += length
    return waves, total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", default=os.environ.get("AUDIOTOK_TEST_AUDIO"))
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating repetitions; the best time counts")
    args = parser.parse_args()

    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from audiotok.engine.batching import extract_features
    from audiotok.io.audio import Audio, AudioInfo
    from audiotok.io.audio_table import AudioItem
    from audiotok.units.assign import NearestCentroid
    from audiotok.units.encoders import load_encoder, quiet_transformers

    quiet_transformers()
    torch.manual_seed(0)
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    waves, total = corpus(args.audio, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        HubertModel(HubertConfig()).save_pretrained(tmp)  # HuBERT-base: group norm, 12 layers, 768 wide
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=False).save_pretrained(tmp)

        def loop(model):
            out = {}
            for key, wave in waves.items():
                with torch.inference_mode():
                    out[key] = model(torch.from_numpy(wave)[None], output_hidden_states=True).hidden_states[args.layer][0].numpy()
            return out

        def items():
            for key, wave in waves.items():
                audio = Audio(wave, 16000, AudioInfo(16000, 1, len(wave), "WAV", "FLOAT"))
                yield AudioItem(key, key, key, _read=lambda channel, a=audio: a)

        full = HubertModel.from_pretrained(tmp).eval()
        cut = HubertModel.from_pretrained(tmp).eval()
        cut.encoder.layers = cut.encoder.layers[: args.layer]  # fairseq's output_layer stops here
        encoders = {dtype: load_encoder(tmp, args.layer, "cpu", dtype) for dtype in ("float32", "bfloat16")}
        runs = {
            "HF loop, all layers": lambda: loop(full),
            "loop cut at the layer": lambda: loop(cut),
            "audiotok float32": lambda: dict(extract_features(items(), encoders["float32"], batch_seconds=60.0)),
            "audiotok bfloat16": lambda: dict(extract_features(items(), encoders["bfloat16"], batch_seconds=60.0)),
        }
        # The machine's speed drifts: alternate the runs and keep each one's best time.
        times = {name: float("inf") for name in runs}
        outputs = {}
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                outputs[name] = run()
                times[name] = min(times[name], time.perf_counter() - start)
    baseline = outputs["loop cut at the layer"]
    baseline_t = times["loop cut at the layer"]
    assert all(np.array_equal(outputs["HF loop, all layers"][k], baseline[k]) for k in waves)

    frames = np.concatenate(list(baseline.values()))
    centroids = frames[np.random.default_rng(0).choice(len(frames), 100, replace=False)]
    assign = NearestCentroid(centroids, mode="fp32")
    reference_units = np.concatenate([assign(baseline[k]) for k in waves])
    print(f"HuBERT-base size, random weights, layer {args.layer}, {len(waves)} utterances, {total:.0f} s of audio, {threads} threads")
    print(f"{'run':>24} {'x real time':>12} {'speed ratio':>12} {'max abs diff':>13} {'identical units':>16}")
    for name, features in outputs.items():
        diff = max(float(np.max(np.abs(features[k] - baseline[k]))) for k in waves)
        units = np.concatenate([assign(features[k]) for k in waves])
        print(f"{name:>24} {total / times[name]:>12.1f} {baseline_t / times[name]:>11.2f}x {diff:>13.2e} {np.mean(units == reference_units):>16.4f}")


if __name__ == "__main__":
    main()
