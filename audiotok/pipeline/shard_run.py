"""The parent of a tokenize-shards run: which shards, which process, and what the user sees.

Shards are the sorted `*.tar` of the input directory (when it has none, its sorted
`*.parquet`: Parquet shards with the audio inside, read by audiotok.io.parquet_audio
with its default columns), sliced [from_index, to_index).
A job array's task J of N (--task J/N) keeps only the J-th of N contiguous ranges of
the slice and names its files {name}_{J}of{N}_{process}.jsonl, so tasks never write one file;
it reads the finished samples of every task's files but repairs only its own.
Shard i of the task's shards goes to process i % num_proc: a fixed assignment for a given
list and process count. Process p runs on visible GPU (p // procs_per_gpu) % visible GPUs
(audiotok.device.for_worker): indices are CUDA's, relative to CUDA_VISIBLE_DEVICES, which
is how Slurm's --gres hands a task its GPUs. The parent spawns the workers, reads each one's own pipe,
shows their aggregated counts (a rich progress bar on a terminal, log lines
otherwise, statistics every --stats-every samples), and ends with `done N/M`.
Ctrl-C or SIGTERM to the parent: it sends SIGTERM to the workers, which write the
lines in hand, close their files and exit; the parent then exits 130 or 143.

A worker that dies without saying why (SIGKILL from the OOM killer, a crash) is
started again for its unfinished shards, at most --max-restarts times: its torn last
line is cut and the new process skips what the dead one wrote, so every sample still
ends on one line. A worker that reports an error or stops for memory is not restarted
(it would fail the same way); it leaves the others running, and the run then fails
with a hint to rerun, which skips every finished sample.
"""

import glob
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from audiotok.errors import AudiotokError, UsageError

log = logging.getLogger("audiotok")

PROGRESS_LOG_SECONDS = 30.0  # a log line at most this often when stderr is not a terminal
STOP_WAIT_SECONDS = 120.0  # how long stopping workers may take to finish the group in hand
RUN_FILE = ".{name}.tokenize-shards.json"  # how the {name}_*.jsonl files of an output directory are made


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
    max_restarts: int = 2
    task: tuple[int, int] | None = None  # (J, N): only the J-th of N contiguous ranges of the selected shards


def list_shards(input_dir: str, from_index: int = 0, to_index: int | None = None) -> list[str]:
    """Sorted `*.tar` of input_dir (or, when it has none, `*.parquet`), from_index included, to_index excluded (None: to the end)."""
    if not os.path.isdir(input_dir):
        raise AudiotokError(f"no such input directory: {input_dir}", "--input-dir is a directory of WebDataset .tar shards or Parquet shards")
    every = sorted(glob.glob(os.path.join(glob.escape(input_dir), "*.tar"))) or sorted(glob.glob(os.path.join(glob.escape(input_dir), "*.parquet")))
    if not every:
        raise AudiotokError(
            f"no *.tar or *.parquet shards in {input_dir}",
            "--input-dir is a directory of WebDataset .tar shards (NAME.flac + NAME.json members) or of Parquet shards with an audio column",
        )
    end = len(every) if to_index is None else to_index
    if from_index < 0 or (to_index is not None and to_index < from_index):
        raise UsageError(f"--from-index {from_index} --to-index {to_index}: not a range (0 <= from <= to)")
    chosen = every[from_index:end]
    if not chosen:
        raise UsageError(f"--from-index {from_index} --to-index {to_index} selects no shard of the {len(every)} in {input_dir}")
    return chosen


def task_shards(shards: list[str], task: tuple[int, int] | None) -> list[str]:
    """Task J of N of a job array: the J-th of N contiguous, nearly equal ranges of `shards` (all without a task)."""
    if task is None:
        return shards
    from audiotok.engine.items import part_bounds

    start, end = part_bounds(len(shards), *task)
    return shards[start:end]


def check_parquet_shards(shards: list[str]) -> None:
    """A Parquet shard that is not Parquet or has no audio column stops the run before any process starts (footers only)."""
    from audiotok.io.parquet_audio import ParquetSpec, shard_layout

    for shard in shards:
        if shard.endswith(".parquet"):
            shard_layout(shard, ParquetSpec(shard))


def count_shard_samples(shard: str) -> int:
    """Samples in a shard without decoding any: tar member headers, or a Parquet footer."""
    if shard.endswith(".parquet"):
        from audiotok.io.parquet_audio import row_count

        return row_count(shard)
    from audiotok.io.tar_shards import count_samples

    return count_samples(shard)


def assign_shards(shards: list[str], num_proc: int) -> list[list[str]]:
    """Shard i to process i % num_proc; processes that would get nothing are left out."""
    return [shards[p::num_proc] for p in range(min(num_proc, len(shards)))]


def model_dir_spec(model_dir: str) -> str:
    """The --tokenizer SPEC that `--model-dir` (the tar token extraction script's option) stands for.

    That script's model directory is Spark-TTS's, so BiCodec unless the path is plainly
    something else: a units bundle directory, or a file (an S3 .onnx or weights file).
    """
    if os.path.isfile(os.path.join(model_dir, "config.json")) and os.path.isfile(os.path.join(model_dir, "centroids.npy")):
        return f"bundle:{model_dir}"
    if os.path.isfile(model_dir):
        return f"s3:{model_dir}"
    return f"bicodec:{model_dir}"


@dataclass
class Counts:
    """What the workers report, added up."""

    ok: int = 0
    already_done: int = 0
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    shards_done: int = 0
    failed: list = field(default_factory=list)
    failed_names: set = field(default_factory=set)  # a restarted worker may report a failure again
    exits: dict = field(default_factory=dict)  # worker -> (status, message)
    started: set = field(default_factory=set)  # workers whose tokenizer loaded
    started_at: float | None = None

    @property
    def processed(self) -> int:
        return self.ok + len(self.failed)


class ProgressView:
    """A rich bar on a terminal; otherwise a log line every PROGRESS_LOG_SECONDS. Stats every N samples."""

    def __init__(self, shard_count: int, stats_every: int, clock=time.monotonic):
        self.shard_count, self.stats_every, self.clock = shard_count, stats_every, clock
        self.next_stats = stats_every
        self.stats_logged_at = 0  # samples counted at the last stats line
        self.last_line = clock()
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            columns = (TextColumn("tokenize-shards"), BarColumn(), TextColumn("{task.completed}/{task.total} shards {task.fields[line]}"), TimeElapsedColumn())
            self.bar = Progress(*columns, console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task("shards", total=shard_count, line="")
            self.bar.start()

    def summary(self, counts: Counts) -> str:
        wall = self.clock() - counts.started_at if counts.started_at else 0.0
        speed = counts.audio_seconds / wall if wall > 0 else 0.0
        return f"{counts.ok} samples ({len(counts.failed)} failed, {counts.already_done} already done), {speed:.1f} audio s/s"

    def update(self, counts: Counts) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=counts.shards_done, line=self.summary(counts))
        elif self.clock() - self.last_line >= PROGRESS_LOG_SECONDS:
            self.last_line = self.clock()
            log.info("shards %d/%d: %s", counts.shards_done, self.shard_count, self.summary(counts))
        if self.stats_every and counts.processed >= self.next_stats:
            self.next_stats = (counts.processed // self.stats_every + 1) * self.stats_every
            self.log_stats(counts)

    def log_stats(self, counts: Counts) -> None:
        self.stats_logged_at = counts.processed
        wall = self.clock() - counts.started_at if counts.started_at else 0.0
        mean = counts.compute_seconds / counts.ok if counts.ok else 0.0
        log.info(
            "stats: %d samples (%d failed), %.1f s tokenizing (%.3f s a sample), %.1f s of audio, %.1f audio s/s",
            counts.ok, len(counts.failed), counts.compute_seconds, mean, counts.audio_seconds, counts.audio_seconds / wall if wall > 0 else 0.0,
        )  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_shards(options: ShardRunOptions) -> None:
    """The whole run; raises AudiotokError when it ends incomplete or below --min-success."""
    import multiprocessing

    from audiotok.engine.items import Tally
    from audiotok.io.jsonl_writer import output_files, output_path, repair_tail, run_stem, skipped_path, token_files
    from audiotok.io.locks import claim_output
    from audiotok.io.markers import AddingMarker
    from audiotok.io.outputs import make_signature
    from audiotok.pipeline.shard_worker import WorkerJob
    from audiotok.tokenizers import fingerprint, parse_spec

    if not 0.0 < options.memory_limit <= 1.0:
        raise UsageError(f"--memory-limit {options.memory_limit:g}: a share of memory within (0, 1]")
    tally = Tally(options.min_success, what="samples")
    kind, target = parse_spec(options.tokenizer)  # an unknown or missing tokenizer fails here, before any process starts
    selected = list_shards(options.input_dir, options.from_index, options.to_index)
    shards = task_shards(selected, options.task)
    if not shards:  # more tasks than shards: this one has nothing to do, which is not a failure
        log.info("task %d/%d: no shard (%d shards selected for %d tasks); done 0/0", *options.task, len(selected), options.task[1])
        return
    check_parquet_shards(shards)
    name = Path(os.path.abspath(options.input_dir)).name
    stem = run_stem(name, options.task)  # a task writes only files of its own: {name}_{J}of{N}_{process}.jsonl
    out_dir = Path(options.output_dir)
    claim_output(out_dir / stem)  # one run at a time on these {stem}_*.jsonl files
    tokenizer = f"{kind}:{os.path.abspath(target)}"
    # Lines made another way (another tokenizer, its files changed at the same path, another dtype) never join these files.
    signature = make_signature("tokenize-shards", tokenizer=tokenizer, tokenizer_content=fingerprint(options.tokenizer), dtype=options.dtype)
    AddingMarker(out_dir / RUN_FILE.format(name=name), out_dir / f"{name}_*.jsonl").check(
        signature, f"use another --output-dir, or remove {out_dir}/{name}_*.jsonl to start over"
    )
    # Only this run's own files are repaired: other tasks of the array may be appending to theirs.
    for path in output_files(out_dir, stem):
        dropped = repair_tail(path)
        if dropped:
            log.warning("%s: dropped a torn last line (%d bytes) left by a killed run; its sample is done again", path, dropped)
        if skipped_path(path).exists():
            repair_tail(skipped_path(path))
    existing = token_files(out_dir, name)  # finished samples are read from every run's and task's files
    assignment = assign_shards(shards, options.num_proc)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // len(assignment))
    outputs = [output_path(out_dir, stem, p) for p in range(len(assignment))]
    known_outputs = sorted({str(p) for p in existing} | {str(p) for p in outputs})
    task = f"task {options.task[0]}/{options.task[1]}: " if options.task else ""
    log.info(
        "%s%d shards of %s (from %d) in %d processes, %d threads each -> %s/%s_*.jsonl",
        task, len(shards), options.input_dir, options.from_index + selected.index(shards[0]), len(assignment), threads, out_dir, stem,
    )  # fmt: skip

    level = logging.getLogger("audiotok").getEffectiveLevel()

    def job_for(slot: "WorkerSlot") -> WorkerJob:
        return WorkerJob(
            index=slot.index, shards=slot.unfinished(), output=str(slot.output), existing_outputs=known_outputs,
            spec=options.tokenizer, device=options.device, procs_per_gpu=options.procs_per_gpu, dtype=options.dtype,
            threads=threads, batch_seconds=options.batch_seconds, memory_limit=options.memory_limit,
            memory_check_every=options.memory_check_every, log_level=level, parent_pid=os.getpid(), attempt=slot.attempt,
        )  # fmt: skip

    slots = [WorkerSlot(index, assigned, outputs[index], _size(outputs[index])) for index, assigned in enumerate(assignment)]
    counts = Counts()
    view = ProgressView(len(shards), options.stats_every)
    supervisor = Supervisor(multiprocessing.get_context("spawn"), job_for, counts, view, options.max_restarts)
    try:
        for slot in slots:
            supervisor.start(slot)
        supervisor.follow(slots)
    except BaseException:
        # Ctrl-C or SIGTERM (raised as KeyboardInterrupt by the entry point): let the workers close cleanly.
        view.close()
        supervisor.stop(slots)
        raise
    view.close()
    if counts.processed != view.stats_logged_at:
        view.log_stats(counts)
    _finish(counts, tally, shards)


@dataclass
class WorkerSlot:
    """One worker index through its restarts: its shards, its output file, its process now."""

    index: int
    shards: list[str]
    output: Path
    start_size: int  # bytes its output had before this run: the lines after them are this run's
    attempt: int = 0
    process: object = None  # the running process, None once it has ended for good
    connection: object = None  # the parent's end of the process's pipe, None after end of file
    finished_shards: set = field(default_factory=set)
    exit: tuple | None = None  # (status, message) the process sent before exiting
    ok: int = 0  # lines this run wrote to output (reported, then checked against the file after a death)
    started: bool = False  # some attempt has loaded the tokenizer and counted the samples already done

    def unfinished(self) -> list[str]:
        return [s for s in self.shards if os.path.basename(s) not in self.finished_shards]


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class Supervisor:
    """Starts the workers, reads their pipes, restarts the ones that die, stops them on request."""

    def __init__(self, context, job_for, counts: Counts, view: ProgressView, max_restarts: int):
        self.context, self.job_for, self.counts, self.view = context, job_for, counts, view
        self.max_restarts = max_restarts
        self.stopping = False

    def start(self, slot: WorkerSlot) -> None:
        from audiotok.pipeline.shard_worker import run_worker

        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(target=run_worker, args=(self.job_for(slot), writer), name=f"tokenize-shards-{slot.index}", daemon=True)
        _start_ignoring_ctrl_c(process)
        writer.close()  # the child holds the only write end: its exit is the pipe's end of file
        slot.process, slot.connection, slot.exit = process, reader, None

    def follow(self, slots: list[WorkerSlot], deadline: float | None = None) -> None:
        """Handle messages and deaths until every worker has ended for good (or the deadline)."""
        from multiprocessing.connection import wait

        while True:
            running = [slot for slot in slots if slot.process is not None]
            if not running or (deadline is not None and time.monotonic() > deadline):
                return
            waiting = [slot.connection for slot in running if slot.connection is not None]
            ready = set(wait(waiting + [slot.process.sentinel for slot in running], timeout=0.5))
            for slot in running:
                if slot.connection in ready:
                    self.read(slot)
                if slot.process.sentinel in ready:
                    self.read(slot)  # what it sent before dying is still in the pipe
                    self.ended(slot)
            self.view.update(self.counts)

    def read(self, slot: WorkerSlot) -> None:
        """Every whole message waiting in the slot's pipe; a message cut by a kill is end of file."""
        import pickle

        while slot.connection is not None and slot.connection.poll():
            try:
                message = slot.connection.recv()
            except (EOFError, OSError, pickle.UnpicklingError):
                slot.connection.close()
                slot.connection = None
                return
            self.handle(slot, message)

    def handle(self, slot: WorkerSlot, message: tuple) -> None:
        counts = self.counts
        kind, worker, *rest = message
        if kind == "started":
            device, already_done = rest
            counts.started_at = counts.started_at or self.view.clock()
            counts.started.add(worker)
            if not slot.started:  # a restart's count also holds what the earlier attempts wrote
                slot.started = True
                counts.already_done += already_done
            log.debug("worker %d on %s (attempt %d); %d of its samples already done", worker, device, slot.attempt + 1, already_done)
        elif kind == "progress":
            ok, audio, compute = rest
            slot.ok += ok
            counts.ok += ok
            counts.audio_seconds += audio
            counts.compute_seconds += compute
        elif kind == "failed":
            name, reason = rest
            if name not in counts.failed_names:
                counts.failed_names.add(name)
                counts.failed.append((name, reason))
                log.warning("%s: %s", name, reason)
        elif kind == "shard":
            slot.finished_shards.add(rest[0])
            counts.shards_done += 1
        elif kind == "exit":
            slot.exit = tuple(rest)

    def ended(self, slot: WorkerSlot) -> None:
        """The slot's process has exited: record why, or start it again after a death."""
        slot.process.join()
        if slot.connection is not None:
            slot.connection.close()
            slot.connection = None
        process, slot.process = slot.process, None
        if slot.exit is not None:
            status, message = slot.exit
            if status in ("error", "memory"):
                log.error("worker %d stopped: %s", slot.index, message)
            self.counts.exits[slot.index] = slot.exit
            return
        cause = _death_cause(process.exitcode)
        unfinished = slot.unfinished()
        restart = unfinished and not self.stopping and slot.attempt < self.max_restarts
        if restart:
            log.warning(
                "worker %d died (%s); starting it again for its %d unfinished shard(s) (restart %d of --max-restarts %d)",
                slot.index, cause, len(unfinished), slot.attempt + 1, self.max_restarts,
            )  # fmt: skip
        self._count_unreported_lines(slot)
        if not unfinished:
            log.warning("worker %d died (%s) after finishing its shards", slot.index, cause)
            self.counts.exits[slot.index] = ("finished", "")
        elif restart:
            slot.attempt += 1
            self.start(slot)
        elif self.stopping:
            self.counts.exits[slot.index] = ("error", f"the process died ({cause})")
        else:
            names = [os.path.basename(s) for s in unfinished]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            times = "once" if slot.attempt == 0 else f"{slot.attempt + 1} times"
            self.counts.exits[slot.index] = ("died", f"died {times} (the last: {cause}) with shard(s) {shown} unfinished")

    def _count_unreported_lines(self, slot: WorkerSlot) -> None:
        """Cut the dead worker's torn line; count the lines it wrote but died before reporting."""
        from audiotok.io.jsonl_writer import repair_tail, skipped_path

        if skipped_path(slot.output).exists():
            repair_tail(skipped_path(slot.output))
        if not slot.output.exists():
            return
        dropped = repair_tail(slot.output)
        if dropped:
            log.info("%s: dropped the torn last line (%d bytes) of the dead worker; its sample is done again", slot.output, dropped)
        with open(slot.output, "rb") as handle:
            handle.seek(slot.start_size)
            written = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        if written > slot.ok:
            self.counts.ok += written - slot.ok
            slot.ok = written

    def stop(self, slots: list[WorkerSlot]) -> None:
        """SIGTERM to every worker; wait (reading their pipes) until they have written the samples in hand."""
        self.stopping = True
        running = [slot for slot in slots if slot.process is not None]
        log.warning("stopping: waiting for %d worker(s) to write the samples in hand", len(running))
        for slot in running:
            slot.process.terminate()
        try:
            self.follow(slots, deadline=time.monotonic() + STOP_WAIT_SECONDS)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting
        for slot in slots:
            if slot.process is not None:
                log.warning("worker %d did not stop in time: killed (a torn line, if any, is dropped on the next run)", slot.index)
                slot.process.kill()
                slot.process.join()
                slot.process = None


def _death_cause(exitcode: int | None) -> str:
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


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


def _finish(counts: Counts, tally, shards: list[str]) -> None:
    tally.ok, tally.skipped = counts.ok + counts.already_done, counts.already_done
    tally.failed = list(counts.failed)  # already warned about one by one
    incomplete = {w: status for w, status in counts.exits.items() if status[0] != "finished"}
    if not incomplete:
        tally.finish()
        return
    # Counted against the input, not against what the workers reached before they stopped.
    total = max(sum(count_shard_samples(shard) for shard in shards), tally.total)
    log.info("done %d/%d (%d already done, %d not processed), run incomplete", tally.ok, total, tally.skipped, total - tally.total)
    worker, (status, message) = sorted(incomplete.items())[0]
    what = f"worker {worker} {message}" if status == "died" else f"worker {worker} stopped: {message}"
    if not counts.started:  # no worker could load the tokenizer: rerunning will not help
        raise AudiotokError(f"cannot start the tokenizer: {what if status == 'died' else message}")
    more = f" (and {len(incomplete) - 1} other worker(s))" if len(incomplete) > 1 else ""
    hint = "run the same command again: finished samples are skipped"
    if "SIGKILL" in message:
        hint += "; if the OOM killer sent it, lower --num-proc or --batch-seconds"
    raise AudiotokError(f"{what}{more}", hint)
