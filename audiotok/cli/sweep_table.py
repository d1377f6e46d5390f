"""Tabulate and plot a sweep of encoder layers x codebook sizes: ABX, PNMI and bit rates.

Reads RESULTS (a list FILE, or - for stdin) of `LAYER K FILE` lines: LAYER a layer
number or another label (mfcc), K a codebook size or dense, FILE the JSON of `audiotok
abx --format json` (dense features) or `audiotok report --abx --format json` (units),
relative to the list's directory (a file's own k must match K). Blank lines and `#`
lines are skipped; any other bad line stops the run with one `error: LIST:N: ...` line.

Prints a markdown table (or writes it to --markdown FILE): layer, k, PNMI (3 decimals),
nominal and entropy bits/s (1 decimal), then the ABX error of each condition some file
holds, in percent with 2 decimals; `–` marks a value a file lacks or holds as null.
Rows: labels that are not layer numbers first (list order), then layers by number; dense
before k ascending. --tsv writes the same table with JSON key names as headers, raw
fractions and empty cells where a value is missing. --plot draws, over the layers, the
ABX error of --condition (one line a k, dense black dashed) beside PNMI (solid) and
entropy bits/s (dotted); other labels are horizontal reference lines. recipes/abx_sweep
runs a whole sweep and ends with this.

\b
Example:
  audiotok sweep-table exp/results.list
  audiotok sweep-table exp/results.list --markdown exp/sweep.md --tsv exp/sweep.tsv --plot exp/sweep.png
  printf '6 dense L6/dense.json\\n6 500 L6/k500.json\\n' | audiotok sweep-table - --plot l6.png --condition triphone_within_speaker

See also: abx, report.
"""

from typing import Annotated

import typer

NAME = "sweep-table"


def command(
    results: Annotated[str, typer.Argument(metavar="RESULTS", help="List of `LAYER K FILE` lines, or - for stdin.", show_default=False)],
    markdown: Annotated[str | None, typer.Option("--markdown", metavar="FILE", help="Write the markdown table here instead of stdout.")] = None,
    tsv: Annotated[str | None, typer.Option("--tsv", metavar="FILE", help="Also write the table as TSV (raw fractions, empty = missing).")] = None,
    plot: Annotated[str | None, typer.Option("--plot", metavar="FILE.png", help="Also draw ABX, PNMI and entropy bits/s by layer as a PNG.")] = None,
    condition: Annotated[
        str | None,
        typer.Option("--condition", metavar="NAME", help="The ABX condition plotted (default: the one with a value in the most rows)."),
    ] = None,
) -> None:
    import logging
    import sys

    from audiotok.abx import sweep
    from audiotok.abx.score import CONDITION_NAMES
    from audiotok.errors import UsageError
    from audiotok.io.atomic import atomic_write_text

    log = logging.getLogger("audiotok")
    if condition is not None:
        condition = condition.removeprefix("abx_")
        if condition not in CONDITION_NAMES:
            raise UsageError(f"unknown --condition {condition!r}", f"choose one of {', '.join(CONDITION_NAMES)}")
    if condition is not None and not plot:
        raise UsageError("--condition picks what --plot draws", "add --plot FILE.png")

    rows = sweep.read_results(results)
    if condition is not None and all(row.values.get(f"abx_{condition}") is None for row in rows):
        raise UsageError(f"no row has a value for --condition {condition}", f"the rows hold {', '.join(sweep.abx_present(rows)) or 'no ABX condition'}")
    table = sweep.markdown_table(rows)
    if markdown:
        atomic_write_text(markdown, table)
        log.info("wrote %s", markdown)
    else:
        sys.stdout.write(table)
    if tsv:
        atomic_write_text(tsv, sweep.tsv_table(rows))
        log.info("wrote %s", tsv)
    if plot:
        chosen = condition or sweep.default_condition(rows)
        sweep.plot_sweep(rows, chosen, plot)
        log.info("wrote %s (ABX: %s)", plot, chosen or "none")
