"""The one marker format of every output: a small JSON file `{"signature": {...}}` naming
the run (command, arguments that change the output, version).

DoneMarker: the output is finished; the same command skips it (--force redoes it).
`DIR/.done` for a directory output, `.NAME.done` beside a file output.
RunMarker: the output is being made; a killed run with the same signature resumes it, and a
run with another signature (other options, or model files whose content changed at the same
path) is refused rather than mixing two runs' results in one output.
`DIR/.run.json` for a directory, `FILE.partial.json` beside a file's `FILE.partial`.
AddingMarker: outputs that later runs keep adding to (tokenize-shards' per-process files): the
first run records its signature, and a run made differently is refused.
"""

import contextlib
import json
import os
from pathlib import Path

from audiotok.errors import AudiotokError
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

    def resume(self, signature: dict, force: bool, restart_hint: str = "--force starts over") -> bool:
        """True: an unfinished run with this signature left work to resume. False: start afresh
        (nothing left, or force). An unfinished run made differently: AudiotokError naming the difference."""
        previous = self.signature()
        if previous is None or force or previous == signature:
            return previous is not None and not force
        refuse_other_run(self.output, previous, signature, restart_hint)


class AddingMarker(_Marker):
    def __init__(self, path: str | os.PathLike, output: str | os.PathLike):
        super().__init__(Path(path), Path(output))

    def check(self, signature: dict, restart_hint: str) -> None:
        """Record the signature on the first run; refuse a run whose signature differs."""
        record = None if self.special else self.read()
        if not isinstance(record, dict):
            self.write(signature)
            return
        previous = record.get("signature") or {"arguments": {"tokenizer": record.get("tokenizer")}}  # an older record names only the tokenizer
        if previous != signature:
            refuse_other_run(self.output, previous, signature, restart_hint)


def differences(previous: dict, signature: dict) -> list[str]:
    """What differs between two signatures, by name: arguments, the command, the version."""
    changed = [name for name in ("command", "audiotok") if previous.get(name) != signature.get(name)]
    before, now = previous.get("arguments") or {}, signature.get("arguments") or {}
    changed += sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))
    return [{"audiotok": "audiotok version"}.get(name, name) for name in changed]


def refuse_other_run(output, previous: dict, signature: dict, restart_hint: str):
    raise AudiotokError(
        f"{output} holds results made differently (changed: {', '.join(differences(previous, signature)) or 'signature'}); "
        "going on would mix two runs' results in one output",
        f"run the first command again to finish it, or {restart_hint}",
    )
