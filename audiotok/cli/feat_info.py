"""Summarise a feature or unit table: keys, frames, dim, dtype, value range, NaN and Inf counts, recipe.

Reads IN (ark:FILE, ark:- or -, ark,t:FILE, scp:FILE, text:FILE, npy:DIR)
once, one entry at a time (memory grows with the keys, not their values), and prints one `name value` line per statistic
(--format json: one object): keys, frames (total), frames_min,
frames_median, frames_max (per key), dim (or `dim varies: 39..768`), dtype,
kind (matrix, vector), min, max and mean over the finite values, nan and
inf (counts; not errors), and the recipe recorded beside the file
(FILE.recipe.json) or none. A vector counts its length as frames of dim 1
(units: one a frame). --lengths prints Kaldi feat-to-len's `key N` lines,
--dim feat-to-dim's single number (an error when dims vary). An empty
table is 0 keys (exit 0).

\b
Example:
  audiotok feat-info ark:dump/feats.ark
  audiotok feat-info --format json scp:dump/feats.scp
  audiotok feat-info --lengths scp:dump/feats.scp > utt2num_frames
  audiotok extract-feats --backend mfcc data/train ark:- | audiotok feat-info --dim -

See also: copy-feats, extract-feats, report (unit statistics).
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "feat-info"


def command(
    source: Annotated[str, typer.Argument(metavar="IN", help="ark:FILE, ark:- (or -), ark,t:FILE, scp:FILE, text:FILE or npy:DIR.", show_default=False)],
    lengths: Annotated[bool, typer.Option("--lengths", help="Print `key N` (frames of each key), as Kaldi's feat-to-len.")] = False,
    dim: Annotated[bool, typer.Option("--dim", help="Print the dim alone, as Kaldi's feat-to-dim (an error when dims vary).")] = False,
    output_format: Annotated[
        common.choice("text", "json"), typer.Option("--format", help="Summary as text (`name value` lines) or json (one object).")
    ] = "text",
    output: common.TextOutputOption = "-",
    force: common.Force = False,
) -> None:
    from audiotok.errors import UsageError
    from audiotok.io.archives import read_archive
    from audiotok.io.outputs import TextOutput, make_signature
    from audiotok.io.recipes import read_recipe_for

    if lengths and dim:
        raise UsageError("give --lengths or --dim, not both")
    mode = "lengths" if lengths else "dim" if dim else output_format
    entries = read_archive(source)
    target = TextOutput(output, make_signature(NAME, input=source, mode=mode), force)
    with target as handle:
        if lengths:
            for key, value in entries:
                handle.write(f"{key} {len(value) if value.ndim else 1}\n")
        else:
            summary = Summary()
            for _, value in entries:
                summary.add(value)
            handle.write(_dim_line(source, summary) if dim else _summary(summary.fields(read_recipe_for(source)), output_format))
    target.mark_done()


def _dim_line(source: str, summary: "Summary") -> str:
    from audiotok.errors import AudiotokError

    if summary.keys == 0:
        raise AudiotokError(f"{source} holds no entries, so no dim")
    if summary.dim_min != summary.dim_max:
        raise AudiotokError(f"dim varies: {summary.dim_min}..{summary.dim_max}", "feat-info without --dim shows the whole summary")
    return f"{summary.dim_min}\n"


def _summary(fields: dict, output_format: str) -> str:
    import json

    if output_format == "json":
        return json.dumps(fields, ensure_ascii=False) + "\n"
    return "".join(_text_line(name, value, fields) + "\n" for name, value in fields.items() if name not in ("dim_min", "dim_max"))


def _text_line(name, value, fields) -> str:
    import json

    if name == "dim" and value is None and fields["dim_min"] is not None:
        return f"dim varies: {fields['dim_min']}..{fields['dim_max']}"
    if value is None:
        return f"{name} -" if name != "recipe" else "recipe none"
    if isinstance(value, dict):
        return f"{name} {json.dumps(value, sort_keys=True, ensure_ascii=False)}"
    if isinstance(value, list):
        return f"{name} -" if not value else f"{name} {','.join(value)}"
    if isinstance(value, float):
        return f"{name} {value:.9g}"
    return f"{name} {value}"


class Summary:
    """Statistics over a stream of values; memory grows with the number of keys only (their lengths)."""

    def __init__(self):
        from array import array

        self.keys = 0
        self.frames = array("q")
        self.dim_min = self.dim_max = None
        self.dtypes: dict[str, None] = {}
        self.kinds: dict[str, None] = {}
        self.nan = self.inf = self.finite = 0
        self.total = 0.0
        self.low = self.high = None

    def add(self, value) -> None:
        import numpy as np

        self.keys += 1
        self.frames.append(len(value) if value.ndim else 1)
        width = value.shape[1] if value.ndim == 2 else 1
        self.dim_min = width if self.dim_min is None else min(self.dim_min, width)
        self.dim_max = width if self.dim_max is None else max(self.dim_max, width)
        self.dtypes.setdefault(str(value.dtype))
        self.kinds.setdefault("matrix" if value.ndim == 2 else "vector")
        if value.dtype.kind == "f":
            nan = np.isnan(value)
            self.nan += int(nan.sum())
            inf = np.isinf(value)
            self.inf += int(inf.sum())
            value = value[~(nan | inf)]
        if value.size == 0:
            return
        low, high = value.min().item(), value.max().item()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        self.total += float(value.sum(dtype=np.float64))
        self.finite += value.size

    def fields(self, recipe: dict | None) -> dict:
        import numpy as np

        frames = np.frombuffer(self.frames, dtype=np.int64) if self.keys else None
        median = None if frames is None else float(np.median(frames))
        return {
            "keys": self.keys,
            "frames": int(frames.sum()) if frames is not None else 0,
            "frames_min": int(frames.min()) if frames is not None else None,
            "frames_median": (int(median) if median.is_integer() else median) if median is not None else None,
            "frames_max": int(frames.max()) if frames is not None else None,
            "dim": self.dim_min if self.dim_min == self.dim_max else None,
            "dim_min": self.dim_min,
            "dim_max": self.dim_max,
            "dtype": list(self.dtypes),
            "kind": list(self.kinds),
            "min": self.low,
            "max": self.high,
            "mean": self.total / self.finite if self.finite else None,
            "nan": self.nan,
            "inf": self.inf,
            "recipe": recipe,
        }
