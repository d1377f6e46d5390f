"""Writing unit sequences: text integer vectors, JSONL, or one .npy file per key; optional run-length dedup."""

from pathlib import Path

import numpy as np

from audiotok.errors import AlreadyDone, ItemError, UsageError
from audiotok.io.atomic import atomic_open
from audiotok.io.locks import claim_output
from audiotok.io.markers import DoneMarker
from audiotok.io.outputs import TextOutput
from audiotok.io.tables import format_int_vector, format_jsonl

FORMATS = ("text", "jsonl", "npy")


def run_lengths(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length form: (units with repeats removed, how many frames each lasted)."""
    if len(units) == 0:
        return units, units
    starts = np.flatnonzero(np.concatenate(([True], units[1:] != units[:-1])))
    durations = np.diff(np.append(starts, len(units)))
    return units[starts], durations


class UnitWriter:
    """Use as a context manager; `write(key, units)` per item, `mark_done()` after a successful run."""

    def __init__(self, output: str, output_format: str, dedup: bool, durations: str | None, signature: dict, force: bool, recipe: dict | None = None):
        if output_format not in FORMATS:
            raise UsageError(f"unknown --format {output_format!r}", f"choose one of {', '.join(FORMATS)}")
        if durations and not (dedup and output_format == "text"):
            raise UsageError("--durations goes with --dedup and --format text (jsonl holds durations itself)")
        if output_format == "npy" and output == "-":
            raise UsageError("--format npy writes one file per key: give -o DIR")
        self.format, self.dedup = output_format, dedup
        self.recipe = recipe  # what made the units: OUTPUT.recipe.json beside a file or directory output
        self.targets = []
        if output_format == "npy":
            self.directory = Path(output)
            self.marker = DoneMarker(self.directory, directory=True)
            if not force and self.marker.matches(signature):
                raise AlreadyDone(output)
            claim_output(output, directory=True)
            self.signature = signature
        else:
            self.targets.append(TextOutput(output, signature, force))
            if durations:
                self.targets.append(TextOutput(durations, signature, force))
        self.handles = []

    def __enter__(self):
        if self.format == "npy":
            self.directory.mkdir(parents=True, exist_ok=True)
            self.marker.clear()
        self.handles = [target.__enter__() for target in self.targets]
        return self

    def __exit__(self, *exc_info):
        for target in reversed(self.targets):
            target.__exit__(*exc_info)
        if exc_info[0] is None and self.recipe is not None:
            self._write_recipe()
        return False

    # The engine's sink interface.
    def open(self) -> "UnitWriter":
        return self.__enter__()

    def close(self, completed: bool) -> None:
        if completed:
            self.__exit__(None, None, None)
        else:
            self.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)

    def _write_recipe(self) -> None:
        import json

        from audiotok.io.atomic import atomic_write_text, is_special
        from audiotok.io.recipes import recipe_sidecar

        output = self.directory if self.format == "npy" else self.targets[0].spec
        if output != "-" and not is_special(output):
            atomic_write_text(recipe_sidecar(output), json.dumps(self.recipe, indent=2) + "\n")

    def write(self, key: str, units: np.ndarray) -> None:
        durations = None
        if self.dedup:
            units, durations = run_lengths(units)
        if self.format == "npy":
            from audiotok.io.keys import safe_file_name

            name = safe_file_name(key)
            if name is None:  # one bad key is a skip like any bad item
                raise ItemError(f"key {key!r} cannot name a .npy file (it has a '/' or starts with '.')")
            with atomic_open(self.directory / f"{name}.npy", "wb") as handle:
                np.save(handle, units.astype(np.int32), allow_pickle=False)
            if durations is not None:
                with atomic_open(self.directory / f"{name}.durations.npy", "wb") as handle:
                    np.save(handle, durations.astype(np.int32), allow_pickle=False)
            return
        if self.format == "jsonl":
            fields = {"tokens": units.tolist()}
            if durations is not None:
                fields["durations"] = durations.tolist()
            self._line(0, format_jsonl(key, **fields))
            return
        self._line(0, format_int_vector(key, units))
        if durations is not None and len(self.handles) > 1:
            self._line(1, format_int_vector(key, durations))

    def _line(self, index: int, text: str) -> None:
        handle = self.handles[index]
        handle.write(text + "\n")
        if self.targets[index].spec == "-":
            handle.flush()

    def mark_done(self) -> None:
        if self.format == "npy":
            self.marker.write(self.signature)
        for target in self.targets:
            target.mark_done()
