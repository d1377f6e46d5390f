"""JSONL outputs, one line a key, that a killed run resumes.

ResumableJsonl: one table (bicodec-extract, ...): lines grow in `FILE.partial`, the run's
signature in `FILE.partial.json` (a RunMarker); the same command again keeps the complete
lines (a torn last line is cut off), skips their keys and appends the rest; a finished run
renames the file into place and leaves the `.done` marker. Items are written in input order,
so a resumed output is byte-identical to an uninterrupted one. `-` is stdout (no resume).

Per-process files (tokenize-shards): `OUT/{name}_{process}.jsonl` (task J of N of a job array:
`OUT/{name}_{J}of{N}_{process}.jsonl`), and beside each, `X.skipped.jsonl`: a line a sample the
worker could not use, `{"key", "shard", "reason"}`. A line is one sample,
`{"key", "shard", "language", "text", <token fields>}`, always written with "key" then
"shard" first, so the finished keys of a large output are read without parsing the token
lists. Lines are appended and flushed one by one: a killed run leaves at most one torn line
(no newline) at the end of a file, which `repair_tail` cuts off before a run resumes. A
sample is identified by its shard's file name and its key, so resuming still gives one line
a sample after the number of processes (and so the file each shard goes to) has changed.
"""

import json
import os
import re
import sys
import time
from collections.abc import Iterable
from json.decoder import scanstring
from pathlib import Path

from audiotok.errors import AlreadyDone
from audiotok.io.atomic import install
from audiotok.io.locks import claim_output
from audiotok.io.markers import DoneMarker, RunMarker
from audiotok.io.tables import format_jsonl

FSYNC_EVERY_LINES = 200
FSYNC_EVERY_SECONDS = 5.0
_LINE_HEAD = '{"key":"'
_SHARD_HEAD = ',"shard":"'


def run_stem(name: str, task: tuple[int, int] | None = None) -> str:
    """The file name stem of one run's outputs: `{name}`, or `{name}_{J}of{N}` for task J of N, so that
    the tasks of an array writing into one directory never share a file."""
    return name if task is None else f"{name}_{task[0]}of{task[1]}"


def output_path(out_dir: str | Path, stem: str, process: int) -> Path:
    return Path(out_dir) / f"{stem}_{process}.jsonl"


def skipped_path(output: Path) -> Path:
    """Where the worker writing `output` records the samples it could not use: `X.skipped.jsonl`."""
    return output.with_name(output.name.removesuffix(".jsonl") + ".skipped.jsonl")


def _matching(out_dir: str | Path, pattern: str) -> list[Path]:
    directory = Path(out_dir)
    if not directory.is_dir():
        return []
    compiled = re.compile(pattern)
    return sorted(p for p in directory.iterdir() if compiled.fullmatch(p.name) and p.is_file())


def output_files(out_dir: str | Path, stem: str) -> list[Path]:
    """Every `{stem}_{N}.jsonl` in out_dir (one run's, or one task's), whichever number of processes made it."""
    return _matching(out_dir, re.escape(stem) + r"_\d+\.jsonl")


def token_files(out_dir: str | Path, name: str) -> list[Path]:
    """Every token file of input `name` in out_dir: `{name}_{N}.jsonl` and every task's `{name}_{J}of{T}_{N}.jsonl`."""
    return _matching(out_dir, re.escape(name) + r"_(\d+of\d+_)?\d+\.jsonl")


def skipped_files(out_dir: str | Path, name: str) -> list[Path]:
    """Every `.skipped.jsonl` record of input `name` in out_dir, whichever run or task wrote it."""
    return _matching(out_dir, re.escape(name) + r"_(\d+of\d+_)?\d+\.skipped\.jsonl")


def repair_tail(path: Path) -> int:
    """Cut a torn last line (one with no newline); returns the bytes dropped."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as handle:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            chunk = handle.read(end - start)
            if end == size and chunk.endswith(b"\n"):
                return 0
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return size - keep


def line_identity(line: str) -> tuple[str, str] | None:
    """(shard, key) of a finished line; None for a line that is not a sample."""
    try:
        if line.startswith(_LINE_HEAD):
            key, end = scanstring(line, len(_LINE_HEAD))
            if line.startswith(_SHARD_HEAD, end):
                shard, _ = scanstring(line, end + len(_SHARD_HEAD))
                return shard, key
        record = json.loads(line)
        return str(record["shard"]), str(record["key"])
    except (ValueError, KeyError, TypeError):
        return None


def read_done(paths: Iterable[Path], shards: set[str] | None = None) -> set[tuple[str, str]]:
    """(shard, key) of every complete line in paths, only for `shards` when given.

    A last line without its newline is being written by a running worker (or was torn): not done.
    """
    done: set[tuple[str, str]] = set()
    for path in paths:
        try:
            handle = open(path, encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        with handle:
            for line in handle:
                if not line.endswith("\n"):
                    break
                identity = line_identity(line)
                if identity is not None and (shards is None or identity[0] in shards):
                    done.add(identity)
    return done


def sample_line(key: str, shard: str, language, text, tokens: dict) -> str:
    record = {"key": key, "shard": shard, "language": language, "text": text, **tokens}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def skipped_line(key: str | None, shard: str, reason: str) -> str:
    """A sample a worker could not use (key None: a damaged shard, whose later samples are lost)."""
    return json.dumps({"key": key, "shard": shard, "reason": reason}, ensure_ascii=False, separators=(",", ":")) + "\n"


class LineAppender:
    """Appends whole lines, flushed at once and fsync'd at intervals (and on close)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", encoding="utf-8")
        self.unsynced = 0
        self.synced_at = time.monotonic()

    def write(self, line: str) -> None:
        self.handle.write(line)
        self.handle.flush()
        self.unsynced += 1
        if self.unsynced >= FSYNC_EVERY_LINES or time.monotonic() - self.synced_at > FSYNC_EVERY_SECONDS:
            self.sync()

    def sync(self) -> None:
        os.fsync(self.handle.fileno())
        self.unsynced, self.synced_at = 0, time.monotonic()

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.flush()
            self.sync()
            self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ResumableJsonl:
    def __init__(self, spec: str, signature: dict, force: bool):
        self.spec, self.signature = spec, signature
        self.done_keys: set[str] = set()
        self.stream = None
        if spec == "-":
            self.marker = None
            return
        self.marker = DoneMarker(spec, directory=False)
        if not force and self.marker.matches(signature):
            raise AlreadyDone(spec)
        claim_output(spec)
        self.partial, self.run = Path(spec + ".partial"), RunMarker(spec, directory=False)
        self.force = force

    def open(self) -> "ResumableJsonl":
        """Start or resume the output (once; later calls return it as it is)."""
        if self.stream is not None:
            return self
        if self.marker is None:
            self.stream = sys.stdout
            return self
        self.marker.clear()
        if self.run.resume(self.signature, self.force) and self.partial.exists():
            self._keep_complete_lines()
        else:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self.partial.write_bytes(b"")
            self.run.write(self.signature)
        self.stream = open(self.partial, "a", encoding="utf-8")
        return self

    def _keep_complete_lines(self) -> None:
        data = self.partial.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with open(self.partial, "r+b") as handle:
                handle.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            self.done_keys.add(json.loads(line)["key"])

    def write(self, key: str, **fields) -> None:
        self.stream.write(format_jsonl(key, **fields) + "\n")
        self.stream.flush()

    def close(self, completed: bool) -> None:
        if self.stream is None or self.marker is None:
            return
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        if completed:
            install(self.partial, self.spec)
            self.run.clear()
        # otherwise the partial file and its signature stay for a resumed run

    def mark_done(self) -> None:
        if self.marker:
            self.marker.write(self.signature)
