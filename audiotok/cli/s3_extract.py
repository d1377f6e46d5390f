"""CosyVoice S3 speech tokenizer units (v1: 4096 codes, v2: 6561 FSQ codes; 25 or
50 a second) from the official ONNX file, or from S3Tokenizer PyTorch weights
(a local .safetensors/.pt file or a directory holding one) for batched GPU use.
Audio is resampled to 16 kHz; log-mel is computed per utterance; recordings
over 30 s are cut into 30 s windows with 4 s overlap and stitched. Items
whose token count is off Step-Audio's check |tokens - rate x seconds| <= 2
are counted and named in a warning.

\b
Example:
  audiotok s3-extract --model speech_tokenizer_v1.onnx data/train -o units.txt
  audiotok s3-extract --model s3_v2.pt --device cuda --format jsonl a.wav b.flac
  audiotok s3-extract --model s3_v1_25hz.safetensors --rate 25 --shard 2/8 data/train -o units.2.txt

See also: tokenize, interleave, report.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "s3-extract"


def command(
    inputs: common.Inputs,
    model: Annotated[
        str, typer.Option("--model", help="A preset (cosyvoice-s3-v1-25hz, ...), speech_tokenizer_*.onnx, or S3Tokenizer weights (.safetensors/.pt file or directory).", show_default=False)
    ],
    version: Annotated[str | None, typer.Option("--version", help="v1 or v2; checked against the model.")] = None,
    rate: Annotated[int | None, typer.Option("--rate", help="Tokens a second, 25 or 50: needed for v1 PyTorch weights, checked for ONNX.")] = None,
    output: common.TextOutputOption = "-",
    output_format: Annotated[str, typer.Option("--format", help="text, jsonl or npy (npy: -o DIR).")] = "text",
    dedup: Annotated[bool, typer.Option("--dedup", help="Collapse runs of a unit; keep run lengths as durations.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    batch_seconds: Annotated[float, typer.Option("--batch-seconds", min=0.0, help="Audio seconds per model batch (ONNX: windows of one length only).")] = 60.0,
    shard: Annotated[str | None, typer.Option("--shard", help="J/N: only the J-th of N contiguous parts of the input.")] = None,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    import logging

    from audiotok.errors import UsageError
    from audiotok.io.audio_table import open_audio_source
    from audiotok.io.outputs import make_signature
    from audiotok.models.store import resolve_model_path
    from audiotok.runner import Tally, progress
    from audiotok.units.encoders import resolve_device
    from audiotok.units.extract import select_shard
    from audiotok.units.s3 import S3Torch, load_torch_model, s3_tokens, step_audio_check
    from audiotok.units.s3_onnx import S3Onnx
    from audiotok.units.unit_output import UnitWriter

    log = logging.getLogger("audiotok")
    if version not in (None, "v1", "v2"):
        raise UsageError(f"unknown --version {version!r}", "choose v1 or v2")
    if rate not in (None, 25, 50):
        raise UsageError(f"--rate {rate}: S3 tokenizers give 25 or 50 tokens a second")
    device = resolve_device(device)
    model = resolve_model_path(model)
    if model.endswith(".onnx"):
        backend = S3Onnx(model, device, version, rate)
        known = f"the official S3 {backend.version}" if backend.version else "an S3 (not an official file)"
        log.info("%s is %s ONNX model, %d tokens a second", model, known, backend.rate)
    else:
        backend = S3Torch(load_torch_model(model, version, rate), device)
    source, source_failures = open_audio_source(inputs)
    items = select_shard(list(source), shard)
    signature = make_signature(
        NAME, model=model, version=version, rate=backend.rate, inputs=inputs, format=output_format, dedup=dedup, shard=shard, channel=channel
    )
    tally = Tally(min_success)
    off_rate = []
    with UnitWriter(output, output_format, dedup, None, signature, force) as writer:
        for result in progress(s3_tokens(items, backend, channel=channel, batch_seconds=batch_seconds), NAME):
            if isinstance(result.tokens, Exception):
                tally.fail(result.key, str(result.tokens))
                continue
            if not step_audio_check(len(result.tokens), result.seconds, backend.rate):
                off_rate.append(f"{result.key} ({len(result.tokens)} tokens for {result.seconds:.2f} s)")
            writer.write(result.key, result.tokens)
            tally.success()
        for name, reason in source_failures:
            tally.fail(name, reason)
    if off_rate:
        named = ", ".join(off_rate[:5]) + (", ..." if len(off_rate) > 5 else "")
        log.warning("%d items fail Step-Audio's check |tokens - %d x seconds| <= 2: %s", len(off_rate), backend.rate, named)
    tally.finish()
    writer.mark_done()
