"""Reading any unit table audiotok writes, as rows of integer fields and text metadata.

    units.txt           key 12 12 407 ...                      (tokenize, quantize, s3-extract, interleave)
    strings.txt         key <audio_12><audio_407>...           (interleave --format string)
    units.jsonl         {"key", "tokens": [...], "durations"?}  (tokenize --format jsonl)
    shard JSONL         {"key", "shard", "language", "text", "tokens" | "global_tokens", ...} (tokenize-shards)
    TASTE JSONL         {"key", "text", "text_ids", "tokens": [strings], "codes": [[C] x N]} (taste-encode)
    npy:DIR             DIR/KEY.npy (+ KEY.durations.npy)      (tokenize --format npy)

A row's `fields` are its integer arrays (1-D, or 2-D for codes), its `meta` the rest (text,
speaker, language, shard, lists of strings). The kind of a text input is told by its first line.
"""

import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.io.keys import KeyOrderChecker, check_key
from audiotok.io.tables import not_an_int64, open_text_table

MAIN_FIELDS = ("tokens", "codes")  # the token field when --field is not given: the first that holds integers


@dataclass
class TokenRow:
    key: str
    fields: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)


def read_token_rows(spec: str, template: str = "<audio_{}>") -> Iterator[TokenRow]:
    """Rows of one unit table, in file order; keys checked (no whitespace, unique)."""
    if spec.startswith("npy:") or (spec != "-" and Path(spec).is_dir()):
        yield from _npy_rows(Path(spec.removeprefix("npy:")))
        return
    name, handle = open_text_table(spec.removeprefix("jsonl:"))
    checker = KeyOrderChecker(name, sorted_required=False)
    lines = _numbered_lines(handle)
    first = next(lines, None)
    if first is None:
        return
    jsonl = spec.startswith("jsonl:") or spec.endswith(".jsonl") or first[1].lstrip().startswith("{")
    parse = _json_row if jsonl else _text_row(template)
    for number, line in itertools.chain([first], lines):
        where = f"{name}:{number}"
        row = parse(line, where)
        checker.check(row.key, where)
        yield row


def main_field(row: TokenRow, requested: str | None, where: str) -> str:
    """The field that holds the tokens: --field, else tokens or codes."""
    if requested is not None:
        if requested not in row.fields:
            held = ", ".join(row.fields) or "none"
            raise AudiotokError(f"{where}: row {row.key!r} has no integer field {requested!r} (it has: {held})", "choose one with --field")
        return requested
    for name in MAIN_FIELDS:
        if name in row.fields:
            return name
    held = ", ".join(row.fields) or "none"
    raise AudiotokError(f"{where}: row {row.key!r} has no tokens or codes field (integer fields: {held})", "name the token field with --field")


def _numbered_lines(handle) -> Iterator[tuple[int, str]]:
    try:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line
    except UnicodeDecodeError:
        raise AudiotokError(f"{getattr(handle, 'name', 'stdin')}: not a UTF-8 text table", "give a unit table (key 1 2 3 lines or JSONL)") from None
    finally:
        if handle is not sys.stdin:
            handle.close()


def _text_row(template: str):
    from audiotok.units.interleave import parse_string

    def parse(line: str, where: str) -> TokenRow:
        parts = line.split()
        key = check_key(parts[0], where)
        values = parts[1:]
        try:
            return TokenRow(key, {"tokens": np.array(values, dtype=np.int64)})  # parses as int() does, in C
        except (ValueError, OverflowError):
            pass
        if len(values) == 1 and values[0].startswith(template.split("{}")[0]):
            return TokenRow(key, {"tokens": parse_string(values[0], template, where)})
        bad = not_an_int64(values)
        raise AudiotokError(
            f"{where}: {bad[:40]!r} is not an integer", f"a unit table is `key 1 2 3` lines, `key {template.format(1)}...` strings (--template) or JSONL"
        )

    return parse


def _json_row(line: str, where: str) -> TokenRow:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise AudiotokError(f"{where}: not valid JSON: {err.msg}") from None
    if not isinstance(record, dict) or "key" not in record:
        raise AudiotokError(f'{where}: a record needs a "key"', 'JSONL unit tables hold {"key": ..., "tokens": [...]} a line')
    key = check_key(str(record.pop("key")), where)
    fields, meta = {}, {}
    for name, value in record.items():
        array = _integer_array(value)
        if array is None:
            meta[name] = value
        else:
            fields[name] = array
    return TokenRow(key, fields, meta)


def _integer_array(value) -> np.ndarray | None:
    """A list of ints (or a list of equal-length lists of ints) as an int64 array; None for anything else."""
    if not isinstance(value, list):
        return None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return np.array(value, dtype=np.int64)
    if value and all(isinstance(v, list) for v in value):
        widths = {len(v) for v in value}
        if len(widths) == 1 and all(isinstance(x, int) and not isinstance(x, bool) for v in value for x in v):
            return np.array(value, dtype=np.int64)
    return None


def _npy_rows(directory: Path) -> Iterator[TokenRow]:
    from audiotok.io.npy import read_npy

    if not directory.is_dir():
        raise AudiotokError(f"no such directory: {directory}")
    for path in sorted(directory.glob("*.npy")):
        if path.name.endswith(".durations.npy"):
            continue
        key = path.name[: -len(".npy")]
        fields = {"tokens": read_npy(path).astype(np.int64)}
        durations = path.with_name(f"{key}.durations.npy")
        if durations.exists():
            fields["durations"] = read_npy(durations).astype(np.int64)
        yield TokenRow(key, fields)
