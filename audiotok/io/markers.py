"""The one marker format of every output: a small JSON file `{"signature": {...}}` naming
the run (command, arguments that change the output, version).

DoneMarker: the output is finished; the same command skips it (--force redoes it).
`DIR/.done` for a directory output, `.NAME.done` beside a file output.
RunMarker: the output is being made; a killed run with the same signature resumes it.
`DIR/.run.json` for a directory, `FILE.partial.json` beside a file's `FILE.partial`.
"""

import contextlib
import json
import os
from pathlib import Path

from audiotok.io.atomic import atomic_write_text, is_special


class _Marker:
    def __init__(self, path: Path, output: Path):
        self.path, self.output = path, output
        self.special = is_special(output)  # /dev/null and FIFOs get no marker beside them

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None

    def signature(self) -> dict | None:
        marker = None if self.special else self.read()
        return marker.get("signature") if isinstance(marker, dict) else None

    def write(self, signature: dict, **extra) -> None:
        if self.special:
            return
        atomic_write_text(self.path, json.dumps({"signature": signature, **extra}, indent=1, sort_keys=True) + "\n")

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self.path.unlink()


class DoneMarker(_Marker):
    def __init__(self, output: str | os.PathLike, directory: bool):
        output = Path(output)
        super().__init__(output / ".done" if directory else output.with_name(f".{output.name}.done"), output)

    def matches(self, signature: dict) -> bool:
        """True when the output exists and a run with this signature finished it."""
        return self.output.exists() and self.signature() == signature


class RunMarker(_Marker):
    def __init__(self, output: str | os.PathLike, directory: bool):
        output = Path(output)
        super().__init__(output / ".run.json" if directory else output.with_name(f"{output.name}.partial.json"), output)

    def matches(self, signature: dict) -> bool:
        """True when an unfinished run with this signature left work to resume."""
        return self.signature() == signature
