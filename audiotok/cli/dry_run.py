"""The --dry-run options of the corpus commands (tokenize, extract-feats, s3-extract, tokenize-shards):
declared once here, the estimate itself lives in audiotok.engine.estimate."""

from typing import Annotated

import typer

DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Write nothing; estimate items, hours, frames, tokens, disk and time (a short calibration run): "
        "readable lines on stderr, one JSON line on stdout.",
    ),
]
Jobs = Annotated[int | None, typer.Option("--nj", min=1, help="With --dry-run: the time of N jobs, the input cut as --shard J/N cuts it.")]
CalibrateSeconds = Annotated[float, typer.Option("--calibrate-seconds", min=0.1, help="With --dry-run: seconds of the first items the model is timed on.")]


def check(dry: bool, nj: int | None) -> None:
    """--nj only sizes the jobs of an estimate: a run cuts its jobs with --shard J/N."""
    from audiotok.errors import UsageError

    if nj is not None and not dry:
        raise UsageError("--nj goes with --dry-run", "run the jobs with --shard J/N each")
