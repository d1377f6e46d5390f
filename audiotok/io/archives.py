"""Feature and unit archives in every form copy-feats and feat-info read and write.

    ark:FILE, ark:-, -, ark,t:FILE   Kaldi archives; binary and text entries alike, as Kaldi reads them
    scp:FILE                         `key FILE.ark:offset` lines
    text:FILE, text:-                Kaldi text integer tables (`key 1 2 3` lines, what tokenize and quantize write)
    npy:DIR                          one KEY.npy a key

Values keep their kind: float32 and float64 matrices and vectors, and integer vectors. Text
entries are read the Kaldi way, by their shape rather than their first number: `[ ... ]` holds
floats (float32, Kaldi's BaseFloat: text carries no dtype), a bare `1 2 3` line an int vector.
Binary entries go through audiotok.io.ark (kaldiio underneath; pickles refused).
"""

import io
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from audiotok.errors import AudiotokError, ItemError, UsageError
from audiotok.io.ark import WavBytes, open_ark_input, read_entry
from audiotok.io.keys import KeyOrderChecker, c_order
from audiotok.io.mapped import mapped
from audiotok.io.outputs import KeyFilesSink, MatrixSink, TextOutput
from audiotok.io.specifiers import looks_like_specifier, parse_specifier
from audiotok.io.tables import format_int_vector, read_int_vectors, read_kaldi_lines

INPUT_FORMS = "ark:FILE, ark:-, ark,t:FILE, scp:FILE, text:FILE (key 1 2 3 lines) or npy:DIR"
OUTPUT_FORMS = "ark:FILE, ark:-, ark,t:FILE, ark,scp:A.ark,A.scp, text:FILE, text:- or npy:DIR"
AUDIO_HINT = "this is an audio archive: copy audio with audiotok resample, look at it with audiotok info"
_TEXT_START = b"0123456789-+ \t\r\n["
INT32 = np.iinfo(np.int32)


# ---------------------------------------------------------------- reading


def read_archive(spec: str) -> Iterator[tuple[str, np.ndarray]]:
    """(key, value) of every entry of a feature or unit table, in its order; one-line errors."""
    if spec.startswith("text:"):
        for key, values in read_int_vectors(spec[len("text:") :]):
            yield key, _int32_if_it_fits(values)
        return
    if spec.startswith("npy:"):
        yield from _npy_entries(Path(spec[len("npy:") :]))
        return
    if spec != "-" and not looks_like_specifier(spec):
        guess = f"scp:{spec}" if spec.endswith(".scp") else f"ark:{spec}"
        raise UsageError(f"not a feature table: {spec!r}", f"name its kind: {guess}" if os.path.isfile(spec) else f"use {INPUT_FORMS}")
    parsed = parse_specifier(spec)
    if parsed.scp is not None:
        yield from _scp_entries(Path(parsed.scp))
        return
    name = "stdin" if parsed.ark == "-" else parsed.ark
    stream = open_ark_input(parsed.ark)
    try:
        yield from ark_entries(stream, name)
    finally:
        if parsed.ark != "-":
            stream.close()


def ark_entries(fd: BinaryIO, name: str) -> Iterator[tuple[str, np.ndarray]]:
    """The entries of an archive stream, binary or text, each checked (unique keys, no audio).

    A regular file (stdin redirected from one included) is read through a memory map: its
    float matrices come out as views of the page cache, without a copy.
    """
    mapping = mapped(fd)
    fd = mapping or (fd if hasattr(fd, "peek") else io.BufferedReader(fd))
    checker = KeyOrderChecker(name, sorted_required=False)
    index = 0
    try:
        while True:
            key, line_ended = _read_key(fd)
            if key is None:
                return
            index += 1
            where = f"{name} entry {index} ({key!r})"
            checker.check(key, where)
            # A text int vector with no values is the key alone on its line.
            yield key, np.zeros(0, np.int32) if line_ended else read_value(fd, where)
    finally:
        if mapping is not None:
            mapping.close()


def _read_key(fd: BinaryIO) -> tuple[str | None, bool]:
    """The next key and whether its line ended right after it; (None, False) at the end."""
    token = bytearray()
    while True:
        char = fd.read(1)
        if not char:
            if token:
                raise AudiotokError(f"archive ends after the key {token.decode(errors='replace')!r} with no value", "the archive was cut short: make it again")
            return None, False
        if char in b" \t\n\r":
            if token:
                return token.decode("utf-8", "surrogateescape"), char == b"\n"
            continue  # text archives separate entries with newlines
        token += char


def read_value(fd: BinaryIO, where: str) -> np.ndarray:
    """The value at the current position of an archive (a file object that can peek)."""
    head = fd.peek(1)[:1]
    if head and head in _TEXT_START:
        return _read_text_value(fd, where)
    if fd.peek(3)[:3] == b"\0B\4":
        return _read_int_vector(fd, where)
    matrix = _read_float_matrix(fd, where)
    if matrix is not None:
        return matrix
    try:
        value = read_entry(fd, where)
    except AudiotokError:
        if not fd.read(1):  # the entry ran into the end of the file
            raise AudiotokError(f"{where}: truncated archive (the entry ends early)", "the archive was cut short: make it again") from None
        raise
    if isinstance(value, WavBytes):
        raise AudiotokError(f"{where} is audio, not features", AUDIO_HINT)
    if not isinstance(value, np.ndarray):
        raise AudiotokError(f"{where}: an entry that is not an array ({type(value).__name__})")
    return value


def _read_float_matrix(fd: BinaryIO, where: str) -> np.ndarray | None:
    """A binary float32 matrix (`\\0BFM `, what extract-feats writes) read with one copy, or
    none at all from a mapped file; None for every other kind (kaldiio reads those)."""
    head = fd.peek(15)[:15]
    if len(head) < 15 or head[:5] != b"\0BFM " or head[5] != 4 or head[10] != 4:
        return None
    rows, cols = struct.unpack("<i", head[6:10])[0], struct.unpack("<i", head[11:15])[0]
    if rows < 0 or cols < 0:
        return None  # kaldiio names the damage
    fd.read(15)
    size = 4 * rows * cols
    data = fd.view(size) if hasattr(fd, "view") else fd.read(size)
    if len(data) != size:
        raise AudiotokError(f"{where}: truncated archive (the entry ends early)", "the archive was cut short: make it again")
    return np.frombuffer(data, dtype="<f4").reshape(rows, cols)


def _read_int_vector(fd: BinaryIO, where: str) -> np.ndarray:
    """A binary Kaldi int32 vector read at once (kaldiio reads it an int at a time)."""
    head = fd.read(7)  # \0B, then the size as \4 + int32
    size = struct.unpack("<i", head[3:7])[0] if len(head) == 7 else -1
    body = fd.read(5 * size) if size >= 0 else b""
    if size < 0 or len(body) != 5 * size:
        raise AudiotokError(f"{where}: truncated archive (the entry ends early)", "the archive was cut short: make it again")
    cells = np.frombuffer(body, dtype=[("size", "u1"), ("value", "<i4")])
    if size and not (cells["size"] == 4).all():
        raise AudiotokError(f"{where}: unreadable int vector (an element is not 4 bytes)")
    return cells["value"].astype(np.int32)


def _read_text_value(fd: BinaryIO, where: str) -> np.ndarray:
    try:
        first = fd.readline().decode("utf-8")
    except UnicodeDecodeError:
        raise AudiotokError(f"{where}: unreadable text entry (not UTF-8)") from None
    body = first.lstrip(" \t")
    if not body.startswith("["):
        return _int_vector(body.split(), where)
    lines = [body[1:]]
    while "]" not in lines[-1]:
        more = fd.readline()
        if not more:
            raise AudiotokError(f"{where}: text matrix has no closing ']'", "the archive was cut short: make it again")
        lines.append(more.decode("utf-8", "replace"))
    inside, _, after = "".join(lines).partition("]")
    if after.strip():
        raise AudiotokError(f"{where}: unexpected {after.strip()[:20]!r} after a text matrix")
    rows = [row.split() for row in inside.split("\n") if row.strip()]
    try:
        if "\n" not in inside:  # ` [ 1 2 3 ]`: a vector; a matrix starts its rows on new lines
            return np.array(rows[0] if rows else [], dtype=np.float32)
        if len({len(row) for row in rows}) > 1:
            raise AudiotokError(f"{where}: text matrix rows differ in length ({min(map(len, rows))}..{max(map(len, rows))} values)")
        return np.array(rows, dtype=np.float32).reshape(len(rows), len(rows[0]) if rows else 0)
    except ValueError:
        bad = next(v for row in rows for v in row if not _is_float(v))
        raise AudiotokError(f"{where}: {bad!r} is not a number") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _int_vector(parts: list[str], where: str) -> np.ndarray:
    try:
        values = np.array([int(p) for p in parts], dtype=np.int64)
    except ValueError:
        bad = next(p for p in parts if not p.lstrip("+-").isdigit())
        raise AudiotokError(f"{where}: {bad!r} is not an integer", "a text int vector is `key 1 2 3`; a float vector is `key [ 0.5 1 ]`") from None
    return _int32_if_it_fits(values)


def _int32_if_it_fits(values: np.ndarray) -> np.ndarray:
    """Kaldi's int vectors are int32; a value beyond it stays int64 (and a binary archive refuses it)."""
    return values.astype(np.int32) if values.size == 0 or (values.min() >= INT32.min and values.max() <= INT32.max) else values


def _scp_entries(scp: Path) -> Iterator[tuple[str, np.ndarray]]:
    handles: dict[str, BinaryIO] = {}  # the archive last read stays open: scp lines mostly point into one
    try:
        for number, (key, value) in read_kaldi_lines(scp, None, sorted_required=False):
            where = f"{scp}:{number} ({key!r})"
            path, _, offset = value.rpartition(":")
            if not path or not offset.isdigit():
                raise AudiotokError(f"{where}: expected `key FILE.ark:offset`, found {value!r}")
            if path not in handles:
                for handle in handles.values():
                    handle.close()
                handles.clear()
                try:
                    handles[path] = open(path, "rb")
                except OSError as err:
                    raise AudiotokError(
                        f"{where}: cannot open {path}: {err.strerror}", "the scp names an archive that moved: write the scp again beside it"
                    ) from None
            handles[path].seek(int(offset))
            yield key, read_value(handles[path], where)
    finally:
        for handle in handles.values():
            handle.close()


def _npy_entries(directory: Path) -> Iterator[tuple[str, np.ndarray]]:
    from audiotok.io.npy import read_npy

    if not directory.is_dir():
        raise AudiotokError(f"no such directory: {directory}", "npy:DIR names a directory of KEY.npy files")
    files = sorted((p for p in directory.iterdir() if p.suffix == ".npy" and not p.name.startswith(".") and p.is_file()), key=lambda p: c_order(p.stem))
    for path in files:
        yield path.stem, read_npy(path)


# ---------------------------------------------------------------- writing


def encode_value(value: np.ndarray, text: bool) -> bytes:
    """The Kaldi bytes of one value after `key `: binary FM/DM/FV/DV or an int32 vector, or their text
    forms. Text floats: float32 with 12 significant digits (reads back to the same float32, the numbers
    MatrixSink writes), float64 with 17; text int vectors are `1 2 3` lines, as Kaldi writes them."""

    from kaldiio.matio import write_array, write_array_ascii

    if value.ndim == 1 and value.dtype.kind in "iub":
        if value.size and (value.min() < INT32.min or value.max() > INT32.max):
            raise ItemError(f"values {value.min()}..{value.max()} do not fit a Kaldi int32 vector")
        if text:
            return (" ".join(map(str, value.tolist())) + "\n").encode()
        cells = np.empty(len(value), dtype=[("size", "u1"), ("value", "<i4")])  # Kaldi writes each int as \4 + 4 bytes
        cells["size"], cells["value"] = 4, value
        return b"\0B\4" + struct.pack("<i", len(value)) + cells.tobytes()
    if value.dtype not in (np.float32, np.float64) or value.ndim not in (1, 2):
        shape = "x".join(map(str, value.shape)) or "scalar"
        raise ItemError(f"a {value.dtype} array of shape {shape} has no Kaldi archive form (float32/float64 matrices and vectors, integer vectors)")
    body = io.BytesIO()
    value = np.ascontiguousarray(value)
    if text:
        write_array_ascii(body, value, digit=".12g" if value.dtype == np.float32 else ".17g")
        return body.getvalue()
    write_array(body, value)
    return body.getvalue()


class ArchiveSink(MatrixSink):
    """MatrixSink that keeps each value's dtype and kind (float64 stays float64, int vectors stay ints):
    the same atomic, locked, resumable archive and scp, the same bytes for binary float32 matrices."""

    def encode(self, value: np.ndarray) -> bytes:
        return encode_value(value, self.text)


class NpySink(KeyFilesSink):
    """DIR/KEY.npy a key (np.save bytes: dtype and shape kept); a key that cannot name a file is a counted skip."""

    def already_done(self, key: str) -> bool:
        return False

    def write(self, key: str, value: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        self.write_bytes(key, ".npy", buffer.getvalue())


class IntTableSink:
    """A Kaldi text integer table (`key 1 2 3` lines) through TextOutput."""

    def __init__(self, path: str, signature: dict, force: bool):
        self.output = TextOutput(path, signature, force)

    def open(self):
        return self.output.open()

    def already_done(self, key: str) -> bool:
        return False

    def write(self, key: str, value: np.ndarray) -> None:
        if value.ndim != 1 or value.dtype.kind not in "iub":
            raise ItemError(
                f"a {value.dtype} {'matrix' if value.ndim == 2 else 'array'} is not an integer vector (a text table holds units; use ark,t: for floats)"
            )
        self.output.write_line(format_int_vector(key, value))

    def close(self, completed: bool) -> None:
        self.output.close(completed)

    def mark_done(self) -> None:
        self.output.mark_done()


def open_archive_output(spec: str, signature: dict, force: bool, recipe: dict | None = None):
    """A sink for `spec` with write(key, value), already_done(key) and the engine's open/close/mark_done."""
    if spec.startswith("npy:"):
        if not spec[len("npy:") :]:
            raise UsageError("npy: needs a directory: npy:DIR")
        if os.path.exists(spec[len("npy:") :]) and not os.path.isdir(spec[len("npy:") :]):
            raise UsageError(f"output {spec!r} is a file", "npy:DIR writes one KEY.npy a key into a directory")
        return NpySink(spec[len("npy:") :], signature, force)
    if spec.startswith("text:"):
        if not spec[len("text:") :]:
            raise UsageError("text: needs a file name (or text:- for stdout)")
        return IntTableSink(spec[len("text:") :], signature, force)
    if spec != "-" and not looks_like_specifier(spec):
        raise UsageError(f"not an output specifier: {spec!r}", f"use {OUTPUT_FORMS}")
    if parse_specifier(spec, writing=True).ark is None:
        raise UsageError(f"cannot write to {spec!r}", "use ark,scp:FILE.ark,FILE.scp")
    return ArchiveSink(spec, signature, force, recipe)


# ---------------------------------------------------------------- telling archives from audio


def holds_features(spec: str) -> bool:
    """True when an input named to an audio command is a feature or unit archive: a text archive, or an
    archive (or the archive an scp's first line points into) whose first value is a Kaldi matrix or vector.
    Only the first entry is looked at; stdin is peeked at, never consumed."""
    if spec.startswith(("text:", "npy:")):
        return True
    if spec == "-" or looks_like_specifier(spec):
        try:
            parsed = parse_specifier(spec)
        except UsageError:
            return False
        if parsed.text:
            return True
        if parsed.scp is not None:
            return _scp_holds_features(parsed.scp)
        if parsed.ark == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            return hasattr(stdin, "peek") and not sys.stdin.isatty() and _starts_like_features(stdin.peek(4096))
        return _file_holds_features(parsed.ark, 0, with_key=True)
    if spec.endswith(".ark"):
        return _file_holds_features(spec, 0, with_key=True)
    if spec.endswith(".scp") and Path(spec).name != "wav.scp":
        return _scp_holds_features(spec)
    return False


def _scp_holds_features(scp: str) -> bool:
    try:
        with open(scp, encoding="utf-8", errors="replace") as handle:
            line = next((line for line in handle if line.strip()), "")
    except OSError:
        return False
    value = line.strip().split(maxsplit=1)[1:]
    path, _, offset = value[0].rpartition(":") if value else ("", "", "")
    return bool(path) and offset.isdigit() and _file_holds_features(path, int(offset), with_key=False)


def _file_holds_features(path: str, offset: int, with_key: bool) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            head = handle.read(4096)
    except OSError:
        return False
    return _starts_like_features(head) if with_key else _value_like_features(head)


def _starts_like_features(head: bytes) -> bool:
    key, space, rest = head.lstrip().partition(b" ")
    return bool(key and space) and _value_like_features(rest)


def _value_like_features(value: bytes) -> bool:
    return value.startswith(b"\0B") or value.lstrip(b" ").startswith(b"[") or value[:1].isdigit()
