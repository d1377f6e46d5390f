"""Keyed tables of numbers: text integer vectors, JSONL, and Kaldi matrices.

    units.txt     key 12 12 407 ...        (Kaldi text integer vectors; greppable, joinable)
    units.jsonl   {"key": ..., "tokens": [...]}
    ark:/scp:     float matrices or vectors through kaldiio (`ark:-`, `ark,t:`, `scp:`)

Readers check keys (no whitespace, unique) and yield `(key, value)` in file
order; writers go through `TextOutput` or an archive, so outputs stay atomic.
"""

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.io.ark import WavBytes, open_ark_input, read_ark_at
from audiotok.io.keys import KeyOrderChecker, check_key
from audiotok.io.specifiers import looks_like_specifier, parse_specifier


def open_text_table(spec: str):
    """(name for messages, handle) of a text table: a file, `ark,t:FILE`, or `-` (stdin, not to be closed)."""
    path = spec[len("ark,t:") :] if spec.startswith("ark,t:") else spec
    if path == "-":
        return "stdin", sys.stdin
    try:
        return path, open(path, encoding="utf-8")
    except FileNotFoundError:
        raise AudiotokError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise AudiotokError(f"{path} is a directory, not a table file") from None


def read_int_vectors(spec: str) -> Iterator[tuple[str, np.ndarray]]:
    """`key 1 2 3` lines (a file, `ark,t:FILE` or `-`) as int64 arrays; a key alone is an empty vector."""
    name, handle = open_text_table(spec)
    checker = KeyOrderChecker(name, sorted_required=False)
    with handle if handle is not sys.stdin else contextlib.nullcontext():
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{name}:{number}"
            checker.check(parts[0], where)
            try:
                values = np.array(parts[1:], dtype=np.int64)  # parses as int() does, in C
            except (ValueError, OverflowError):
                raise AudiotokError(f"{where}: {not_an_int64(parts[1:])!r} is not an integer", "a unit table is `key int int ...` per line") from None
            yield parts[0], values


def not_an_int64(values: list[str]) -> str:
    """The first value that is not a 64-bit integer (for the message of a table that failed to parse)."""
    for value in values:
        try:
            if -(2**63) <= int(value) < 2**63:
                continue
        except ValueError:
            pass
        return value
    return values[0] if values else ""


_DECIMALS: list[str] = []  # str(i) for 0 <= i < len: units are small, and a lookup beats str() twice over
DECIMALS_LIMIT = 1 << 17


def format_int_vector(key: str, values) -> str:
    check_key(key, "output")
    if isinstance(values, np.ndarray) and values.size and values.dtype.kind in "iu":
        low, high = int(values.min()), int(values.max())
        if low >= 0 and high < DECIMALS_LIMIT:
            if high >= len(_DECIMALS):
                _DECIMALS.extend(map(str, range(len(_DECIMALS), max(high + 1, 1024))))
            return key + " " + " ".join(map(_DECIMALS.__getitem__, values.tolist()))
    values = values.tolist() if isinstance(values, np.ndarray) else [int(v) for v in values]
    return " ".join([key, *map(str, values)])


def iter_json_records(spec: str) -> Iterator[tuple[str, dict]]:
    """(where, object) for each non-empty line of a JSONL file (`jsonl:` prefix optional, `-` for stdin)."""
    name, handle = open_text_table(spec[len("jsonl:") :] if spec.startswith("jsonl:") else spec)
    with handle if handle is not sys.stdin else contextlib.nullcontext():
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise AudiotokError(f"{where}: not valid JSON: {err.msg}") from None
            if not isinstance(record, dict):
                raise AudiotokError(f"{where}: not a JSON object")
            yield where, record


def read_jsonl_table(spec: str, field: str = "tokens") -> Iterator[tuple[str, object]]:
    """`{"key": ..., FIELD: ...}` lines; yields (key, record[FIELD])."""
    checker = KeyOrderChecker(spec, sorted_required=False)
    for where, record in iter_json_records(spec):
        if "key" not in record or field not in record:
            raise AudiotokError(f'{where}: a record needs "key" and {field!r}')
        key = check_key(str(record["key"]), where)
        checker.check(key, where)
        yield key, record[field]


def format_jsonl(key: str, **fields) -> str:
    check_key(key, "output")
    return json.dumps({"key": key, **{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in fields.items()}}, ensure_ascii=False)


def read_matrices(spec: str, select: Callable[[list], list] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Float matrices/vectors from `ark:FILE`, `ark:-`, `ark,t:FILE`, `-` or `scp:FILE`.

    select(entries) -> entries: a part of an scp table's lines, read alone (--shard J/N);
    archives have no index to cut, so they refuse it.
    """
    if spec != "-" and not looks_like_specifier(spec):
        raise AudiotokError(f"not a Kaldi specifier: {spec!r}", "use ark:FILE, ark:-, ark,t:FILE or scp:FILE")
    parsed = parse_specifier(spec)
    if parsed.scp is not None:
        yield from _scp_matrices(Path(parsed.scp), select)
        return
    if select is not None:
        from audiotok.errors import UsageError

        raise UsageError(f"{spec}: --shard needs an scp: table (an archive has no index to cut)", "give the scp that extract-feats wrote beside the archive")
    from audiotok.io.archives import ark_entries  # binary and text entries, read as Kaldi reads them

    stream = open_ark_input(parsed.ark)
    try:
        yield from ark_entries(stream, "stdin" if parsed.ark == "-" else parsed.ark)
    finally:
        if parsed.ark != "-":
            stream.close()


def _scp_matrices(scp: Path, select: Callable[[list], list] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    entries = read_kaldi_lines(scp, None, sorted_required=False)
    for number, (key, value) in select(entries) if select else entries:
        where = f"{scp}:{number}"
        path, _, offset = value.rpartition(":")
        if not path or not offset.isdigit():
            raise AudiotokError(f"{where}: expected `key file.ark:offset`, found {value!r}")
        entry = read_ark_at(path, int(offset), where)
        if isinstance(entry, WavBytes):
            raise AudiotokError(f"{where}: entry {key!r} is audio, not a matrix", "make features first with audiotok extract-feats")
        yield key, entry


def read_kaldi_lines(path: Path, fields: int | None, sorted_required: bool = True, allow_empty: bool = False) -> list[tuple[int, list[str]]]:
    """Lines of a Kaldi table file split on whitespace: [(line_number, [key, rest...])].

    allow_empty: a key with no value (an empty transcript) gives [key, ""] instead of an error."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise AudiotokError(f"no such file: {path}") from None
    checker = KeyOrderChecker(str(path), sorted_required)
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if fields is None:
            parts = line.strip().split(maxsplit=1)
            if len(parts) < 2 and allow_empty:
                parts.append("")
            elif len(parts) < 2:
                raise AudiotokError(f"{where}: key {parts[0]!r} has no value")
        else:
            parts = line.split()
            if len(parts) != fields:
                raise AudiotokError(f"{where}: expected {fields} fields, found {len(parts)}: {line.strip()!r}")
        checker.check(parts[0], where)
        rows.append((number, parts))
    return rows


def read_unit_table(spec: str) -> dict:
    """A unit table, `key 1 2 3` lines (FILE, ark,t:FILE, -) or JSONL with "tokens", as {key: int64 codes}."""
    import numpy as np

    from audiotok.errors import AudiotokError

    if not (spec.startswith("jsonl:") or spec.endswith(".jsonl")):
        table = dict(read_int_vectors(spec))
    else:
        table = {}
        for key, tokens in read_jsonl_table(spec):
            if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
                raise AudiotokError(f'{spec}: {key}: "tokens" is not a list of integers', 'report reads one codebook: {"key": ..., "tokens": [1, 2, ...]}')
            table[key] = np.array(tokens, dtype=np.int64)
    if not table:
        raise AudiotokError(f"no utterances in {spec}", "give a unit table (text or JSONL) as quantize or tokenize write it")
    return table
