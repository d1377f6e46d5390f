"""Quantise features to units with a tokenizer bundle (nearest of its centroids).

Reads float matrices (ark:-, the default, or any rspecifier) and writes one
line per key: text integer vectors (`key 12 12 407 ...`), JSONL, or one
.npy per key. --dedup collapses repeats and keeps their durations in
frames. Features whose dimension differs from the bundle's are refused, and
so are features whose recipe (backend, model, layer, options, audio front
end) differs: the recipe recorded beside a feature file (FILE.recipe.json)
or, for stdin, the one given with --recipe. Without either, one warning
says the features were not checked. Centroids are scored in low precision
with an error bound (--screen) and near ties scored again in float64: the
labels equal a float64 argmin of squared distances.

\b
Example:
  audiotok quantize exp/km500 --recipe dump/feats.ark.recipe.json < dump/feats.ark > units.txt
  audiotok quantize exp/km500 scp:dump/feats.scp --dedup --format jsonl -o units.jsonl
  audiotok quantize exp/km500 scp:dump/feats.scp --shard 2/4 -o units.2.txt

See also: fit-kmeans, tokenize, report.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "quantize"


def command(
    bundle: Annotated[str, typer.Argument(metavar="BUNDLE", help="Tokenizer bundle directory (config.json + centroids.npy).", show_default=False)],
    features: Annotated[str, typer.Argument(metavar="FEATS", help="Feature rspecifier: ark:-/- (stdin), ark:F, ark,t:F, scp:F.")] = "-",
    output: common.TextOutputOption = "-",
    output_format: common.UnitFormat = "text",
    dedup: common.Dedup = False,
    durations: Annotated[str | None, typer.Option("--durations", help="With --dedup and text: write durations (frames) here.")] = None,
    device: common.Device = "auto",
    screen: Annotated[
        common.choice("auto", "bf16", "int8", "fp32"),
        typer.Option(
            "--screen",
            help="How centroids are scored before near ties are scored again in float64 (labels are the same for all): "
            "bf16, int8 (fast when the nearest centroid leads by a wide margin), fp32, or auto (int8, then bf16 when int8 leaves >10% in doubt). "
            "CUDA always runs fp32.",
        ),
    ] = "auto",
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe", metavar="FILE.recipe.json", help="The recipe of FEATS (extract-feats writes it beside them), checked against the bundle's; for stdin."
        ),
    ] = None,
    shard: common.Shard = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.units.quantize_tables import quantize_table

    quantize_table(NAME, bundle, features, output, output_format, dedup, durations, device, screen, min_success, force, recipe_file=recipe, shard=shard)
