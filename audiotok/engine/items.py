"""The item loop every table command runs on: select a shard, skip finished keys, write each
result to a sink, count failures, commit what succeeded, finish with `done N/M`.

A bad item is a warning naming its key and the reason; the run goes on. At
the end the tally logs `done N/M` and raises when the share of successes is
below --min-success, after the caller has committed what did succeed.
"""

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

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
            raise AudiotokError(f"no {self.what} in the input")
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


def run(command: str, sink, results: Iterable, source_failures: list, tally: Tally, write) -> None:
    """Write each `(key, result)` with write(key, result); a result that is an exception, or
    an ItemError from write, is a counted failure. The sink is committed whatever happens
    (finished outputs are never lost), then the tally decides and the run is marked done."""
    from audiotok.errors import ItemError

    completed = False
    try:
        for key, result in progress(results, command):
            if isinstance(result, Exception):
                tally.fail(key, str(result))
                continue
            try:
                write(key, result)
            except ItemError as err:
                tally.fail(key, str(err))
                continue
            tally.success()
        for name, reason in source_failures:
            tally.fail(name, reason)
        completed = True
    finally:
        sink.close(completed)
    tally.finish()
    sink.mark_done()


def select_shard(items: list, shard: str | None) -> list:
    """`J/N` (1-based): the J-th of N contiguous, nearly equal parts."""
    if not shard:
        return items
    from audiotok.errors import UsageError

    try:
        part, parts = (int(x) for x in shard.split("/"))
    except ValueError:
        raise UsageError(f"--shard {shard!r}: expected J/N, e.g. 2/8") from None
    if not 1 <= part <= parts:
        raise UsageError(f"--shard {shard}: J must be within 1..N")
    total = len(items)
    return items[(part - 1) * total // parts : part * total // parts]
