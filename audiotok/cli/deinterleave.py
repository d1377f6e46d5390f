"""Take interleaved token sequences apart into their streams (the inverse of interleave).

Reads what interleave writes (integers, JSONL, or strings like
<audio_12><audio_1037>...), removes the --prefix-length tokens and the
--offsets, and writes one unit table (`key 1 2 3`) per stream to the
--output files, in stream order.

\b
Example:
  audiotok deinterleave tokens.txt --ratio 2:3 --offsets 0,1024 --format string -o vq02.txt -o vq06.txt
  audiotok deinterleave bicodec.jsonl --ratio 1 --prefix-length 32 --prefix-output global.txt -o semantic.txt

See also: interleave.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "deinterleave"


def command(
    tokens: Annotated[str, typer.Argument(metavar="TOKENS", help="Interleaved tokens: a text table, jsonl:FILE, or -.")] = "-",
    outputs: Annotated[list[str] | None, typer.Option("--output", "-o", help="One unit table per stream, in stream order.")] = None,
    ratio: Annotated[str, typer.Option("--ratio", help="Tokens a group takes from each stream, e.g. 2:3.")] = "2:3",
    offsets: Annotated[str | None, typer.Option("--offsets", help="The offsets interleave added, e.g. 65536,66560.")] = None,
    prefix_length: Annotated[list[int] | None, typer.Option("--prefix-length", help="Tokens of a prefix stream (repeatable).")] = None,
    prefix_offsets: Annotated[str | None, typer.Option("--prefix-offsets", help="The offsets of the prefix streams.")] = None,
    prefix_output: Annotated[list[str] | None, typer.Option("--prefix-output", help="Where each prefix stream goes.")] = None,
    input_format: Annotated[str, typer.Option("--format", help="int, jsonl or string (how TOKENS was written).")] = "int",
    template: Annotated[str, typer.Option("--template", help="--format string: how a token is written.")] = "<audio_{}>",
    force: common.Force = False,
) -> None:
    from audiotok.units.interleave_tables import run_deinterleave

    run_deinterleave(NAME, tokens, outputs or [], ratio, offsets, prefix_length or [], prefix_offsets, prefix_output or [], input_format, template, force)
