"""Audio BSQ-ViT speed with random weights (the compute of a trained model):

  encode: audio-seconds per second for the small and base configs, the library path
          (equal-length windows of an utterance batched) against one window at a time;
  train:  one forward+backward+AdamW step, plain and with gradient checkpointing.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_bsq.py [--seconds 20] [--device cpu] [--configs small,base]

Windows are the seed's 1024 frames (10.24 s). Mel computation is included in the
encode timing (it is part of encoding); audio decoding is not. The signal is noise
shaped like speech levels; the content does not change the compute.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(function, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio encoded per measurement")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default="small,base")
    parser.add_argument("--batch", type=int, default=2, help="training batch (windows of 1024 frames)")
    args = parser.parse_args()

    import torch

    from audiotok.bsq import config as bsq_config
    from audiotok.bsq.mel import MelFrontend
    from audiotok.bsq.model import AudioBSQModel
    from audiotok.bsq.tokens import encode_utterance, pad_frames

    torch.manual_seed(0)
    device = torch.device(args.device)
    wave = (np.random.default_rng(0).normal(size=int(args.seconds * 16000)) * 0.05).astype(np.float32)
    print(f"device {device}, threads {torch.get_num_threads()}, {args.seconds:g} s of audio")
    print(f"{'config':<8}{'params':>9}{'encode (audio-s/s)':>20}{'one window at a time':>22}{'batched/loop':>14}{'train step (s)':>16}{'+checkpointing':>16}")
    for name in args.configs.split(","):
        config = bsq_config.load(name)
        frontend = MelFrontend()
        model = AudioBSQModel(config["model"]).to(device).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6

        def encode_batched():
            with torch.no_grad():
                encode_utterance(model, frontend(wave).to(device))

        def encode_loop():
            with torch.no_grad():
                mel = pad_frames(frontend(wave).to(device), model.patch)
                window = model.config["input_length"]
                for start in range(0, mel.shape[0], window):
                    model.encode_ids(mel[start : start + window].unsqueeze(0))

        encode_batched()  # warm-up
        batched, loop = timed(encode_batched, 2), timed(encode_loop, 2)

        def train_step(checkpointing: bool):
            model.train()
            for block_owner in (model.encoder, model.decoder):
                block_owner.grad_checkpointing = checkpointing
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            mel = torch.rand(args.batch, 1024, 128, device=device) * 2 - 1

            def step():
                reconstruction, quant_loss, _ = model(mel)
                loss = ((reconstruction - mel) ** 2).mean() + quant_loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()

            step()  # warm-up (optimizer state)
            return timed(step, 1)

        plain, checkpointed = train_step(False), train_step(True)
        print(f"{name:<8}{params:>8.1f}M{args.seconds / batched:>20.1f}{args.seconds / loop:>22.1f}{loop / batched:>14.2f}{plain:>16.2f}{checkpointed:>16.2f}")


if __name__ == "__main__":
    main()
