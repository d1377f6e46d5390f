"""Parquet shards with the audio inside (the Hugging Face `datasets` layout) as a source.

    parquet:FILE.parquet    one shard
    parquet:DIR             DIR/*.parquet, sorted
    parquet:GLOB            every match, sorted
    ...,audio=COL,key=COL   options after the path: the audio column and the key column

The audio column is a struct `{bytes, path}` (what `datasets` writes for an `Audio`
feature: the bytes of an audio file; a row without bytes is read from `path`, in the
current directory or beside the shard), a struct `{array, sampling_rate}` (samples, a list
of floats or a list of channels of floats), or a plain binary column of file bytes. Without
`audio=` it is the column named "audio", else the one column the file's `datasets` schema
calls Audio. The key is the `key=` column, else a column named "id" or "key", else the stem
of the audio struct's path, else `SHARDNAME-ROW`. The other scalar columns (text, speaker,
language, ...) are the item's metadata.

Shards are read by batches of BATCH_ROWS rows with buffered (not pre-buffered) reads, so a
row group's audio is never in memory at once. A row that cannot be used (no audio, bytes
that do not decode) is a named skip; a file that is not Parquet, or has no such column, is
one error before anything is read.
"""

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError, ItemError, UsageError

BATCH_ROWS = 16  # rows decoded from Parquet at once: a few seconds to minutes of audio each
READ_BUFFER_BYTES = 1 << 20  # pages are read through a buffer of this size, never a row group at once
OPTIONS = ("audio", "key")
KEY_COLUMNS = ("id", "key")
_OPTION = re.compile(r"^([A-Za-z_]\w*)=(.*)$")


@dataclass(frozen=True)
class ParquetSpec:
    pattern: str  # a file, a directory or a glob
    audio: str | None = None  # None: "audio", or the datasets schema's one Audio column
    key: str | None = None  # None: "id"/"key", the audio path's stem, or SHARDNAME-ROW


def parse_spec(text: str) -> ParquetSpec:
    """`shards/*.parquet,audio=speech,key=utt` (the `parquet:` prefix already removed)."""
    parts = text.split(",")
    options: dict[str, str] = {}
    while len(parts) > 1 and (match := _OPTION.match(parts[-1])):
        name, value = match.groups()
        if name not in OPTIONS:
            raise UsageError(f"parquet:{text}: unknown option {name!r}", f"options are {', '.join(f'{o}=COLUMN' for o in OPTIONS)}")
        if not value:
            raise UsageError(f"parquet:{text}: {name}= needs a column name")
        options.setdefault(name, value)
        parts.pop()
    return ParquetSpec(",".join(parts), options.get("audio"), options.get("key"))


def shard_paths(pattern: str) -> list[str]:
    import glob

    if os.path.isdir(pattern):
        paths = sorted(glob.glob(os.path.join(glob.escape(pattern), "*.parquet")))
    elif any(ch in pattern for ch in "*?["):
        paths = sorted(glob.glob(pattern))
    else:
        paths = [pattern] if os.path.exists(pattern) else []
    if not paths:
        raise AudiotokError(f"no Parquet shards found at {pattern}", "parquet:DIR reads DIR/*.parquet; parquet:FILE.parquet one shard; a glob several")
    return paths


@dataclass(frozen=True)
class Layout:
    """Which columns of a shard hold what."""

    audio: str
    kind: str  # "file": a {bytes, path} struct; "binary": a plain bytes column; "array": {array, sampling_rate}
    key: str | None  # None: the path's stem or SHARDNAME-ROW
    metadata: tuple[str, ...]  # scalar columns


def _datasets_audio_columns(schema) -> list[str]:
    """The columns the `datasets` schema metadata declares Audio (written with every Dataset.to_parquet)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        features = json.loads(raw)["info"]["features"] if raw else {}
    except (ValueError, KeyError, TypeError):
        return []
    return [name for name, feature in features.items() if isinstance(feature, dict) and feature.get("_type") == "Audio"]


def _is_scalar(arrow_type) -> bool:
    import pyarrow as pa

    checks = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
    return any(check(arrow_type) for check in checks)


def _audio_kind(arrow_type) -> str | None:
    import pyarrow as pa

    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "binary"
    if not pa.types.is_struct(arrow_type):
        return None
    names = {arrow_type.field(i).name for i in range(arrow_type.num_fields)}
    if "bytes" in names:
        return "file"
    if {"array", "sampling_rate"} <= names:
        return "array"
    return None


def open_shard(path: str):
    """The ParquetFile, read through a small buffer; a file that is not Parquet is one error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    except (pa.ArrowException, OSError) as err:
        raise AudiotokError(f"{path} is not a readable Parquet file: {str(err).strip().splitlines()[0]}", "parquet: reads Parquet shards") from None


def shard_layout(path: str, spec: ParquetSpec) -> Layout:
    """Check one shard's schema against the spec (its footer only)."""
    schema = open_shard(path).schema_arrow
    names = list(schema.names)
    audio = spec.audio
    if audio is None:
        declared = _datasets_audio_columns(schema)
        audio = "audio" if "audio" in names or len(declared) != 1 else declared[0]
    if audio not in names:
        raise AudiotokError(f"{path} has no audio column {audio!r} (columns: {', '.join(names)})", "name it: parquet:PATH,audio=COLUMN")
    kind = _audio_kind(schema.field(audio).type)
    if kind is None:
        raise AudiotokError(
            f"{path}: column {audio!r} is {schema.field(audio).type}, not audio",
            "the audio column is a struct {bytes, path} (datasets' Audio), {array, sampling_rate}, or binary file bytes",
        )
    key = spec.key
    if key is not None and key not in names:
        raise AudiotokError(f"{path} has no key column {key!r} (columns: {', '.join(names)})", "name it: parquet:PATH,key=COLUMN")
    if key is None:
        key = next((name for name in KEY_COLUMNS if name in names and _is_scalar(schema.field(name).type)), None)
    metadata = tuple(name for name in names if name != audio and _is_scalar(schema.field(name).type))
    return Layout(audio, kind, key, metadata)


def row_count(path: str) -> int:
    """Rows of a shard, from its footer; 0 for a file that is not Parquet."""
    try:
        return open_shard(path).metadata.num_rows
    except AudiotokError:
        return 0


@dataclass
class ParquetRow:
    """One row of a shard: what it holds of audio, its key and its scalar columns."""

    key: str
    shard: str
    row: int  # 0-based, within the shard
    metadata: dict = field(default_factory=dict)
    data: bytes | None = None  # an audio file's bytes
    path: str | None = None  # the audio struct's path (used when it has no bytes and the file exists)
    array: np.ndarray | None = None  # samples [channels, frames] for the array layout
    rate: int | None = None
    problems: list[str] = field(default_factory=list)
    directory: str = ""  # the shard's folder: a relative `path` without bytes is looked for there too

    def load(self, channel: int | None = None):
        """The row's audio (audiotok.io.audio.Audio); ItemError when there is none or it does not decode."""
        from audiotok.io.audio import Audio, AudioInfo, check_samples, decode, select_channel

        if self.problems:
            raise ItemError("; ".join(self.problems))
        if self.data is not None:
            return decode(self.data, channel)
        if self.array is not None:
            frames = np.ascontiguousarray(self.array.T, dtype=np.float32)
            check_samples(frames)
            info = AudioInfo(self.rate, frames.shape[1], frames.shape[0], "ARRAY", "FLOAT")
            return Audio(select_channel(frames, channel), self.rate, info)
        for candidate in (self.path, os.path.join(self.directory, self.path)) if self.path else ():
            if os.path.isfile(candidate):
                return decode(candidate, channel)
        where = f" (path {self.path} is not a file here nor beside the shard)" if self.path else ""
        raise ItemError(f"row {self.row} of {self.shard} has no audio bytes{where}")


def _path_stem(path) -> str | None:
    return Path(path).stem if isinstance(path, str) and path else None


def _array_of(scalar, row: int, shard: str) -> tuple[np.ndarray | None, str | None]:
    """One row's `array` (a list of floats, or a list of channels of floats) as [channels, frames], or a reason."""
    import pyarrow as pa

    if not scalar.is_valid:
        return None, f"row {row} of {shard} has a null audio array"
    values = scalar.values
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        channels = [values[c].values.to_numpy(zero_copy_only=False) if values[c].is_valid else np.zeros(0) for c in range(len(values))]
        if not channels or len({len(c) for c in channels}) != 1:
            return None, f"row {row} of {shard}: the channels of the audio array differ in length"
        return np.stack(channels).astype(np.float32, copy=False), None
    if not pa.types.is_floating(values.type):
        return None, f"row {row} of {shard}: the audio array holds {values.type}, not float samples"
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)[np.newaxis, :], None


def iter_rows(path: str, layout: Layout) -> Iterator[ParquetRow]:
    """The rows of one shard, BATCH_ROWS at a time; a damaged file raises pyarrow's error after the good rows."""
    shard = os.path.basename(path)
    stem = shard.removesuffix(".parquet")
    columns = list(dict.fromkeys([layout.audio, *layout.metadata]))
    row = 0
    for batch in open_shard(path).iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False):
        audio = batch.column(layout.audio)
        metadata = {name: batch.column(name).to_pylist() for name in layout.metadata}
        valid = audio.is_valid().to_pylist()
        if layout.kind == "file":
            data, paths = audio.field("bytes").to_pylist(), audio.field("path").to_pylist() if audio.type.get_field_index("path") >= 0 else None
        elif layout.kind == "binary":
            data, paths = audio.to_pylist(), None
        else:
            arrays, rates = audio.field("array"), audio.field("sampling_rate").to_pylist()
        for i in range(batch.num_rows):
            meta = {name: values[i] for name, values in metadata.items()}
            path_value = paths[i] if layout.kind == "file" and paths is not None and valid[i] else None
            if layout.key is not None and meta.get(layout.key) is not None:
                key = str(meta[layout.key])
            else:
                key = _path_stem(path_value) or f"{stem}-{row}"
            item = ParquetRow(key, shard, row, meta, path=path_value, directory=os.path.dirname(path))
            if not valid[i]:
                item.problems.append(f"row {row} of {shard} has no audio (null {layout.audio!r})")
            elif layout.kind == "array":
                item.array, problem = _array_of(arrays[i], row, shard)
                item.rate = rates[i]
                if problem is None and not item.rate:
                    problem = f"row {row} of {shard} has no sampling_rate"
                if problem:
                    item.problems.append(problem)
            else:
                item.data = data[i]
            yield item
            row += 1
