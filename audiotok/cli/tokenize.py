"""Turn audio into units in one process, with no feature files: the bundle's
recipe rebuilds its features (its audio front end, then fbank, mfcc, logmel,
or its encoder and layer) and its centroids label them, so the units equal
extract-feats then quantize with the same recipe. The audio front end is
replayed as recorded (a bundle that records none resamples only). The
encoder is found at the path the recipe names, or at --model (it must have
the weights the bundle was made with).

\b
Example:
  audiotok tokenize exp/km500 data/test -o units.txt
  audiotok tokenize exp/km500 --dedup --format jsonl a.wav b.flac
  audiotok tokenize exp/km500 tar:shards/ -o units.txt

See also: extract-feats, quantize, report.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "tokenize"


def command(
    bundle: Annotated[str, typer.Argument(metavar="BUNDLE", help="Tokenizer bundle directory.", show_default=False)],
    inputs: common.Inputs,
    output: common.TextOutputOption = "-",
    output_format: Annotated[str, typer.Option("--format", help="text, jsonl or npy (npy: -o DIR).")] = "text",
    dedup: Annotated[bool, typer.Option("--dedup", help="Collapse runs of a unit; keep run lengths as durations.")] = False,
    durations: Annotated[str | None, typer.Option("--durations", help="With --dedup and text: write durations (frames) here.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Where the bundle's encoder is, if not at the path its recipe names.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="Encoder precision: float32, float16 or bfloat16.")] = "float32",
    batch_seconds: Annotated[float, typer.Option("--batch-seconds", min=0.0, help="Padded audio seconds per encoder batch.")] = 60.0,
    window: Annotated[float, typer.Option("--window", min=1.0, help="Encoders: longest piece in seconds.")] = 30.0,
    overlap: Annotated[float, typer.Option("--overlap", min=0.0, help="Seconds shared by consecutive windows.")] = 1.0,
    shard: Annotated[str | None, typer.Option("--shard", help="J/N: only the J-th of N contiguous parts of the input.")] = None,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.engine import items as engine
    from audiotok.io.outputs import make_signature
    from audiotok.units.bundle import Bundle
    from audiotok.engine.batching import SignalBackend, extract_features
    from audiotok.units.featurize import backend_from_recipe
    from audiotok.units.front_end import recorded_front_end
    from audiotok.units.quantizing import open_assigner
    from audiotok.io.unit_writer import UnitWriter

    loaded = Bundle.load(bundle)
    front_end = recorded_front_end(loaded.recipe, f"{bundle}/config.json")
    backend = backend_from_recipe(loaded.recipe, device, dtype, model)
    loaded.check_features(backend.dim, {**backend.recipe.as_dict(), "front_end": front_end.as_dict()}, f"the recipe of {bundle}")
    common.log.info("audio front end of %s: %s", bundle, front_end.describe())
    assigner = open_assigner(loaded, device, exact_fp32=False)
    items, source_failures, _ = engine.audio_items(inputs, shard)
    signature = make_signature(NAME, bundle=bundle, inputs=inputs, format=output_format, dedup=dedup, durations=durations, shard=shard, channel=channel, window=window, overlap=overlap)
    window_seconds = None if isinstance(backend, SignalBackend) else window
    results = extract_features(items, backend, channel=channel, batch_seconds=batch_seconds, window_seconds=window_seconds, overlap_seconds=overlap, front_end=front_end)
    writer = UnitWriter(output, output_format, dedup, durations, signature, force)
    engine.run(NAME, writer, results, lambda key, features: writer.write(key, assigner(features)), failures=source_failures, min_success=min_success)
