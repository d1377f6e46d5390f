"""CosyVoice S3 speech tokenizer units (v1: 4096 codes, v2: 6561 FSQ codes; 25 or
50 a second) from the official ONNX file, or from S3Tokenizer PyTorch weights
(a local .safetensors/.pt file or a directory holding one) for batched GPU use.
Audio is resampled to 16 kHz (torchaudio's resampler, as the references do) and
gets a log-mel per model call. Recordings over 30 s are cut and joined the way
--long-audio names, each mode equal token for token to its reference:

\b
  s3tokenizer  (default) the s3tokenizer package: one log-mel, 30 s windows
               every 26 s, 2 s dropped at each inner edge. LOSES AUDIO where
               the last window is under 4 s: up to the 2 s before the end
               (a 53.0 s file gives 1275 tokens at 25 Hz, not 1325).
  step-audio   Step-Audio's vq06: 30 s chunks without overlap, a log-mel per
               chunk, a last chunk under 480 samples skipped.
  sliding      audiotok's own: one log-mel, 30 s windows with 4 s overlap,
               the last one ending at the end, overlaps split in the middle;
               loses nothing, matches no reference past 30 s.

Up to 30 s the modes agree. Items off Step-Audio's check |tokens - rate x
seconds| <= 2 are counted and named in a warning. A file output gets
OUT.recipe.json beside it: model, version, rate, codebook, mode, resampler.

\b
Example:
  audiotok s3-extract --model speech_tokenizer_v1.onnx data/train -o units.txt
  audiotok s3-extract --model speech_tokenizer_v1.onnx --long-audio step-audio data/train -o vq06.txt
  audiotok s3-extract --model s3_v2.pt --device cuda --format jsonl a.wav b.flac
  audiotok s3-extract --model s3_v1_25hz.safetensors --rate 25 --shard 2/8 data/train -o units.2.txt
  audiotok s3-extract --model speech_tokenizer_v1.onnx data/train --dry-run --nj 8

See also: tokenize, interleave, report.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "s3-extract"


def command(
    inputs: common.Inputs,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="A preset (cosyvoice-s3-v1-25hz, ...), speech_tokenizer_*.onnx, or S3Tokenizer weights (.safetensors/.pt file or directory).",
            show_default=False,
        ),
    ],
    version: Annotated[str | None, typer.Option("--version", help="v1 or v2; checked against the model.")] = None,
    rate: Annotated[int | None, typer.Option("--rate", help="Tokens a second, 25 or 50: needed for v1 PyTorch weights, checked for ONNX.")] = None,
    long_audio: Annotated[str, typer.Option("--long-audio", help="Over 30 s: s3tokenizer, step-audio or sliding (see above).")] = "s3tokenizer",
    resampler: Annotated[str, typer.Option("--resampler", help="To 16 kHz with torchaudio (the references' Resample defaults) or soxr.")] = "torchaudio",
    attn_ln_eps: Annotated[
        float | None,
        typer.Option(
            "--attn-ln-eps",
            help="S3 v2 PyTorch weights: attention LayerNorm epsilon; default 1e-5 as s3tokenizer 0.3.0 (1e-6: S3Tokenizer's git). ONNX files carry their own.",
            show_default=False,
        ),
    ] = None,
    output: common.TextOutputOption = "-",
    output_format: common.UnitFormat = "text",
    dedup: common.Dedup = False,
    device: common.Device = "auto",
    batch_seconds: common.BatchSeconds = 60.0,
    shard: common.Shard = None,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
    dry: common.DryRun = False,
    nj: common.Jobs = None,
    nodes: common.Nodes = None,
    tasks_per_node: common.TasksPerNode = 1,
    assume_x_real_time: common.AssumeXRealTime = None,
    assume_hours: common.AssumeHours = None,
    calibrate_seconds: common.CalibrateSeconds = 10.0,
) -> None:
    import logging

    from audiotok.device import resolve
    from audiotok.engine import items as engine
    from audiotok.io.outputs import make_signature
    from audiotok.io.unit_writer import UnitWriter
    from audiotok.tokenizers.s3 import open_backend
    from audiotok.units.s3 import S3Options, s3_tokens, step_audio_check, units_recipe
    from audiotok.units.s3_onnx import S3Onnx

    log = logging.getLogger("audiotok")
    common.check_dry_run(dry, nj)
    array = common.array_plan(dry, nodes, tasks_per_node, assume_x_real_time, assume_hours)
    options = S3Options(model, version, rate, long_audio, resampler, attn_ln_eps)
    options.check()
    if dry:
        from audiotok.engine.estimate import Model, run_estimate

        def load():
            backend = open_backend(options, resolve(device))
            return Model(backend, backend.rate, "units")

        def process(backend, items):
            for result in s3_tokens(items, backend, batch_seconds=batch_seconds, long_audio=long_audio, resampler=resampler):
                yield result.key, result.tokens

        run_estimate(NAME, inputs, load=load, process=process, shard=shard, nj=nj, calibrate_seconds=calibrate_seconds, channel=channel, array=array)
        return
    backend = open_backend(options, resolve(device))
    if isinstance(backend, S3Onnx):
        known = f"the official S3 {backend.version}" if backend.version else "an S3 (not an official file)"
        log.info("%s is %s ONNX model, %d tokens a second", model, known, backend.rate)
    recipe = units_recipe(backend, options, dedup)
    items, source_failures, _ = engine.audio_items(inputs, shard)
    made_by = {k: v for k, v in recipe.items() if k != "audiotok"}
    signature = make_signature(NAME, **made_by, inputs=inputs, format=output_format, shard=shard, channel=channel)
    off_rate = []

    def results():
        for result in s3_tokens(items, backend, channel=channel, batch_seconds=batch_seconds, long_audio=long_audio, resampler=resampler):
            if not isinstance(result.tokens, Exception) and not step_audio_check(len(result.tokens), result.seconds, backend.rate):
                off_rate.append(f"{result.key} ({len(result.tokens)} tokens for {result.seconds:.2f} s)")
            yield result.key, result.tokens

    def warn_off_rate():
        if off_rate:
            named = ", ".join(off_rate[:5]) + (", ..." if len(off_rate) > 5 else "")
            log.warning("%d items fail Step-Audio's check |tokens - %d x seconds| <= 2: %s", len(off_rate), backend.rate, named)

    writer = UnitWriter(output, output_format, dedup, None, signature, force, recipe)
    engine.run(NAME, writer, results(), writer.write, failures=source_failures, min_success=min_success, before_finish=warn_off_rate)
