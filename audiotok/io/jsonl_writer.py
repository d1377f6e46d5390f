"""A JSONL table that a killed run resumes: lines grow in `FILE.partial`, the run's
signature in `FILE.partial.json`; the same command again keeps the complete lines (a
torn last line is cut off), skips their keys and appends the rest; a finished run
renames the file into place and leaves the `.done` marker. Items are written in input
order, so a resumed output is byte-identical to an uninterrupted one. `-` is stdout
(no resume).
"""

import json
import os
import sys
from pathlib import Path

from audiotok.io.atomic import install
from audiotok.io.markers import DoneMarker, RunMarker
from audiotok.io.outputs import AlreadyDone
from audiotok.io.tables import format_jsonl


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
        self.partial, self.run = Path(spec + ".partial"), RunMarker(spec, directory=False)

    def open(self) -> "ResumableJsonl":
        """Start or resume the output (once; later calls return it as it is)."""
        if self.stream is not None:
            return self
        if self.marker is None:
            self.stream = sys.stdout
            return self
        self.marker.clear()
        if self.run.matches(self.signature) and self.partial.exists():
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
