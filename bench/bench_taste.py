"""TASTE model speed with random weights and random features (the compute of a trained model):

  train:  one forward+backward+AdamW step on a batch of utterances of --seconds each
          (Whisper frames at 50/s, S3 units at 25/s, --tokens-per-second text tokens),
          for the tiny and small presets, padded batch vs the same items one at a time;
  encode: taste-encode's aggregator + RVQ on features (no Whisper): utterances per second;
  greedy: free-running unit generation (no key/value cache): units per second.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_taste.py [--seconds 10] [--batch 4] [--device cpu]

Feature sizes are whisper-tiny.en's (384 and 384); the decoder's vocabulary is S3 v1's (4096).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(function, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens-per-second", type=float, default=3.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default="tiny,small")
    args = parser.parse_args()

    import torch

    from audiotok.taste import config as taste_config
    from audiotok.taste.data import Item, collate
    from audiotok.taste.encode import TasteEncoder
    from audiotok.taste.model import TasteModel, parameter_count

    rng = np.random.default_rng(0)
    frames, units, tokens = int(50 * args.seconds), int(25 * args.seconds), max(1, int(args.tokens_per_second * args.seconds))
    for name in args.configs.split(","):
        config = taste_config.resolve({"preset": name, "decoder": {"unit_vocab": 4096, "max_positions": 8192}, "model": {"max_text_tokens": 2048}})
        torch.manual_seed(0)
        model = TasteModel(config, 384, 384).to(args.device)
        items = [
            Item(
                f"u{i}",
                "",
                np.arange(tokens),
                rng.standard_normal((tokens, 384)).astype(np.float32),
                rng.standard_normal((frames, 384)).astype(np.float32),
                rng.integers(0, 4096, units),
            )
            for i in range(args.batch)
        ]
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(group):
            batch = collate(group).to(args.device)
            loss = model(batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        model.train()
        batched = timed(lambda: step(items))
        alone = timed(lambda: [step([item]) for item in items])
        encoder = TasteEncoder(model.config).to(args.device)
        encoder.load_state_dict({k: v for k, v in model.state_dict().items() if k.startswith(("aggregator.", "rvq."))})
        encoder.eval()
        encode = timed(lambda: [encoder.codes(item.text_emb, item.whisper) for item in items])
        model.eval()
        count = min(units, 100)
        greedy = timed(lambda: model.generate(collate(items[:1]).to(args.device), count), repeats=1)
        print(
            f"{name}: {parameter_count(model) / 1e6:.2f}M parameters; batch of {args.batch} "
            f"x {args.seconds:g} s ({tokens} text tokens, {frames} frames, {units} units): "
            f"train step {batched:.3f} s batched, {alone:.3f} s one at a time; encode {len(items) / encode:.1f} utt/s "
            f"({len(items) * args.seconds / encode:.0f} audio-s/s); greedy {count / greedy:.1f} units/s"
        )


if __name__ == "__main__":
    main()
