"""One worker process of tokenize-shards: its shards in, one JSONL file out, messages to the parent.

The worker loads its tokenizer once, reads which samples are finished (from every
output file of the input, whichever run wrote them), then goes through its shards
(tar, or Parquet read by small batches of rows) sample by sample, tokenizing groups of about --batch-seconds of audio and appending
one flushed line a sample. It stops between groups when it gets SIGTERM (how the parent
stops it), when the parent has died, or when memory is still above --memory-limit right
after freeing caches; the lines already written are complete.

Everything the parent shows is sent as a message tuple on the worker's own pipe (never a
queue shared with the other workers: a worker killed mid-write must not take the others'
channel with it):
    ("started", worker, device, already_done)   ("progress", worker, ok, audio_s, compute_s)
    ("failed", worker, name, reason)             ("shard", worker, shard_name)
    ("exit", worker, status, message)            status: finished, stopped, memory, error

Test-only environment hooks (never set them in real runs):
  AUDIOTOK_TEST_WORKER_DEATH=W:N[:every]   worker W, after writing N lines, writes half of
                                the next one and kills itself with SIGKILL, as the OOM killer
                                would; on its first attempt only, or on every one with :every.
"""

import logging
import os
import signal
import tarfile
import time
from dataclasses import dataclass

log = logging.getLogger("audiotok")


@dataclass
class WorkerJob:
    """Everything a worker needs; picklable, sent to the spawned process."""

    index: int
    shards: list[str]
    output: str
    existing_outputs: list[str]  # every `{name}_*.jsonl`, read for finished samples
    spec: str
    device: str  # auto, cpu or cuda
    procs_per_gpu: int
    dtype: str
    threads: int
    batch_seconds: float
    memory_limit: float
    memory_check_every: int
    log_level: int
    parent_pid: int
    attempt: int = 0  # 0 for the first start, then one more at each restart after a death


class _Stop(Exception):
    """Raised inside the worker to leave its loops; carries the exit status."""

    def __init__(self, status: str, message: str = ""):
        super().__init__(message)
        self.status, self.message = status, message


def limit_threads(threads: int) -> None:
    """Before torch/numpy load: each worker gets its share of the cores."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


class Messages:
    """The worker's end of its pipe to the parent; a parent that is gone makes sends no-ops."""

    def __init__(self, connection):
        self.connection = connection
        self.parent_gone = False

    def put(self, message: tuple) -> None:
        if self.parent_gone:
            return
        try:
            self.connection.send(message)
        except OSError:  # BrokenPipeError: nobody reads any more
            self.parent_gone = True

    def close(self) -> None:
        self.connection.close()


def run_worker(job: WorkerJob, connection) -> None:
    """The spawned process's entry point; never raises (the parent learns everything by message)."""
    limit_threads(job.threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    terminated = []
    signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    from audiotok.log import setup_logging

    setup_logging()
    logging.getLogger("audiotok").setLevel(job.log_level)
    messages = Messages(connection)
    try:
        _Worker(job, messages, lambda: bool(terminated) or messages.parent_gone or os.getppid() != job.parent_pid).run()
        messages.put(("exit", job.index, "finished", ""))
    except _Stop as stop:
        messages.put(("exit", job.index, stop.status, stop.message))
    except Exception as err:  # noqa: BLE001 - one worker's failure is reported, never a traceback
        from audiotok.errors import AudiotokError

        message = err.one_line().removeprefix("error: ") if isinstance(err, AudiotokError) else f"{type(err).__name__}: {err}"
        if os.environ.get("AUDIOTOK_DEBUG"):
            log.exception("worker %d", job.index)
        messages.put(("exit", job.index, "error", message))
    # The output file is closed and synced and the exit message is in the pipe: leave at once,
    # without the seconds torch's interpreter teardown takes.
    messages.close()
    os._exit(0)


class _Worker:
    def __init__(self, job: WorkerJob, messages, should_stop):
        self.job, self.messages, self.should_stop = job, messages, should_stop
        self.since_memory_check = 0
        self.die_after_lines = _death_hook(job)
        self.lines_written = 0

    def run(self) -> None:
        import torch

        from audiotok.device import for_worker
        from audiotok.io.jsonl_writer import LineAppender, read_done
        from audiotok.tokenizers import open_tokenizer

        job = self.job
        torch.set_num_threads(job.threads)
        device = for_worker(job.device, job.index, job.procs_per_gpu)
        self.tokenizer = open_tokenizer(job.spec, device, job.dtype)
        if hasattr(self.tokenizer, "batch_seconds"):
            self.tokenizer.batch_seconds = job.batch_seconds
        names = {os.path.basename(s) for s in job.shards}
        self.done = read_done([p for p in map(_as_path, job.existing_outputs)], names)
        self.messages.put(("started", job.index, device, len(self.done)))
        with LineAppender(_as_path(job.output)) as self.out, SkipRecord(_as_path(job.output)) as self.skipped:
            for shard in job.shards:
                self.run_shard(shard)
                self.messages.put(("shard", job.index, os.path.basename(shard)))

    def run_shard(self, shard: str) -> None:
        name = os.path.basename(shard)
        group, seconds = [], 0.0
        for sample in self.samples(shard):
            if self.should_stop():
                raise _Stop("stopped", "interrupted by a signal or by the parent")
            if (name, sample.key) in self.done:
                continue
            self.done.add((name, sample.key))  # a key twice in a shard gets one line
            wave = self.wave_of(sample)
            if wave is None:
                continue
            group.append((sample, wave))
            seconds += len(wave) / self.tokenizer.sample_rate
            if seconds >= self.job.batch_seconds:
                self.tokenize(name, group)
                group, seconds = [], 0.0
        if group:
            self.tokenize(name, group)

    def samples(self, shard: str):
        """The shard's samples (tar) or rows (Parquet); a damaged shard ends it with a failure naming the shard."""
        if shard.endswith(".parquet"):
            yield from self.parquet_rows(shard)
            return
        from audiotok.io.tar_shards import iter_shard

        try:
            yield from iter_shard(shard)
        except (tarfile.TarError, EOFError, OSError) as err:
            self.fail(os.path.basename(shard), None, f"damaged tar shard {shard}, the samples after the damage are lost: {err}")

    def parquet_rows(self, shard: str):
        import pyarrow as pa

        from audiotok.io.parquet_audio import ParquetSpec, iter_rows, shard_layout

        try:
            yield from iter_rows(shard, shard_layout(shard, ParquetSpec(shard)))
        except (pa.ArrowException, OSError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            self.fail(os.path.basename(shard), None, f"damaged Parquet shard {shard}, the rows after the damage are lost: {reason}")

    def wave_of(self, sample):
        """Mono float32 at the tokenizer's rate, or None after reporting why not."""
        from audiotok.errors import ItemError
        from audiotok.io.audio import decode
        from audiotok.io.tar_shards import ShardSample
        from audiotok.tokenizers import at_tokenizer_rate

        where = (os.path.basename(sample.shard), sample.key)
        if sample.problems:
            return self.fail(*where, "; ".join(sample.problems))
        try:
            if isinstance(sample, ShardSample):
                if sample.audio is None:
                    return self.fail(*where, "sample has no audio member")
                if sample.metadata_name is None:
                    return self.fail(*where, "sample has no JSON metadata member")
                audio = decode(sample.audio)
            else:  # a Parquet row: its columns are its metadata
                audio = sample.load()
        except ItemError as err:
            return self.fail(*where, str(err))
        return at_tokenizer_rate(self.tokenizer, audio)

    def tokenize(self, shard_name: str, group: list) -> None:
        from audiotok.io.jsonl_writer import sample_line
        from audiotok.tokenizers import call_tokenizer

        started = time.perf_counter()
        results = call_tokenizer(self.tokenizer, [wave for _, wave in group])
        compute = time.perf_counter() - started
        ok, audio_seconds = 0, 0.0
        for (sample, wave), result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                self.fail(shard_name, sample.key, str(result))
                continue
            meta = sample.metadata
            line = sample_line(sample.key, shard_name, meta.get("language"), meta.get("text"), result)
            if self.lines_written == self.die_after_lines:
                self.out.write(line[: len(line) // 2])  # the torn line a kill mid-write leaves
                os.kill(os.getpid(), signal.SIGKILL)
            self.out.write(line)
            self.lines_written += 1
            ok += 1
            audio_seconds += len(wave) / self.tokenizer.sample_rate
        self.messages.put(("progress", self.job.index, ok, audio_seconds, compute))
        self.since_memory_check += len(group)
        if self.since_memory_check >= self.job.memory_check_every:
            self.since_memory_check = 0
            self.guard_memory()

    def guard_memory(self) -> None:
        from audiotok.engine.memory import free_caches, memory_share, process_rss

        share = memory_share()
        if share <= self.job.memory_limit:
            return
        free_caches()
        freed = memory_share()
        if freed > self.job.memory_limit:  # freeing did not help: stop before the OOM killer acts
            raise _Stop(
                "memory",
                f"memory use {freed:.0%} is above --memory-limit {self.job.memory_limit:g} after freeing caches "
                f"(this worker holds {process_rss() / 2**30:.1f} GiB)",
            )
        log.info(
            "worker %d: memory use %.0f%% was above --memory-limit %g; freed caches, now %.0f%%: going on",
            self.job.index, share * 100, self.job.memory_limit, freed * 100,
        )  # fmt: skip

    def fail(self, shard: str, key: str | None, reason: str) -> None:
        """A sample (key None: the rest of a damaged shard) that cannot be used: recorded, and told to the parent."""
        self.skipped.write(shard, key, reason)
        self.messages.put(("failed", self.job.index, shard if key is None else f"{shard}:{key}", reason))
        self.since_memory_check += 1
        return None


class SkipRecord:
    """`X.skipped.jsonl` beside the output X: a line a sample the worker could not use, so that a
    check tells "skipped, with its reason" from "lost". Created on the first skip only."""

    def __init__(self, output):
        from audiotok.io.jsonl_writer import skipped_path

        self.path, self.appender = skipped_path(output), None

    def write(self, shard: str, key: str | None, reason: str) -> None:
        from audiotok.io.jsonl_writer import LineAppender, skipped_line

        if self.appender is None:
            self.appender = LineAppender(self.path)
        self.appender.write(skipped_line(key, shard, reason))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.appender is not None:
            self.appender.close()


def _death_hook(job: WorkerJob) -> int | None:
    """Lines after which AUDIOTOK_TEST_WORKER_DEATH kills this worker, or None (the normal case)."""
    value = os.environ.get("AUDIOTOK_TEST_WORKER_DEATH")
    if not value:
        return None
    worker, lines, *every = value.split(":")
    if int(worker) != job.index or (job.attempt > 0 and every != ["every"]):
        return None
    return int(lines)


def _as_path(text: str):
    from pathlib import Path

    return Path(text)
