"""The item loop every table command runs on: select a shard, skip finished keys, write each
result to a sink, count failures, commit what succeeded, finish with `done N/M`.

A bad item is a warning naming its key and the reason; the run goes on. At
the end the tally logs `done N/M` and raises when the share of successes is
below --min-success, after the caller has committed what did succeed.
"""

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from audiotok.errors import AudiotokError

log = logging.getLogger("audiotok")
T = TypeVar("T")


class Tally:
    def __init__(self, min_success: float = 0.95, what: str = "items"):
        if not 0.0 <= min_success <= 1.0:
            raise AudiotokError(f"--min-success must be within [0, 1], got {min_success}")
        self.min_success = min_success
        self.what = what
        self.ok = 0
        self.skipped = 0  # finished by an earlier run, counted as ok
        self.failed: list[tuple[str, str]] = []

    @property
    def total(self) -> int:
        return self.ok + len(self.failed)

    def success(self, already_done: bool = False) -> None:
        self.ok += 1
        self.skipped += already_done

    def fail(self, key: str, reason: str) -> None:
        self.failed.append((key, reason))
        log.warning("%s: %s", key, reason)

    def finish(self) -> None:
        """Log `done N/M`; raise when too few items succeeded."""
        extra = f" ({self.skipped} already done)" if self.skipped else ""
        log.info("done %d/%d%s", self.ok, self.total, extra)
        if self.total == 0:
            raise AudiotokError(
                f"no {self.what} in the input", "check the input: a data dir with wav.scp, scp:/ark: specifiers, audio files, a folder of them or tar shards"
            )
        if self.failed:
            names = ", ".join(key for key, _ in self.failed[:5]) + (", ..." if len(self.failed) > 5 else "")
            log.warning("%d of %d %s failed: %s", len(self.failed), self.total, self.what, names)
        if self.ok < self.min_success * self.total:
            raise AudiotokError(
                f"only {self.ok} of {self.total} {self.what} succeeded, below --min-success {self.min_success:g}",
                "see the warnings above for each failed item",
            )


def progress(items: Iterable[T], description: str) -> Iterator[T]:
    """A progress display on stderr when it is a terminal; plain iteration otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description} {task.completed} done"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description)
        for item in items:
            yield item
            bar.advance(task)


ALREADY_DONE = object()  # a result: the item was finished by an earlier run


class Sink(Protocol):
    """Where results go. `open()` before the first write; `close(completed)` commits what was
    written (completed: the input was read to its end, some items may have failed; otherwise
    a resumable sink keeps its partial output for the next run); `mark_done()` after success."""

    def open(self) -> object: ...

    def close(self, completed: bool) -> None: ...

    def mark_done(self) -> None: ...


class NoSink:
    """A run that writes nothing (only its tally)."""

    def open(self) -> "NoSink":
        return self

    def close(self, completed: bool) -> None:
        pass

    def mark_done(self) -> None:
        pass


def run(
    command: str,
    sink: Sink,
    results: Iterable,
    write: Callable,
    *,
    failures: Iterable[tuple[str, str]] = (),
    min_success: float = 0.95,
    already_done: int = 0,
    what: str = "items",
    before_finish: Callable[[], None] | None = None,
) -> Tally:
    """The item loop. Write each `(key, result)` with write(key, result); a result that is an
    exception, or an ItemError raised by write, is a counted failure naming its key. The sink
    is committed whatever happens, a signal included (finished outputs are never lost); then
    the tally logs `done N/M` and raises below --min-success, and the run is marked done.

    A result may be ALREADY_DONE: an item a resumed run skips, counted as a success.
    failures: items the source could not read; already_done: skipped items not in results;
    before_finish: called after the sink is committed, before the tally decides (a summary).
    """
    from audiotok.errors import ItemError

    tally = Tally(min_success, what)
    for _ in range(already_done):
        tally.success(already_done=True)
    sink.open()
    completed = False
    try:
        for key, result in progress(results, command):
            if result is ALREADY_DONE:
                tally.success(already_done=True)
                continue
            if isinstance(result, Exception):
                tally.fail(key, str(result))
                continue
            try:
                write(key, result)
            except ItemError as err:
                tally.fail(key, str(err))
                continue
            tally.success()
        for name, reason in failures:
            tally.fail(name, reason)
        completed = True
    finally:
        sink.close(completed)
    if before_finish is not None:
        before_finish()
    tally.finish()
    sink.mark_done()
    return tally


def audio_items(inputs: list[str], shard: str | None = None) -> tuple[Iterable, list[tuple[str, str]], object]:
    """The items of an audio table in input order, the entries that could not be listed
    (name, reason), and the data directory the table came from (or None). Without --shard the
    items are read as they come (a pipe streams); with it they are listed to cut the part."""
    from audiotok.io.audio_table import open_audio_source

    source, failures = open_audio_source(inputs)
    return (select_shard(list(source), shard) if shard else source), failures, source.data_dir


def parse_part(text: str, option: str = "--shard") -> tuple[int, int]:
    """`J/N` -> (J, N), 1 <= J <= N; a one-line usage error naming `option` otherwise."""
    from audiotok.errors import UsageError

    try:
        part, parts = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected J/N, e.g. 2/8") from None
    if not 1 <= part <= parts:
        raise UsageError(f"{option} {text}: J must be within 1..N")
    return part, parts


def part_bounds(total: int, part: int, parts: int) -> tuple[int, int]:
    """[start, end) of the part-th (1-based) of `parts` contiguous, nearly equal parts of `total` items."""
    return (part - 1) * total // parts, part * total // parts


def select_shard(items: list, shard: str | None) -> list:
    """`J/N` (1-based): the J-th of N contiguous, nearly equal parts."""
    if not shard:
        return items
    start, end = part_bounds(len(items), *parse_part(shard))
    return items[start:end]
