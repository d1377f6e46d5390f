"""Step-Audio's vq02 encoder: audiotok's offline path vs the step-by-step loop Step-Audio runs,
on a full-size Paraformer-large encoder (50 SAN-M blocks, 512 wide, 4 heads, FFN 2048) with
random weights: the compute of the real model.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_paraformer.py [--seconds 60] [--recordings 4]
    # with FunASR itself as the baseline too (see tests/data/make_paraformer_golden.py):
    PYTHONPATH=/tmp/funasr_ref OMP_NUM_THREADS=1 .venv/bin/python bench/bench_paraformer.py

Step-Audio's way (tokenizer.py get_vq02_code -> infer_encoder): one recording at a time,
240 ms steps (3840 samples), each step through the streaming frontend and all 50 blocks
with per-layer key/value caches. Measured here as audiotok's streaming session fed 3840
samples at a time (the same per-step computation), and, when FunASR is importable, as
FunASR's own WavFrontendOnline + SANMEncoderChunkOpt.forward_chunk in that loop.
audiotok's offline path: every 240 ms window of a recording goes through a layer at once,
recordings batched. Speech-like synthetic audio (no corpus needed); frontend included in
every timing. Prints audio-seconds per second, the ratios, and the largest output difference.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def speechlike(samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)) / 16000
    voice = sum(np.sin(h * phase) / h for h in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + seed) ** 2)
    return (0.1 * voice + 0.005 * rng.standard_normal(samples)).astype(np.float32)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def stepwise(model, wave: np.ndarray) -> np.ndarray:
    stream = model.stream()
    parts = [stream.feed(wave[i : i + 3840]) for i in range(0, len(wave), 3840)]
    return np.concatenate([*parts, stream.finish()])


def funasr_loop(directory: Path, waves: list[np.ndarray]):
    """FunASR's own modules in Step-Audio's loop, or None when FunASR is not importable."""
    try:
        sys.path.insert(0, str(ROOT / "tests" / "data"))
        from make_paraformer_golden import FRONTEND_CONF, StepAudioFrontend, infer_encoder
    except ImportError:
        return None
    import torch
    from funasr.models.scama.encoder import SANMEncoderChunkOpt

    encoder = SANMEncoderChunkOpt(
        input_size=560, output_size=512, attention_heads=4, linear_units=2048, num_blocks=50, input_layer="pe_online", kernel_size=11
    ).eval()
    state = torch.load(directory / "model.pt", weights_only=True)
    encoder.load_state_dict({k[len("encoder.") :]: v for k, v in state.items()})
    frontend = StepAudioFrontend(cmvn_file=str(directory / "am.mvn"), **FRONTEND_CONF)
    with torch.no_grad():
        return [infer_encoder(encoder, frontend, torch.from_numpy(w)) for w in waves]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total audio")
    parser.add_argument("--recordings", type=int, default=4, help="split into this many recordings")
    args = parser.parse_args()
    import torch

    from audiotok.units.funasr_dir import load_paraformer
    from audiotok.units.paraformer import EncoderConfig
    from tests.builders.paraformer import random_encoder, save_funasr_dir

    rng = np.random.default_rng(0)
    lengths = rng.dirichlet(np.ones(args.recordings)) * args.seconds * 16000
    waves = [speechlike(int(n), seed) for seed, n in enumerate(lengths)]
    total = sum(len(w) for w in waves) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        directory = save_funasr_dir(
            Path(tmp) / "paraformer-large-random",
            random_encoder(EncoderConfig(), seed=0),
            -rng.uniform(8, 12, 560).astype(np.float32),
            rng.uniform(0.2, 0.3, 560).astype(np.float32),
        )
        model = load_paraformer(directory)[0]
        print(f"{len(waves)} recordings, {total:.1f} s of audio, torch threads {torch.get_num_threads()}, Paraformer-large encoder (50 x 512), random weights")
        model.encode([waves[0][:16000]])  # warm-up
        offline, offline_time = timed(lambda: model.encode(waves))
        steps, steps_time = timed(lambda: [stepwise(model, w) for w in waves])
        print(f"  offline (windows batched)       {total / offline_time:8.2f} audio-s/s  ({offline_time:.2f} s)")
        print(
            f"  240 ms steps (Step-Audio's way) {total / steps_time:8.2f} audio-s/s  ({steps_time:.2f} s)   offline speed-up x{steps_time / offline_time:.1f}"
        )
        diff = max(float(np.abs(a - b).max()) for a, b in zip(offline, steps, strict=True))
        print(f"  max |offline - steps| = {diff:.2e} over {sum(len(o) for o in offline)} frames of 512")
        reference, funasr_time = timed(lambda: funasr_loop(directory, waves))
        if reference is None:
            print("  FunASR not importable: its own loop was not timed (see the docstring)")
            return
        print(
            f"  FunASR modules, Step-Audio loop {total / funasr_time:8.2f} audio-s/s  "
            f"({funasr_time:.2f} s)   offline speed-up x{funasr_time / offline_time:.1f}"
        )
        diff = max(float(np.abs(a - b).max()) for a, b in zip(offline, reference, strict=True))
        print(f"  max |offline - FunASR| = {diff:.2e}; frames equal: {[len(o) for o in offline] == [len(r) for r in reference]}")


if __name__ == "__main__":
    main()
