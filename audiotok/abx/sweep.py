"""A layer x codebook-size sweep of ABX, PNMI and bit rates, as one table and one plot.

    read_results     a list of `LAYER K FILE` lines -> rows, each file the JSON of
                     `audiotok abx --format json` (K = dense) or `audiotok report --format json`
    markdown_table   the rows in percent for reading; tsv_table the raw numbers for scripts
    default_condition, plot_sweep   the PNG: ABX of one condition, PNMI and entropy rate, by layer

Rows are sorted by layer (labels that are not layer numbers, e.g. mfcc, first in list order,
then numeric layers), then dense before k ascending. A value a file lacks, or holds as null,
is missing: `–` in markdown, an empty TSV cell, a gap in the plot.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from audiotok.abx.score import CONDITION_NAMES, CONDITIONS
from audiotok.errors import AudiotokError

DENSE = "dense"
UNIT_KEYS = ("pnmi", "nominal_bits_per_s", "entropy_bits_per_s")  # report's; dense features have none
ABX_KEYS = tuple(f"abx_{name}" for name in CONDITION_NAMES)
LABELS = {condition.name: condition.label for condition in CONDITIONS}
MISSING = "–"


def _header(condition) -> str:
    """`ABX phone within-ctx across-spk (%)`: short enough that six conditions fit a terminal."""
    if condition.items == "triphone":
        return f"ABX triphone {condition.speaker}-spk (%)"
    return f"ABX phone {condition.context}-ctx {condition.speaker}-spk (%)"


HEADERS = {condition.name: _header(condition) for condition in CONDITIONS}


@dataclass
class Row:
    layer: str  # the label as the list gives it
    k: int | None  # None: dense features
    values: dict  # UNIT_KEYS and ABX_KEYS the file holds -> float or None
    line: int  # where the list names it, for messages

    @property
    def layer_number(self) -> int | None:
        return int(self.layer) if self.layer.isdigit() else None

    @property
    def k_label(self) -> str:
        return DENSE if self.k is None else str(self.k)


def read_results(list_path: str) -> list[Row]:
    """Rows of the list file (- for stdin), in the order the table shows them."""
    import sys

    if list_path == "-":
        name, base, text = "<stdin>", Path.cwd(), sys.stdin.read()
    else:
        name, base = list_path, Path(list_path).parent
        try:
            text = Path(list_path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise AudiotokError(f"cannot read the results list {list_path}: {getattr(err, 'strerror', None) or err}") from None
    rows, seen = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = _parse_line(line, f"{name}:{number}", base)
        row.line = number
        key = (row.layer, row.k)
        if key in seen:
            raise AudiotokError(f"{name}:{number}: layer {row.layer} k {row.k_label} is already on line {seen[key]}", "give each (LAYER, K) one line")
        seen[key] = number
        rows.append(row)
    if not rows:
        raise AudiotokError(f"{name} holds no `LAYER K FILE` line")
    return sort_rows(rows)


def _parse_line(line: str, where: str, base: Path) -> Row:
    fields = line.split(maxsplit=2)
    if len(fields) < 3:
        raise AudiotokError(f"{where}: expected `LAYER K FILE`, got {line.strip()!r}")
    layer, k_text, file_name = fields[0], fields[1], fields[2].strip()
    if k_text == DENSE:
        k = None
    elif k_text.isdigit() and int(k_text) > 0:
        k = int(k_text)
    else:
        raise AudiotokError(f"{where}: K must be a positive integer or {DENSE}, got {k_text!r}")
    path = base / file_name  # an absolute FILE stays itself
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise AudiotokError(f"{where}: cannot read {path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AudiotokError(f"{where}: {path} is not JSON ({err})", "give the output of `abx --format json` or `report --format json`") from None
    return Row(layer, k, _values(data, k, path, where), 0)


def _values(data, k: int | None, path: Path, where: str) -> dict:
    if not isinstance(data, dict):
        raise AudiotokError(
            f"{where}: {path} holds a JSON {type(data).__name__}, not an object", "give the output of `abx --format json` or `report --format json`"
        )
    values = {key: data[key] for key in UNIT_KEYS + ABX_KEYS if key in data}
    if not values:
        raise AudiotokError(
            f"{where}: {path} has none of the sweep's keys ({', '.join(UNIT_KEYS)}, abx_*)",
            "run `abx --format json`, or `report --alignments --abx --format json`",
        )
    for key, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
            raise AudiotokError(f"{where}: {path}: {key} is {value!r}, not a number or null")
    # The list's K and the file's own k must agree: a shifted line would mislabel a whole row.
    if "k" in data and data["k"] != k:
        said = DENSE if k is None else f"k {k}"
        raise AudiotokError(f"{where}: {path} holds units of k={data['k']} but the line says {said}", "fix K on that line")
    return {key: None if value is None else float(value) for key, value in values.items()}


def sort_rows(rows: list[Row]) -> list[Row]:
    """Labels that are not layer numbers first (in list order), then layers by number; dense, then k ascending."""
    first_line = {}
    for row in rows:
        first_line.setdefault(row.layer, row.line)

    def order(row: Row):
        number = row.layer_number
        layer = (0, first_line[row.layer]) if number is None else (1, number)
        return layer, (0, 0) if row.k is None else (1, row.k)

    return sorted(rows, key=order)


def abx_present(rows: list[Row]) -> list[str]:
    """The ABX conditions any row names, in CONDITION_NAMES order."""
    return [name for name in CONDITION_NAMES if any(f"abx_{name}" in row.values for row in rows)]


def _columns(rows: list[Row]) -> list[tuple[str, str]]:
    """(key, markdown header) of each value column."""
    fixed = [("pnmi", "PNMI"), ("nominal_bits_per_s", "nominal bits/s"), ("entropy_bits_per_s", "entropy bits/s")]
    return fixed + [(f"abx_{name}", HEADERS[name]) for name in abx_present(rows)]


def _shown(key: str, value: float | None) -> str:
    if value is None:
        return MISSING
    if key.startswith("abx_"):
        return f"{100 * value:.2f}"
    return f"{value:.3f}" if key == "pnmi" else f"{value:.1f}"


def markdown_table(rows: list[Row]) -> str:
    """A padded markdown table: PNMI to 3 decimals, bit rates to 1, ABX errors in percent to 2."""
    columns = _columns(rows)
    header = ["layer", "k"] + [title for _, title in columns]
    body = [[row.layer, row.k_label] + [_shown(key, row.values.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    rules = ["-" * widths[0], "-" * (widths[1] - 1) + ":"] + ["-" * (width - 1) + ":" for width in widths[2:]]

    def line(cells, align_right):
        padded = [cell.rjust(width) if right else cell.ljust(width) for cell, width, right in zip(cells, widths, align_right, strict=True)]
        return "| " + " | ".join(padded) + " |"

    numbers = [False] + [True] * (len(header) - 1)
    lines = [line(header, [False] * len(header)), "| " + " | ".join(rules) + " |"] + [line(cells, numbers) for cells in body]
    return "\n".join(lines) + "\n"


def tsv_table(rows: list[Row]) -> str:
    """Tab-separated, one header line of JSON key names; raw fractions, empty cells where missing."""
    keys = [key for key, _ in _columns(rows)]
    lines = ["\t".join(["layer", "k", *keys])]
    for row in rows:
        cells = [row.layer, row.k_label] + ["" if row.values.get(key) is None else repr(row.values[key]) for key in keys]
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def default_condition(rows: list[Row]) -> str | None:
    """The condition with a value in the most rows (the first in CONDITION_NAMES order on a tie); None if none has any."""
    counts = {name: sum(row.values.get(f"abx_{name}") is not None for row in rows) for name in CONDITION_NAMES}
    best = max(counts.values())
    return next(name for name in CONDITION_NAMES if counts[name] == best) if best else None


def plot_sweep(rows: list[Row], condition: str | None, path) -> None:
    """Two panels over the numeric layers: left the ABX error (%) of `condition`, one line a k and dense
    black dashed; right PNMI a k (solid) and its entropy rate (dotted, twin axis). Rows of other
    labels (mfcc) are horizontal reference lines; missing values are gaps."""
    from matplotlib.figure import Figure

    from audiotok.units.report import save_figure

    layers = sorted({row.layer_number for row in rows if row.layer_number is not None})
    ks = sorted({row.k for row in rows}, key=lambda k: (k is not None, k or 0))
    colours = {k: "black" if k is None else f"C{i % 10}" for i, k in enumerate(k for k in ks if k is not None)} | {None: "black"}
    references = [row for row in rows if row.layer_number is None]

    figure = Figure(figsize=(13, 5), layout="constrained")
    left, right = figure.subplots(1, 2, sharex=True)
    twin = right.twinx()

    def series(k, key, scale=1.0):
        by_layer = {row.layer_number: row.values.get(key) for row in rows if row.k == k and row.layer_number is not None}
        return [math.nan if by_layer.get(layer) is None else scale * by_layer[layer] for layer in layers]

    def name(k):
        return DENSE if k is None else f"k={k}"

    if condition:
        key = f"abx_{condition}"
        for k in ks:
            style = {"color": "black", "linestyle": "--"} if k is None else {"color": colours[k], "linestyle": "-"}
            if any(not math.isnan(value) for value in series(k, key)):
                left.plot(layers, series(k, key, 100), marker="o", label=name(k), **style)
        for row in references:
            if row.values.get(key) is not None:
                left.axhline(100 * row.values[key], color=colours[row.k], linestyle="-.", linewidth=1, alpha=0.7, label=f"{row.layer} {name(row.k)}")
        left.set_title(f"ABX error, {LABELS[condition]}")
    else:
        left.set_title("ABX error: no condition has a value")
    left.set_ylabel("ABX error (%)")

    for k in ks:
        if k is None:
            continue  # dense features have no codebook: no PNMI, no bit rate
        if any(not math.isnan(value) for value in series(k, "pnmi")):
            right.plot(layers, series(k, "pnmi"), marker="o", color=colours[k], label=f"PNMI {name(k)}")
        if any(not math.isnan(value) for value in series(k, "entropy_bits_per_s")):
            twin.plot(layers, series(k, "entropy_bits_per_s"), marker="s", linestyle=":", color=colours[k], label=f"entropy {name(k)}")
    for row in references:
        if row.values.get("pnmi") is not None:
            right.axhline(row.values["pnmi"], color=colours[row.k], linestyle="-.", linewidth=1, alpha=0.7, label=f"PNMI {row.layer} {name(row.k)}")
        if row.values.get("entropy_bits_per_s") is not None:
            twin.axhline(
                row.values["entropy_bits_per_s"],
                color=colours[row.k],
                linestyle=(0, (1, 4)),
                linewidth=1,
                alpha=0.7,
                label=f"entropy {row.layer} {name(row.k)}",
            )
    right.set_title("PNMI (solid) and entropy rate (dotted)")
    right.set_ylabel("PNMI")
    twin.set_ylabel("entropy (bits/s)")

    for axes in (left, right):
        axes.set_xlabel("encoder layer")
        axes.set_xticks(layers)
        axes.grid(True, alpha=0.3)
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.12), "ncols": 3, "fontsize": "small"}  # under the axes: no line hidden
    if left.get_legend_handles_labels()[0]:
        left.legend(**below)
    handles, labels = (a + b for a, b in zip(right.get_legend_handles_labels(), twin.get_legend_handles_labels(), strict=True))
    if handles:
        right.legend(handles, labels, **below)
    save_figure(figure, path)
