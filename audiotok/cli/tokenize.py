"""Turn audio into tokens in one process, with any tokenizer of the registry.

A bundle (a directory, or bundle:DIR) rebuilds its features from its recipe (its
audio front end, then fbank, mfcc, logmel, or its encoder and layer) and its
centroids label them, so the units equal extract-feats then quantize with the
same recipe; the encoder is found at the path the recipe names, or at --model
(it must have the weights the bundle was made with). Any other family is named
by a spec: s3:MODEL[,version=V][,rate=R][,long_audio=M] (CosyVoice S3, as
s3-extract), bicodec:DIR (BiCodec), or a family a module named in the
environment variable AUDIOTOK_TOKENIZERS registers. A tokenizer with one field
writes a unit table (--format text, jsonl or npy); one with several fields
writes JSONL lines with every field (--format jsonl).

\b
Example:
  audiotok tokenize exp/km500 data/test -o units.txt
  audiotok tokenize exp/km500 --dedup --format jsonl a.wav b.flac
  audiotok tokenize s3:speech_tokenizer_v1.onnx,rate=50 tar:shards/ -o units.txt
  audiotok tokenize bicodec:Spark-TTS-0.5B data/test --format jsonl -o bicodec.jsonl
  audiotok tokenize exp/km500 data/train --dry-run --nj 8 > estimate.json

See also: extract-feats, quantize, tokenize-shards, stream, report.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "tokenize"


def command(
    tokenizer: Annotated[
        str,
        typer.Argument(
            metavar="TOKENIZER",
            help="A bundle directory, or a spec: bundle:DIR, s3:MODEL[,...], bicodec:DIR, or a family AUDIOTOK_TOKENIZERS adds.",
            show_default=False,
        ),
    ],
    inputs: common.Inputs,
    output: common.TextOutputOption = "-",
    output_format: common.UnitFormat = "text",
    dedup: common.Dedup = False,
    durations: Annotated[str | None, typer.Option("--durations", help="With --dedup and text: write durations (frames) here.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Bundles: where the encoder is, if not at the path the recipe names.")] = None,
    device: common.Device = "auto",
    dtype: common.Dtype = "float32",
    batch_seconds: common.BatchSeconds = 60.0,
    window: common.Window = 30.0,
    overlap: common.Overlap = 1.0,
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
    from audiotok.tokenizers import parse_spec

    common.check_dry_run(dry, nj)
    array = common.array_plan(dry, nodes, tasks_per_node, assume_x_real_time, assume_hours)
    family, target = parse_spec(tokenizer, "TOKENIZER")
    if dry:
        estimate_tokenize(tokenizer, family, target, inputs, model, device, dtype, batch_seconds, window, overlap, shard, channel, nj, calibrate_seconds, array)
    elif family == "bundle":
        tokenize_with_bundle(
            target, inputs, output, output_format, dedup, durations, model, device, dtype, batch_seconds, window, overlap, shard, channel, min_success, force
        )
    else:
        tokenize_with_family(tokenizer, inputs, output, output_format, dedup, durations, device, dtype, batch_seconds, shard, channel, min_success, force)


def tokenize_with_bundle(
    bundle, inputs, output, output_format, dedup, durations, model, device, dtype, batch_seconds, window, overlap, shard, channel, min_success, force
):
    from audiotok.engine import items as engine
    from audiotok.io.digests import model_digest
    from audiotok.io.outputs import make_signature
    from audiotok.io.unit_writer import UnitWriter
    from audiotok.tokenizers.kmeans import open_bundle

    opened = open_bundle(bundle, device, dtype, model)
    common.log.info("audio front end of %s: %s", bundle, opened.front_end.describe())
    items, source_failures, _ = engine.audio_items(inputs, shard)
    signature = make_signature(
        NAME, bundle=bundle, bundle_content=model_digest(bundle), model=model, model_content=model and model_digest(model), dtype=dtype,
        inputs=inputs, format=output_format, dedup=dedup, durations=durations, shard=shard, channel=channel, window=window, overlap=overlap,
    )  # fmt: skip
    results = bundle_units(opened, items, channel, batch_seconds, window, overlap)
    writer = UnitWriter(output, output_format, dedup, durations, signature, force, opened.bundle.units_recipe(dedup))
    engine.run(NAME, writer, results, writer.write, failures=source_failures, min_success=min_success)


def bundle_units(opened, items, channel, batch_seconds, window, overlap):
    """(key, units or ItemError) for each item: the bundle's features, then its nearest centroids."""
    from audiotok.engine.batching import SignalBackend, extract_features

    window_seconds = None if isinstance(opened.backend, SignalBackend) else window
    # Units are assigned window by window (per_frame), so a long recording's features are never held whole.
    return extract_features(
        items, opened.backend, channel=channel, batch_seconds=batch_seconds, window_seconds=window_seconds, overlap_seconds=overlap,
        front_end=opened.front_end, per_frame=opened.assigner,
    )  # fmt: skip


def estimate_tokenize(spec, family, target, inputs, model, device, dtype, batch_seconds, window, overlap, shard, channel, nj, calibrate_seconds, array=None):
    """--dry-run: the run's cost, from headers and a calibration on the first seconds (audiotok.engine.estimate)."""
    from audiotok.device import resolve
    from audiotok.engine.estimate import Model, run_estimate
    from audiotok.tokenizers import open_tokenizer, tokenize_items
    from audiotok.tokenizers.kmeans import open_bundle

    if family == "bundle":

        def load():
            opened = open_bundle(target, device, dtype, model)
            return Model(opened, opened.backend.recipe.frame_rate, "units")

        def process(opened, items):
            return bundle_units(opened, items, None, batch_seconds, window, overlap)

    else:

        def load():
            loaded = open_tokenizer(spec, resolve(device), dtype)
            return Model(loaded, getattr(loaded, "frame_rate", None), "units", fields=tuple(loaded.fields))

        def process(loaded, items):
            return tokenize_items(items, loaded, batch_seconds=batch_seconds)

    run_estimate(NAME, inputs, load=load, process=process, shard=shard, nj=nj, calibrate_seconds=calibrate_seconds, channel=channel, array=array)


def tokenize_with_family(spec, inputs, output, output_format, dedup, durations, device, dtype, batch_seconds, shard, channel, min_success, force):
    import numpy as np

    from audiotok.device import resolve
    from audiotok.engine import items as engine
    from audiotok.errors import UsageError
    from audiotok.io.outputs import TextOutput, make_signature
    from audiotok.io.tables import format_jsonl
    from audiotok.io.unit_writer import UnitWriter
    from audiotok.tokenizers import fingerprint, open_tokenizer, tokenize_items

    signature = make_signature(
        NAME, tokenizer=spec, tokenizer_content=fingerprint(spec), dtype=dtype,
        inputs=inputs, format=output_format, dedup=dedup, durations=durations, shard=shard, channel=channel,
    )  # fmt: skip
    loaded = open_tokenizer(spec, resolve(device), dtype)
    items, source_failures, _ = engine.audio_items(inputs, shard)
    results = tokenize_items(items, loaded, channel=channel, batch_seconds=batch_seconds)
    if len(loaded.fields) == 1:
        (field,) = loaded.fields
        writer = UnitWriter(output, output_format, dedup, durations, signature, force)
        engine.run(NAME, writer, results, lambda key, fields: writer.write(key, np.asarray(fields[field])), failures=source_failures, min_success=min_success)
        return
    if output_format != "jsonl" or dedup or durations:
        raise UsageError(f"{spec} gives several fields ({', '.join(loaded.fields)})", "write them with --format jsonl (no --dedup)")
    target = TextOutput(output, signature, force)
    engine.run(NAME, target, results, lambda key, fields: target.write_line(format_jsonl(key, **fields)), failures=source_failures, min_success=min_success)
