#!/usr/bin/env python3
"""random_s3.py OUT.pt [--fit DATA] [--fitted-codes N] [--codebook-size K] [--seed S]: a randomly
initialised S3 v1 (25 Hz) tokenizer in the official weight layout, small (2 layers, width 128),
for runs without the real CosyVoice file.

With random codewords nearly every frame picks the same code (a random encoder's outputs
share one direction), so units would say nothing about the audio. With --fit DATA, N of
the K codewords are instead frames of the random encoder's (normalised) output on DATA's
audio, chosen at random: the units are then a fixed, audio-dependent, deterministic function
of the recording, like a real tokenizer's, which is what a pipeline run needs. They mostly
encode the recording's voice and pitch rather than its words (bench/bench_taste_heldout.py),
so they test the pipeline, not what TASTE's speech side learns: for held-out speech-vs-text
comparisons use the real tokenizer (`audiotok model fetch cosyvoice-s3-v1-25hz`).
"""

import argparse
import math
import sys

import torch
import torch.nn.functional as F

from audiotok.units.s3 import S3Config, S3Torch, build_model, s3_tokens


def sinusoids(length: int, channels: int) -> torch.Tensor:
    scales = torch.exp(-math.log(10000) / (channels // 2 - 1) * torch.arange(channels // 2))
    angles = torch.arange(length)[:, None] * scales[None, :]
    return torch.cat([angles.sin(), angles.cos()], 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--fit", help="an audio table (data dir, ...) whose frames become codewords")
    parser.add_argument("--fitted-codes", type=int, default=256)
    parser.add_argument("--codebook-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--position-scale", type=float, default=0.0, help="weight of the sinusoidal positions (large: units follow position, not audio)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = build_model(S3Config("v1", 25, n_state=128, n_head=2, n_layer=2, codebook_size=args.codebook_size))
    encoder, book = model.encoder, model.quantizer._codebook
    encoder.positional_embedding.copy_(sinusoids(*encoder.positional_embedding.shape) * args.position_scale)
    book.embed.copy_(F.normalize(torch.randn_like(book.embed), dim=-1))
    if args.fit:
        from audiotok.io.audio_table import open_audio_source

        frames = []
        original = model.quantizer.forward

        def capture(hidden):
            frames.append(F.normalize(hidden, dim=-1).reshape(-1, hidden.shape[-1]))
            return original(hidden)

        model.quantizer.forward = capture
        source, _ = open_audio_source(args.fit)
        for _ in s3_tokens(list(source), S3Torch(model.eval(), "cpu"), batch_seconds=0.0):  # one at a time: no padding frames
            pass
        model.quantizer.forward = original
        pool = torch.cat(frames)
        count = min(args.fitted_codes, len(pool), args.codebook_size)
        chosen = torch.randperm(len(pool))[:count]
        slots = torch.randperm(args.codebook_size)[:count]
        book.embed[slots] = pool[chosen]
        print(f"{count} of {args.codebook_size} codewords from {len(pool)} frames of {args.fit}", file=sys.stderr)
    torch.save(model.state_dict(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
