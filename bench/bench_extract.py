"""extract-feats precision layouts vs the fp32 loop cut at the layer, on a HuBERT-base-size
model with random weights (the compute of a trained one; no hub here).

    .venv/bin/python bench/bench_extract.py [--audio DIR] [--seconds 60] [--rounds 3] [--layer 6] [--k 500]

The baseline runs each utterance alone through the transformers model cut
after --layer, in float32 (fairseq's dump_hubert_feature with output_layer).
audiotok runs the same utterances through extract-feats' model loop
(engine/batching.extract_features, in memory) in float32 (must be equal bit
for bit) and in bfloat16 under each precision layout (units/precision.py):
uniform (the default: everything bf16), fp32-cnn (conv feature encoder in
fp32), fp32-last (the layer read in fp32), autocast (bf16 products, fp32
norms, softmax and residual stream). Runs alternate round by round (harness.py);
ratios are the cut loop's median time over each run's (above 1: faster).

Units: k-means with K=--k (audiotok.units.kmeans.fit_kmeans, seed 0) is fitted
on every frame of the baseline's features of the timed audio; each run's
features get their nearest centroid (exact, float64) and are compared to the
baseline's. Random-weight features are not degenerate here: the fp32 units
use all 500 clusters (the largest holds < 1% of the frames) and change almost
every frame; the weights are HubertModel's default random init, unscaled.
--seconds 0 takes all the audio (the 50 shared recordings: 418 s, 20,863 frames);
the default, 60 s (about 3,000 frames, 6 a centroid), is run_all's share.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from harness import Results, alternate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE = "cut loop fp32"
LAYOUTS = ("uniform", "fp32-cnn", "fp32-last", "autocast")


def corpus(audio_dir, seconds):
    """{key: 16 kHz waveform} of the first `seconds` of the table (all of it for 0); synthetic tones without audio."""
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
            if seconds and total >= seconds:
                break
    else:
        rng = np.random.default_rng(0)
        while total < (seconds or 120):
            length = rng.uniform(2, 12)
            t = np.arange(int(16000 * length)) / 16000
            waves[f"s{len(waves):03d}"] = (
                0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t * (1 + 0.1 * np.sin(t))) + 0.02 * rng.standard_normal(len(t))
            ).astype(np.float32)
            total += length
    return waves, total


def nearest(frames: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Exact nearest-centroid labels (float64: no GEMM rounding decides a near-tie)."""
    c = centroids.astype(np.float64)
    half_norms = 0.5 * (c * c).sum(1)
    return np.concatenate([np.argmin(half_norms - block.astype(np.float64) @ c.T, axis=1) for block in np.array_split(frames, max(1, len(frames) // 4096))])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", default=os.environ.get("AUDIOTOK_TEST_AUDIO", "/work/shared/data/speech"))
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio timed and compared (0: all of it)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="run_all's setting: 60 s of audio, 3 rounds (about 2 minutes)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 60.0, 3

    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from audiotok.engine.batching import extract_features
    from audiotok.io.audio import Audio, AudioInfo
    from audiotok.io.audio_table import AudioItem
    from audiotok.units.encoders import load_encoder, quiet_transformers
    from audiotok.units.kmeans import fit_kmeans

    quiet_transformers()
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    audio_dir = args.audio if args.audio and Path(args.audio).is_dir() else None
    waves, total = corpus(audio_dir, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        HubertModel(HubertConfig()).save_pretrained(tmp)  # HuBERT-base: group norm, 12 layers, 768 wide
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=False).save_pretrained(tmp)

        cut = HubertModel.from_pretrained(tmp).eval()
        cut.encoder.layers = cut.encoder.layers[: args.layer]  # fairseq's output_layer stops here

        def cut_loop():
            out = {}
            for key, wave in waves.items():
                with torch.inference_mode():
                    out[key] = cut(torch.from_numpy(wave)[None], output_hidden_states=True).hidden_states[args.layer][0].numpy()
            return out

        def items():
            for key, wave in waves.items():
                audio = Audio(wave, 16000, AudioInfo(16000, 1, len(wave), "WAV", "FLOAT"))
                yield AudioItem(key, key, key, _read=lambda channel, a=audio: a)

        def audiotok_run(encoder):
            return lambda: dict(extract_features(items(), encoder, batch_seconds=60.0))

        runs = {BASELINE: cut_loop, "audiotok fp32": audiotok_run(load_encoder(tmp, args.layer, "cpu", "float32"))}
        for layout in LAYOUTS:
            runs[f"audiotok bf16 {layout}"] = audiotok_run(load_encoder(tmp, args.layer, "cpu", "bfloat16", layout=layout))
        timings = alternate(runs, rounds=args.rounds)

    baseline = timings[BASELINE].last
    keys = list(waves)
    frames = np.concatenate([baseline[k] for k in keys])
    case = f"HuBERT-base size layer {args.layer}, {len(waves)} utterances, {total:.0f} s, {threads} threads"
    print(f"{case}: k-means K={args.k} on the baseline's {len(frames)} frames")
    centroids = fit_kmeans(frames, args.k, seed=0).centroids
    reference = nearest(frames, centroids)
    results = Results("extract")
    counts = np.bincount(reference, minlength=args.k)
    runs_of_units = len(reference) / (1 + np.count_nonzero(np.diff(reference)))
    results.fact(
        case,
        f"{BASELINE} units used (K={args.k})",
        f"{np.count_nonzero(counts)}/{args.k}, largest cluster {counts.max() / len(reference):.2%} of frames, mean run {runs_of_units:.2f} frames",
    )
    for name in runs:
        if name == BASELINE:
            continue
        features = timings[name].last
        units = nearest(np.concatenate([features[k] for k in keys]), centroids)
        exact = all(np.array_equal(features[k], baseline[k]) for k in keys)
        diff = max(float(np.max(np.abs(features[k] - baseline[k]))) for k in keys)
        results.fact(case, f"{name} identical units (K={args.k})", f"{np.mean(units == reference):.4%}")
        results.fact(case, f"{name} units used", f"{len(np.unique(units))}/{args.k}")
        results.fact(case, f"{name} features", "bit-exact" if exact else f"max abs diff {diff:.3g}")
    for name in runs:
        if name != BASELINE:
            pair = {name: timings[name], BASELINE: timings[BASELINE]}
            results.ratio(f"{case}: {name}", pair, ours=name, peer=BASELINE, target=1.8 if "bf16" in name else None, unit_of_work=total, unit="audio s")


if __name__ == "__main__":
    main()
