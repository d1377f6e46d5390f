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
    output_format: common.UnitFormat = "text",
    dedup: common.Dedup = False,
    durations: Annotated[str | None, typer.Option("--durations", help="With --dedup and text: write durations (frames) here.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Where the bundle's encoder is, if not at the path its recipe names.")] = None,
    device: common.Device = "auto",
    dtype: common.Dtype = "float32",
    batch_seconds: common.BatchSeconds = 60.0,
    window: common.Window = 30.0,
    overlap: common.Overlap = 1.0,
    shard: common.Shard = None,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.engine import items as engine
    from audiotok.engine.batching import SignalBackend, extract_features
    from audiotok.io.outputs import make_signature
    from audiotok.io.unit_writer import UnitWriter
    from audiotok.units.bundle import Bundle
    from audiotok.units.featurize import backend_from_recipe
    from audiotok.units.front_end import recorded_front_end
    from audiotok.units.quantizing import open_assigner

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
