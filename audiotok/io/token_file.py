"""A flat token file for LM trainers: every utterance's tokens in one memory-mappable array.

    DIR/tokens.bin    the tokens of all rows back to back, little-endian `dtype`
                      ([bos] tokens [eos] per row, `sep` between rows, when given)
    DIR/index.bin     int64 little-endian, shape (rows, 2): where a row's own tokens start in
                      tokens.bin (in elements, after its bos) and how many frames it has
    DIR/keys.txt      one key a line, in row order
    DIR/header.json   {"format": "audiotok-tokens/1", "dtype", "rows", "elements", "width", "bos",
                       "eos", "sep", "vocab_size", "offsets", "frame_rate", "field", "provenance"}

A frame is `width` tokens (1 for one codebook; C for TASTE's C RVQ codes a text token), so a
row's elements are frames x width. `TokenFile` reads it back with numpy.memmap: nothing is
loaded until asked for, so a trainer can sample windows from a file larger than memory.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError

FORMAT = "audiotok-tokens/1"
HINT = "write it with: audiotok export UNITS --to tokens -o DIR"


def narrowest_unsigned(largest: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id up to `largest`."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if largest <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise AudiotokError(f"token id {largest} does not fit 64 bits")


class TokenFileWriter:
    """Appends rows to DIR/tokens.bin, DIR/index.bin and DIR/keys.txt; `finish(header)` writes the header."""

    def __init__(self, directory: Path, dtype: np.dtype, width: int, bos: int | None = None, eos: int | None = None, sep: int | None = None):
        self.directory, self.dtype, self.width = directory, np.dtype(dtype).newbyteorder("<"), width
        self.bos, self.eos, self.sep = bos, eos, sep
        self.rows = self.elements = 0
        self.tokens = open(directory / "tokens.bin", "wb")
        self.index = open(directory / "index.bin", "wb")
        self.keys = open(directory / "keys.txt", "w", encoding="utf-8")

    def write(self, key: str, tokens: np.ndarray) -> None:
        pieces = []
        if self.sep is not None and self.rows:
            pieces.append(np.array([self.sep]))
        if self.bos is not None:
            pieces.append(np.array([self.bos]))
        start = self.elements + sum(len(p) for p in pieces)
        pieces.append(tokens.reshape(-1))
        if self.eos is not None:
            pieces.append(np.array([self.eos]))
        block = np.concatenate(pieces).astype(self.dtype)
        self.tokens.write(block.tobytes())
        self.index.write(np.array([start, len(tokens)], dtype="<i8").tobytes())
        self.keys.write(key + "\n")
        self.rows += 1
        self.elements += len(block)

    def finish(self, header: dict) -> None:
        for handle in (self.tokens, self.index, self.keys):
            handle.close()
        header = {
            "format": FORMAT,
            "dtype": self.dtype.name,
            "byteorder": "little",
            "rows": self.rows,
            "elements": self.elements,
            "width": self.width,
            "bos": self.bos,
            "eos": self.eos,
            "sep": self.sep,
            **header,
        }
        (self.directory / "header.json").write_text(json.dumps(header, indent=1) + "\n", encoding="utf-8")

    def abandon(self) -> None:
        for handle in (self.tokens, self.index, self.keys):
            handle.close()


class TokenFile:
    """A flat token file, memory-mapped: `tf[i]` or `tf[key]` is a row's tokens (frames x width for
    width > 1), without its bos/eos/sep; `tf.data` is the whole array a trainer samples from."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        try:
            self.header = json.loads((self.directory / "header.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AudiotokError(f"{self.directory} is not a token file (no header.json)", HINT) from None
        except json.JSONDecodeError as err:
            raise AudiotokError(f"{self.directory}/header.json is not valid JSON: {err.msg}", HINT) from None
        if not isinstance(self.header, dict) or self.header.get("format") != FORMAT:
            raise AudiotokError(f"{self.directory} is not an {FORMAT} token file", HINT)
        self.dtype = np.dtype(self.header["dtype"]).newbyteorder("<")
        self.width = int(self.header["width"])
        rows, elements = int(self.header["rows"]), int(self.header["elements"])
        self.data = self._map("tokens.bin", self.dtype, (elements,))
        self.index = self._map("index.bin", np.dtype("<i8"), (rows, 2))
        self.keys = (self.directory / "keys.txt").read_text(encoding="utf-8").split("\n")[:rows]
        if len(self.keys) != rows:
            raise AudiotokError(f"{self.directory}/keys.txt holds {len(self.keys)} keys for {rows} rows", "the token file is damaged: export it again")
        self._rows = None

    def _map(self, name: str, dtype: np.dtype, shape: tuple) -> np.ndarray:
        path = self.directory / name
        expected = int(np.prod(shape)) * dtype.itemsize
        size = path.stat().st_size if path.exists() else None
        if size != expected:
            found = "missing" if size is None else f"{size} bytes"
            raise AudiotokError(f"{path}: {found}, the header says {expected} bytes", "the token file is damaged: export it again")
        if expected == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)

    def __len__(self) -> int:
        return len(self.keys)

    def row_of(self, key: str) -> int:
        if self._rows is None:
            self._rows = {k: i for i, k in enumerate(self.keys)}
        try:
            return self._rows[key]
        except KeyError:
            raise KeyError(key) from None

    def __getitem__(self, row: int | str) -> np.ndarray:
        if isinstance(row, str):
            row = self.row_of(row)
        start, frames = (int(v) for v in self.index[row])
        tokens = self.data[start : start + frames * self.width]
        return tokens.reshape(frames, self.width) if self.width > 1 else tokens

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for row, key in enumerate(self.keys):
            yield key, self[row]
