"""The parent of a tokenize-shards run: which shards, which process, and what the user sees.

Shards are the sorted `*.tar` of the input directory, sliced [from_index, to_index).
Shard i of the slice goes to process i % num_proc: a fixed assignment for a given
list and process count. The parent spawns the workers, shows their aggregated counts
(a rich progress bar on a terminal, log lines otherwise, statistics every
--stats-every samples), and ends with `done N/M`. Ctrl-C or SIGTERM sets the stop
event: the workers write the lines in hand, close their files and exit, then the
parent exits 130 or 143. A worker that fails or stops for memory leaves the others
running; the run then fails with a hint to rerun, which skips every finished sample.
"""

import glob
import json
import logging
import os
import queue as queue_module
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from audiotok.errors import AudiotokError, UsageError

log = logging.getLogger("audiotok")

PROGRESS_LOG_SECONDS = 30.0  # a log line at most this often when stderr is not a terminal
STOP_WAIT_SECONDS = 120.0  # how long stopping workers may take to finish the group in hand
RUN_FILE = ".{name}.tokenize-shards.json"  # the tokenizer an output directory was made with


@dataclass
class ShardRunOptions:
    input_dir: str
    output_dir: str
    tokenizer: str
    num_proc: int = 4
    from_index: int = 0
    to_index: int | None = None
    procs_per_gpu: int = 2
    device: str = "auto"
    dtype: str = "float32"
    batch_seconds: float = 60.0
    stats_every: int = 1000
    memory_limit: float = 0.9
    memory_check_every: int = 20
    min_success: float = 0.95


def list_shards(input_dir: str, from_index: int = 0, to_index: int | None = None) -> list[str]:
    """Sorted `*.tar` of input_dir, from_index included, to_index excluded (None: to the end)."""
    if not os.path.isdir(input_dir):
        raise AudiotokError(f"no such input directory: {input_dir}")
    every = sorted(glob.glob(os.path.join(glob.escape(input_dir), "*.tar")))
    if not every:
        raise AudiotokError(f"no *.tar shards in {input_dir}")
    end = len(every) if to_index is None else to_index
    if from_index < 0 or (to_index is not None and to_index < from_index):
        raise UsageError(f"--from-index {from_index} --to-index {to_index}: not a range (0 <= from <= to)")
    chosen = every[from_index:end]
    if not chosen:
        raise UsageError(f"--from-index {from_index} --to-index {to_index} selects no shard of the {len(every)} in {input_dir}")
    return chosen


def assign_shards(shards: list[str], num_proc: int) -> list[list[str]]:
    """Shard i to process i % num_proc; processes that would get nothing are left out."""
    return [shards[p::num_proc] for p in range(min(num_proc, len(shards)))]


def check_run_file(out_dir: Path, name: str, spec: str) -> None:
    """Refuse to add lines of another tokenizer (`kind:absolute path`) to an output directory."""
    path = out_dir / RUN_FILE.format(name=name)
    record = {"tokenizer": spec}
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = None
        if isinstance(previous, dict) and previous.get("tokenizer") != spec:
            raise AudiotokError(
                f"{out_dir} holds {name}_*.jsonl made with --tokenizer {previous.get('tokenizer')}, not {spec}",
                "use another --output-dir, or remove those files to start over",
            )
        return
    from audiotok.io.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(record) + "\n")


@dataclass
class Counts:
    """What the workers report, added up."""

    ok: int = 0
    already_done: int = 0
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    shards_done: int = 0
    failed: list = field(default_factory=list)
    exits: dict = field(default_factory=dict)  # worker -> (status, message)
    started: set = field(default_factory=set)  # workers whose tokenizer loaded
    started_at: float | None = None

    @property
    def processed(self) -> int:
        return self.ok + len(self.failed)


class ProgressView:
    """A rich bar on a terminal; otherwise a log line every PROGRESS_LOG_SECONDS. Stats every N samples."""

    def __init__(self, shard_count: int, stats_every: int):
        self.shard_count, self.stats_every = shard_count, stats_every
        self.next_stats = stats_every
        self.stats_logged_at = 0  # samples counted at the last stats line
        self.last_line = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            columns = (TextColumn("tokenize-shards"), BarColumn(), TextColumn("{task.completed}/{task.total} shards {task.fields[line]}"), TimeElapsedColumn())
            self.bar = Progress(*columns, console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task("shards", total=shard_count, line="")
            self.bar.start()

    def summary(self, counts: Counts) -> str:
        wall = time.monotonic() - counts.started_at if counts.started_at else 0.0
        speed = counts.audio_seconds / wall if wall > 0 else 0.0
        return f"{counts.ok} samples ({len(counts.failed)} failed, {counts.already_done} already done), {speed:.1f} audio s/s"

    def update(self, counts: Counts) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=counts.shards_done, line=self.summary(counts))
        elif time.monotonic() - self.last_line >= PROGRESS_LOG_SECONDS:
            self.last_line = time.monotonic()
            log.info("shards %d/%d: %s", counts.shards_done, self.shard_count, self.summary(counts))
        if self.stats_every and counts.processed >= self.next_stats:
            self.next_stats = (counts.processed // self.stats_every + 1) * self.stats_every
            self.log_stats(counts)

    def log_stats(self, counts: Counts) -> None:
        self.stats_logged_at = counts.processed
        wall = time.monotonic() - counts.started_at if counts.started_at else 0.0
        mean = counts.compute_seconds / counts.ok if counts.ok else 0.0
        log.info(
            "stats: %d samples, %.1f s tokenizing (%.3f s a sample), %.1f s of audio, %.1f audio s/s",
            counts.ok, counts.compute_seconds, mean, counts.audio_seconds, counts.audio_seconds / wall if wall > 0 else 0.0,
        )  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_shards(options: ShardRunOptions) -> None:
    """The whole run; raises AudiotokError when it ends incomplete or below --min-success."""
    import multiprocessing

    from audiotok.pipeline.jsonl_store import output_files, output_path, repair_tail
    from audiotok.pipeline.shard_worker import WorkerJob, run_worker
    from audiotok.pipeline.tokenizers import parse_spec
    from audiotok.runner import Tally

    if not 0.0 < options.memory_limit <= 1.0:
        raise UsageError(f"--memory-limit {options.memory_limit:g}: a share of memory within (0, 1]")
    tally = Tally(options.min_success, what="samples")
    kind, target = parse_spec(options.tokenizer)  # an unknown or missing tokenizer fails here, before any process starts
    shards = list_shards(options.input_dir, options.from_index, options.to_index)
    name = Path(os.path.abspath(options.input_dir)).name
    out_dir = Path(options.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_run_file(out_dir, name, f"{kind}:{os.path.abspath(target)}")
    existing = output_files(out_dir, name)
    for path in existing:
        dropped = repair_tail(path)
        if dropped:
            log.warning("%s: dropped a torn last line (%d bytes) left by a killed run; its sample is done again", path, dropped)
    assignment = assign_shards(shards, options.num_proc)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // len(assignment))
    outputs = [output_path(out_dir, name, p) for p in range(len(assignment))]
    known_outputs = sorted({str(p) for p in existing} | {str(p) for p in outputs})
    log.info(
        "%d shards of %s (from %d) in %d processes, %d threads each -> %s/%s_*.jsonl",
        len(shards), options.input_dir, options.from_index, len(assignment), threads, out_dir, name,
    )  # fmt: skip

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    stop = context.Event()
    level = logging.getLogger("audiotok").getEffectiveLevel()
    workers = []
    counts = Counts()
    view = ProgressView(len(shards), options.stats_every)
    try:
        for index, assigned in enumerate(assignment):
            job = WorkerJob(
                index, assigned, str(outputs[index]), known_outputs, options.tokenizer, options.device, options.procs_per_gpu,
                options.dtype, threads, options.batch_seconds, options.memory_limit, options.memory_check_every, level, os.getpid(),
            )  # fmt: skip
            process = context.Process(target=run_worker, args=(job, messages, stop), name=f"tokenize-shards-{index}", daemon=True)
            _start_ignoring_ctrl_c(process)
            workers.append(process)
        _follow(workers, messages, counts, view)
    except BaseException:
        # Ctrl-C or SIGTERM (raised as KeyboardInterrupt by the entry point): let the workers close cleanly.
        view.close()
        log.warning("stopping: waiting for %d worker(s) to write the samples in hand", sum(p.is_alive() for p in workers))
        stop.set()
        _drain_until_exit(workers, messages, counts)
        raise
    view.close()
    if counts.processed != view.stats_logged_at:
        view.log_stats(counts)
    _finish(counts, tally)


def _start_ignoring_ctrl_c(process) -> None:
    """Start a worker with SIGINT ignored from its first instruction (an ignored signal stays
    ignored across exec): Ctrl-C reaches the whole process group, and only the parent decides."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        process.start()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)


def _handle(message, counts: Counts) -> None:
    kind, worker, *rest = message
    if kind == "started":
        device, already_done = rest
        counts.started_at = counts.started_at or time.monotonic()
        counts.started.add(worker)
        counts.already_done += already_done
        log.debug("worker %d on %s; %d of its samples already done", worker, device, already_done)
    elif kind == "progress":
        ok, audio, compute = rest
        counts.ok += ok
        counts.audio_seconds += audio
        counts.compute_seconds += compute
    elif kind == "failed":
        counts.failed.append(tuple(rest))
        log.warning("%s: %s", *rest)
    elif kind == "shard":
        counts.shards_done += 1
    elif kind == "exit":
        counts.exits[worker] = tuple(rest)


def _follow(workers, messages, counts: Counts, view: ProgressView) -> None:
    """Handle messages until every worker has exited; a worker that vanishes is an error of its own."""
    while True:
        try:
            message = messages.get(timeout=0.5)
        except queue_module.Empty:
            for index, process in enumerate(workers):
                if not process.is_alive() and index not in counts.exits:
                    _collect_late(messages, counts)  # its exit message may still be in the pipe
                    if index not in counts.exits:
                        counts.exits[index] = ("error", f"the process died (exit code {process.exitcode})")
            if all(not p.is_alive() for p in workers) and len(counts.exits) == len(workers):
                return
            view.update(counts)
            continue
        _handle(message, counts)
        if message[0] == "exit" and message[2] in ("error", "memory"):
            log.error("worker %d stopped: %s", message[1], message[3])
        view.update(counts)
        if len(counts.exits) == len(workers):
            for process in workers:
                process.join()
            return


def _collect_late(messages, counts: Counts) -> None:
    try:
        while True:
            _handle(messages.get(timeout=0.2), counts)
    except queue_module.Empty:
        pass


def _drain_until_exit(workers, messages, counts: Counts) -> None:
    """Keep reading messages (a worker cannot exit with a full pipe) until all are gone; kill stragglers."""
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    try:
        while any(p.is_alive() for p in workers) and time.monotonic() < deadline:
            try:
                _handle(messages.get(timeout=0.2), counts)
            except queue_module.Empty:
                pass
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting
    for process in workers:
        if process.is_alive():
            log.warning("worker %s did not stop in time: killed (a torn line, if any, is dropped on the next run)", process.name)
            process.kill()
        process.join()


def _finish(counts: Counts, tally) -> None:
    tally.ok, tally.skipped = counts.ok + counts.already_done, counts.already_done
    tally.failed = list(counts.failed)  # already warned about one by one
    incomplete = {w: status for w, status in counts.exits.items() if status[0] != "finished"}
    if not incomplete:
        tally.finish()
        return
    log.info("done %d/%d (%d already done), run incomplete", tally.ok, tally.total, tally.skipped)
    worker, (status, message) = sorted(incomplete.items())[0]
    if not counts.started:  # no worker could load the tokenizer: rerunning will not help
        raise AudiotokError(f"cannot start the tokenizer: {message}")
    more = f" (and {len(incomplete) - 1} other worker(s))" if len(incomplete) > 1 else ""
    raise AudiotokError(f"worker {worker} stopped: {message}{more}", "run the same command again: finished samples are skipped")
