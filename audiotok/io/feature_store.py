"""The feature store: keyed arrays in shards with an index, resumable (TASTE's features:
what taste-extract writes and taste-train reads).

    OUT/meta.json                  how the features were made (models, layer, dims, dtype)
    OUT/index.jsonl                one line an utterance: {"key", "shard", "tokens", "frames", "text"}
    OUT/shard-00000.safetensors    tensors "{key}/text_ids" int64 [N], "{key}/text_emb" [N, Dt],
                                   "{key}/whisper" [T, Dw]

Items are buffered and written a shard at a time (a safetensors file written to a
temporary name and renamed), and only then are their index lines appended and
flushed: an item is finished when its index line is. A killed run loses at most
the unwritten buffer; on reopening, a torn last index line is cut off and shards
the index does not name (written just before a kill) are removed, so a resumed
run skips exactly the finished keys. Reading is by key, lazily: safetensors maps
the shard and reads only the tensors asked for, so a corpus never has to fit in
memory (the seed's single giant `.pt` did).
"""

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.io.jsonl_writer import repair_tail
from audiotok.io.locks import claim_output

FORMAT = "audiotok-taste-features"
VERSION = 1
FIELDS = ("text_ids", "text_emb", "whisper")
_SHARD = re.compile(r"shard-(\d{5,})\.safetensors")


@dataclass
class TasteFeatures:
    key: str
    text: str
    text_ids: np.ndarray  # int64 [N]
    text_emb: np.ndarray  # [N, Dt]
    whisper: np.ndarray  # [T, Dw]


def _read_index(path: Path) -> list[dict]:
    rows = []
    if not path.is_file():
        return rows
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith("\n"):
                break  # a torn last line: not finished
            try:
                row = json.loads(line)
                rows.append(
                    {
                        "key": str(row["key"]),
                        "shard": str(row["shard"]),
                        "text": str(row.get("text", "")),
                        "tokens": int(row["tokens"]),
                        "frames": int(row["frames"]),
                    }
                )
            except (ValueError, KeyError, TypeError):
                raise AudiotokError(f"{path}:{number}: not an index line of a TASTE feature store") from None
    return rows


def _read_meta(directory: Path) -> dict:
    path = directory / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise AudiotokError(f"{directory} is not a TASTE feature store (no meta.json)", "make one with audiotok taste-extract") from None
    except ValueError:
        raise AudiotokError(f"{path}: not valid JSON") from None
    if meta.get("format") != FORMAT:
        raise AudiotokError(f"{path}: not a TASTE feature store (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise AudiotokError(f"{path}: store version {meta.get('version')} is not supported (this audiotok reads version {VERSION})")
    return meta


class FeatureStore:
    """Read a store by key: `store[key]` -> TasteFeatures; `store.keys()` in index order."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise AudiotokError(f"no such feature store: {self.directory}", "make one with audiotok taste-extract")
        self.meta = _read_meta(self.directory)
        self._rows = {row["key"]: row for row in _read_index(self.directory / "index.jsonl")}
        self._open: dict[str, object] = {}

    def keys(self) -> list[str]:
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def row(self, key: str) -> dict:
        """The index line of a key: shard, text, tokens (N), frames (T)."""
        try:
            return self._rows[key]
        except KeyError:
            raise AudiotokError(f"key {key!r} is not in the feature store {self.directory}") from None

    def _shard(self, name: str):
        handle = self._open.get(name)
        if handle is None:
            from safetensors import safe_open

            path = self.directory / name
            try:
                handle = safe_open(str(path), framework="np")
            except FileNotFoundError:
                raise AudiotokError(f"{path} is named by the index but missing", "the store lost a file: make it again with taste-extract --force") from None
            except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
                raise AudiotokError(f"{path}: unreadable shard ({err})") from None
            self._open[name] = handle
        return handle

    def get(self, key: str, fields: tuple[str, ...] = FIELDS) -> TasteFeatures:
        row = self.row(key)
        shard = self._shard(row["shard"])
        values = {name: shard.get_tensor(f"{key}/{name}") if name in fields else None for name in FIELDS}
        return TasteFeatures(key, row["text"], **values)

    def __getitem__(self, key: str) -> TasteFeatures:
        return self.get(key)

    def __iter__(self) -> Iterator[TasteFeatures]:
        """Every item, shard by shard (each shard opened once)."""
        for key in sorted(self._rows, key=lambda k: (self._rows[k]["shard"], k)):
            yield self.get(key)


class FeatureStoreWriter:
    """Append items to a store, a shard at a time; reopening a store resumes it.

    `meta` must equal the stored meta.json (same models, layer, dtype) to resume,
    so features made two ways never mix in one store.
    """

    def __init__(self, directory: str | os.PathLike, meta: dict, shard_items: int = 256, shard_bytes: int = 1 << 29):
        self.directory = Path(directory)
        self.meta = {"format": FORMAT, "version": VERSION, **meta}
        self.shard_items, self.shard_bytes = shard_items, shard_bytes
        claim_output(self.directory, directory=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self.directory / "meta.json"
        if meta_path.exists():
            stored = _read_meta(self.directory)
            if stored != self.meta:
                changed = sorted(k for k in set(stored) | set(self.meta) if stored.get(k) != self.meta.get(k))
                raise AudiotokError(
                    f"{self.directory} holds features made with other settings ({', '.join(changed)} differ)",
                    "use the same options to resume, --force to start over, or another output directory",
                )
        else:
            tmp = meta_path.with_name(f"meta.json.tmp.{os.getpid()}")
            tmp.write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, meta_path)
        self.index_path = self.directory / "index.jsonl"
        if self.index_path.exists():
            repair_tail(self.index_path)
        rows = _read_index(self.index_path)
        self.done = {row["key"] for row in rows}
        named = {row["shard"] for row in rows}
        numbers = [-1]
        for path in self.directory.iterdir():
            match = _SHARD.fullmatch(path.name)
            if match and path.name not in named:
                path.unlink()  # written before a kill, never indexed: its items are redone
            elif match:
                numbers.append(int(match.group(1)))
            elif ".safetensors.tmp." in path.name:
                path.unlink()
        self._next_shard = max(numbers) + 1
        self._buffer: list[TasteFeatures] = []
        self._buffer_bytes = 0
        self.written = 0  # items written by this writer

    def add(self, item: TasteFeatures) -> None:
        if item.key in self.done or any(b.key == item.key for b in self._buffer):
            raise AudiotokError(f"key {item.key!r} is already in {self.directory}")
        if "/" in item.key:
            raise AudiotokError(f"key {item.key!r} contains '/', which the store uses to name tensors")
        if len(item.text_ids) != len(item.text_emb):
            raise ValueError(f"{item.key}: {len(item.text_ids)} text ids but {len(item.text_emb)} embeddings")
        self._buffer.append(item)
        self._buffer_bytes += item.text_emb.nbytes + item.whisper.nbytes + item.text_ids.nbytes
        if len(self._buffer) >= self.shard_items or self._buffer_bytes >= self.shard_bytes:
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> None:
        """Write the buffered items as one shard, then index them."""
        if not self._buffer:
            return
        from safetensors.numpy import save_file

        name = f"shard-{self._next_shard:05d}.safetensors"
        tensors = {}
        for item in self._buffer:
            tensors[f"{item.key}/text_ids"] = np.ascontiguousarray(item.text_ids, dtype=np.int64)
            tensors[f"{item.key}/text_emb"] = np.ascontiguousarray(item.text_emb)
            tensors[f"{item.key}/whisper"] = np.ascontiguousarray(item.whisper)
        path = self.directory / name
        tmp = path.with_name(f"{name}.tmp.{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # safetensors creates files 0600; shards are as readable as the index
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        # The items are in a shard now: a second flush (Ctrl-C here, then close) must not write them again.
        items, self._buffer, self._buffer_bytes = self._buffer, [], 0
        with open(self.index_path, "a", encoding="utf-8") as index:
            for item in items:
                row = {"key": item.key, "shard": name, "tokens": int(len(item.text_ids)), "frames": int(len(item.whisper)), "text": item.text}
                index.write(json.dumps(row, ensure_ascii=False) + "\n")
            index.flush()
            os.fsync(index.fileno())
        self.done.update(item.key for item in items)
        self.written += len(items)
        self._next_shard += 1

    # The engine's sink interface: finished items are written whatever stopped the run.
    def open(self) -> "FeatureStoreWriter":
        return self

    def close(self, completed: bool = True) -> None:
        self.flush()

    def mark_done(self) -> None:
        """A store is complete when its index holds every key: there is no separate marker."""
