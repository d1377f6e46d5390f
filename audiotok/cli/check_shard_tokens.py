"""Check that every sample of a shard directory appears exactly once in tokenize-shards'
output directory (whichever runs, tasks and processes wrote it), and merge the lines.

The samples are listed from the shards (tar member names grouped by key, as the
readers make samples; Parquet rows by their key) of --input-dir from --from-index to
--to-index, as tokenize-shards selects them. Each must be on exactly one line of the
token files {name}_*.jsonl of --output-dir, or recorded in a .skipped.jsonl file with
the reason a worker could not use it. All well: one summary line on stdout,
`N samples: T tokenized, S skipped (reason: n, ...), 0 missing, 0 duplicated`, and
exit 0. Otherwise exit 1 with one `error:` line giving the counts and the first keys
missing, duplicated or not in their shard; --list FILE writes every one of them
(`missing|duplicated|unknown|damaged SHARD KEY` lines). -o FILE writes the tokenized
lines, unchanged, in shard order then key order: the same file whatever the task and
process split (only when the check passes).

\b
Example:
  audiotok check-shard-tokens --input-dir shards/ --output-dir tokens/
  audiotok check-shard-tokens --input-dir shards/ --output-dir tokens/ -o tokens.jsonl --list problems.txt

See also: tokenize-shards.
"""

from typing import Annotated

import typer

NAME = "check-shard-tokens"


def command(
    input_dir: Annotated[str, typer.Option("--input-dir", "--input_dir", help="The shard directory tokenize-shards read.", show_default=False)],
    output_dir: Annotated[str, typer.Option("--output-dir", "--output_dir", help="The directory tokenize-shards wrote.", show_default=False)],
    from_index: Annotated[int, typer.Option("--from-index", "--from_index", min=0, help="First shard (0-based, included) of the sorted list.")] = 0,
    to_index: Annotated[int | None, typer.Option("--to-index", "--to_index", min=0, help="Shard index where to stop (excluded); default: the end.")] = None,
    merged: Annotated[
        str | None, typer.Option("-o", "--output", metavar="FILE", help="Write the merged lines here (shard, then key order).", show_default=False)
    ] = None,
    listing: Annotated[
        str | None, typer.Option("--list", metavar="FILE", help="Write every missing, duplicated or unknown key here.", show_default=False)
    ] = None,
) -> None:
    import os
    from pathlib import Path

    from audiotok.errors import AudiotokError
    from audiotok.pipeline.shard_check import check_shard_tokens, write_merged
    from audiotok.pipeline.shard_run import list_shards

    shards = list_shards(input_dir, from_index, to_index)
    if not os.path.isdir(output_dir):
        raise AudiotokError(f"no such output directory: {output_dir}", "--output-dir is the directory tokenize-shards wrote")
    result = check_shard_tokens(shards, output_dir, Path(os.path.abspath(input_dir)).name)
    if listing is not None:
        Path(listing).write_text(result.listing(), encoding="utf-8")
    if not result.complete:
        raise result.error()
    if merged is not None:
        write_merged(result, merged)
    print(result.summary())
