"""Unit tables as Parquet shards, one row an utterance, the layout Hugging Face datasets loads.

    DIR/{split}-00000-of-00003.parquet ...
    columns: key, TOKENS (list of the narrowest unsigned type; a list of lists for codes),
             num_frames, [frame_rate, duration], [text, speaker, language, ...], other integer
             fields of the input (durations, text_ids, global_tokens: int32 lists)
    metadata: b"audiotok" -> JSON provenance (inputs, recipe, vocabulary, offsets, version)

Rows are written in row groups as they come; a shard is closed after --rows-per-shard rows or
--shard-size bytes of tokens, so memory does not grow with the corpus.
"""

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audiotok.errors import AudiotokError

ROW_GROUP_ROWS = 1000


def list_array(arrays: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    """A list<value_type> (or list<list<value_type>> for 2-D arrays) column from numpy arrays, without Python lists."""
    if arrays and arrays[0].ndim == 2:
        inner = list_array([row for array in arrays for row in array], value_type)
        offsets = np.concatenate(([0], np.cumsum([len(a) for a in arrays]))).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), inner)
    offsets = np.concatenate(([0], np.cumsum([len(a) for a in arrays]))).astype(np.int32)
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(np.dtype(str(value_type)), copy=False), type=value_type))


class ParquetShards:
    """write(row) for each row (a dict of column values), then finish() -> the shard paths."""

    def __init__(self, directory: Path, schema: pa.Schema, split: str, rows_per_shard: int | None, shard_bytes: int | None):
        self.directory, self.schema, self.split = directory, schema, split
        self.rows_per_shard, self.shard_bytes = rows_per_shard, shard_bytes
        self.parts: list[Path] = []
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[dict] = []
        self.shard_rows = self.shard_size = 0

    def write(self, row: dict, nbytes: int) -> None:
        if self.writer is None:
            path = self.directory / f"part-{len(self.parts):05d}.parquet"
            self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
            self.parts.append(path)
        self.buffer.append(row)
        self.shard_rows += 1
        self.shard_size += nbytes
        if len(self.buffer) >= ROW_GROUP_ROWS:
            self._flush()
        if (self.rows_per_shard and self.shard_rows >= self.rows_per_shard) or (self.shard_bytes and self.shard_size >= self.shard_bytes):
            self._close_shard()

    def _flush(self) -> None:
        if not self.buffer:
            return
        columns = []
        for column in self.schema:
            values = [row.get(column.name) for row in self.buffer]
            if pa.types.is_list(column.type) and all(isinstance(v, np.ndarray) for v in values):
                columns.append(list_array(values, _leaf_type(column.type)))
            else:
                columns.append(pa.array([v.tolist() if isinstance(v, np.ndarray) else v for v in values], type=column.type))
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self.buffer.clear()

    def _close_shard(self) -> None:
        self._flush()
        self.writer.close()
        self.writer = None
        self.shard_rows = self.shard_size = 0

    def finish(self) -> list[Path]:
        if self.writer is None and not self.parts:  # an empty table still makes one (empty) shard
            pq.ParquetWriter(self.directory / "part-00000.parquet", self.schema, compression="zstd").close()
            self.parts.append(self.directory / "part-00000.parquet")
        if self.writer is not None:
            self._close_shard()
        named = []
        for number, path in enumerate(self.parts):
            target = path.with_name(f"{self.split}-{number:05d}-of-{len(self.parts):05d}.parquet")
            os.replace(path, target)
            named.append(target)
        return named

    def abandon(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _leaf_type(list_type: pa.DataType) -> pa.DataType:
    while pa.types.is_list(list_type):
        list_type = list_type.value_type
    return list_type


def read_provenance(path: str | Path) -> dict:
    """The provenance export recorded in a Parquet file's metadata."""
    metadata = pq.read_schema(path).metadata or {}
    if b"audiotok" not in metadata:
        raise AudiotokError(f"{path} has no audiotok provenance in its metadata")
    return json.loads(metadata[b"audiotok"])
