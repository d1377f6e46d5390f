"""Interleave unit streams by key into one token sequence per key.

Takes groups of --ratio tokens from each stream in turn (2:3: two of the
first, three of the second), drops a trailing partial group (Step-Audio's
rule), adds each stream's --offsets, and puts --prefix streams (e.g.
BiCodec's global tokens) first. Writes integers (`key 65536 65537 ...`),
JSONL, or strings (--format string --template '<audio_{}>'). Streams must
hold the same keys, at rates that fit the ratio.

\b
Example:
  # Step-Audio: vq02 (16.7 Hz) and vq06 (25 Hz) -> <audio_N> strings
  audiotok interleave vq02.txt vq06.txt --ratio 2:3 --offsets 0,1024 --format string
  # the same as LLM ids (vq02 65536 + code, vq06 66560 + code)
  audiotok interleave vq02.txt vq06.txt --ratio 2:3 --offsets 65536,66560 -o tokens.txt
  # BiCodec: 32 global tokens, then the semantic tokens
  audiotok interleave semantic.txt --ratio 1 --prefix global.txt --format jsonl

See also: deinterleave, quantize, s3-extract.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "interleave"


def command(
    streams: Annotated[list[str], typer.Argument(metavar="STREAM", help="Unit tables (`key 1 2 3`, jsonl:FILE, or - once).", show_default=False)],
    ratio: Annotated[str, typer.Option("--ratio", help="Tokens a group takes from each stream, e.g. 2:3.")] = "2:3",
    offsets: Annotated[str | None, typer.Option("--offsets", help="Added to each stream's codes, e.g. 65536,66560.")] = None,
    prefix: Annotated[list[str] | None, typer.Option("--prefix", help="A unit table put before the interleaved tokens (repeatable).")] = None,
    prefix_offsets: Annotated[str | None, typer.Option("--prefix-offsets", help="Added to each prefix table's codes.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="int, jsonl or string.")] = "int",
    template: Annotated[str, typer.Option("--template", help="--format string: how a token is written.")] = "<audio_{}>",
    max_skew: Annotated[float, typer.Option("--max-skew", min=0.0, help="Largest difference in whole groups between streams (beyond 5%).")] = 3.0,
    output: common.TextOutputOption = "-",
    force: common.Force = False,
) -> None:
    from audiotok.units.interleave_tables import run_interleave

    run_interleave(NAME, streams, ratio, offsets, prefix or [], prefix_offsets, output_format, template, max_skew, output, force)
