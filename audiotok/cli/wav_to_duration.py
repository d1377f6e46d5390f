"""Write each item's duration: a Kaldi utt2dur (`key seconds`) or utt2num_samples.

Durations of plain audio files come from their headers (fast, as Kaldi's
wav-to-duration does); pipes, archive entries and segments are decoded.
--decode decodes everything, which also catches corrupt data.

\b
Example:
  audiotok wav-to-duration data/train -o data/train/utt2dur
  audiotok wav-to-duration --unit samples scp:wav.scp > utt2num_samples

See also: info.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "wav-to-duration"


def format_seconds(frames: int, rate: int) -> str:
    """Seconds with up to 6 decimals and no trailing zeros (1.54, 3.0025)."""
    text = f"{frames / rate:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def command(
    inputs: common.Inputs,
    output: common.TextOutputOption = "-",
    unit: Annotated[str, typer.Option("--unit", help="seconds (utt2dur) or samples (utt2num_samples).")] = "seconds",
    decode: Annotated[bool, typer.Option("--decode", help="Decode every item instead of reading headers.")] = False,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.errors import UsageError

    if unit not in ("seconds", "samples"):
        raise UsageError(f"unknown --unit {unit!r}", "choose seconds or samples")

    def describe(item):
        info = item.load().info if decode else item.info()
        value = str(info.frames) if unit == "samples" else format_seconds(info.frames, info.rate)
        return f"{item.key} {value}"

    common.table_report(NAME, inputs, output, describe, {"unit": unit, "decode": decode}, min_success=min_success, force=force)
