"""One worker process of tokenize-shards: its shards in, one JSONL file out, messages to the parent.

The worker loads its tokenizer once, reads which samples are finished (from every
output file of the input, whichever run wrote them), then goes through its shards
sample by sample, tokenizing groups of about --batch-seconds of audio and appending
one flushed line a sample. It stops between groups when the parent sets the stop
event, when it gets SIGTERM, when the parent has died, or when memory stays above
--memory-limit after freeing caches; the lines already written are complete.

Everything the parent shows is sent as a message tuple on the queue:
    ("started", worker, device, already_done)   ("progress", worker, ok, audio_s, compute_s)
    ("failed", worker, name, reason)             ("shard", worker, shard_name)
    ("exit", worker, status, message)            status: finished, stopped, memory, error

AUDIOTOK_TEST_ITEM_DELAY (seconds, test-only): a sleep before each sample, so tests can
interrupt a run half way. Never set it in real runs.
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


class _Stop(Exception):
    """Raised inside the worker to leave its loops; carries the exit status."""

    def __init__(self, status: str, message: str = ""):
        super().__init__(message)
        self.status, self.message = status, message


def worker_device(requested: str, index: int, procs_per_gpu: int) -> str:
    """GPU (index // procs_per_gpu) % count when there are GPUs, else the CPU."""
    if requested == "cpu":
        return "cpu"
    import torch

    from audiotok.errors import AudiotokError

    count = torch.cuda.device_count()
    if count == 0:
        if requested.startswith("cuda"):
            raise AudiotokError(f"--device {requested}: no CUDA device is available", "use --device cpu or auto")
        return "cpu"
    gpu = (index // procs_per_gpu) % count
    torch.cuda.set_device(gpu)  # so that a plain "cuda" inside a tokenizer means this GPU too
    return f"cuda:{gpu}"


def limit_threads(threads: int) -> None:
    """Before torch/numpy load: each worker gets its share of the cores."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


def run_worker(job: WorkerJob, queue, stop_event) -> None:
    """The spawned process's entry point; never raises (the parent learns everything by message)."""
    limit_threads(job.threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    terminated = []
    signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    from audiotok.log import setup_logging

    setup_logging()
    logging.getLogger("audiotok").setLevel(job.log_level)
    try:
        _Worker(job, queue, lambda: bool(terminated) or stop_event.is_set() or os.getppid() != job.parent_pid).run()
        queue.put(("exit", job.index, "finished", ""))
    except _Stop as stop:
        queue.put(("exit", job.index, stop.status, stop.message))
    except Exception as err:  # noqa: BLE001 - one worker's failure is reported, never a traceback
        from audiotok.errors import AudiotokError

        message = err.one_line().removeprefix("error: ") if isinstance(err, AudiotokError) else f"{type(err).__name__}: {err}"
        if os.environ.get("AUDIOTOK_DEBUG"):
            log.exception("worker %d", job.index)
        queue.put(("exit", job.index, "error", message))
    # The output file is closed and synced and the exit message sent: leave at once, without
    # the seconds torch's interpreter teardown takes, once the queue has flushed to the parent.
    queue.close()
    if os.getppid() != job.parent_pid:
        queue.cancel_join_thread()  # nobody reads the pipe any more: do not wait on it
    queue.join_thread()
    os._exit(0)


class _Worker:
    def __init__(self, job: WorkerJob, queue, should_stop):
        self.job, self.queue, self.should_stop = job, queue, should_stop
        self.since_memory_check = 0
        self.item_delay = float(os.environ.get("AUDIOTOK_TEST_ITEM_DELAY") or 0)

    def run(self) -> None:
        import torch

        from audiotok.pipeline.jsonl_store import LineAppender, read_done
        from audiotok.pipeline.tokenizers import open_tokenizer

        job = self.job
        torch.set_num_threads(job.threads)
        device = worker_device(job.device, job.index, job.procs_per_gpu)
        self.tokenizer = open_tokenizer(job.spec, device, job.dtype)
        if hasattr(self.tokenizer, "batch_seconds"):
            self.tokenizer.batch_seconds = job.batch_seconds
        names = {os.path.basename(s) for s in job.shards}
        self.done = read_done([p for p in map(_as_path, job.existing_outputs)], names)
        self.queue.put(("started", job.index, device, len(self.done)))
        with LineAppender(_as_path(job.output)) as self.out:
            for shard in job.shards:
                self.run_shard(shard)
                self.queue.put(("shard", job.index, os.path.basename(shard)))

    def run_shard(self, shard: str) -> None:
        name = os.path.basename(shard)
        group, seconds = [], 0.0
        for sample in self.samples(shard):
            if self.should_stop():
                raise _Stop("stopped", "interrupted by a signal or by the parent")
            if (name, sample.key) in self.done:
                continue
            self.done.add((name, sample.key))  # a key twice in a shard gets one line
            if self.item_delay:
                time.sleep(self.item_delay)
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
        """The shard's samples; a damaged tar ends it with a failure naming the shard."""
        from audiotok.io.tar_shards import iter_shard

        try:
            yield from iter_shard(shard)
        except (tarfile.TarError, EOFError, OSError) as err:
            self.fail(os.path.basename(shard), f"damaged tar shard {shard}, the samples after the damage are lost: {err}")

    def wave_of(self, sample):
        """Mono float32 at the tokenizer's rate, or None after reporting why not."""
        from audiotok.dsp.resample import resample
        from audiotok.errors import ItemError
        from audiotok.io.audio import decode

        where = f"{os.path.basename(sample.shard)}:{sample.key}"
        if sample.problems:
            return self.fail(where, "; ".join(sample.problems))
        if sample.audio is None:
            return self.fail(where, "sample has no audio member")
        if sample.metadata_name is None:
            return self.fail(where, "sample has no JSON metadata member")
        try:
            audio = decode(sample.audio)
        except ItemError as err:
            return self.fail(where, str(err))
        return resample(audio.samples, audio.rate, self.tokenizer.sample_rate)

    def tokenize(self, shard_name: str, group: list) -> None:
        from audiotok.pipeline.jsonl_store import sample_line

        started = time.perf_counter()
        results = self.call_tokenizer([wave for _, wave in group])
        compute = time.perf_counter() - started
        ok, audio_seconds = 0, 0.0
        for (sample, wave), result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                self.fail(f"{shard_name}:{sample.key}", str(result))
                continue
            meta = sample.metadata
            self.out.write(sample_line(sample.key, shard_name, meta.get("language"), meta.get("text"), result))
            ok += 1
            audio_seconds += len(wave) / self.tokenizer.sample_rate
        self.queue.put(("progress", self.job.index, ok, audio_seconds, compute))
        self.since_memory_check += len(group)
        if self.since_memory_check >= self.job.memory_check_every:
            self.since_memory_check = 0
            self.guard_memory()

    def call_tokenizer(self, waves: list) -> list:
        """Results for every wave; when a group call raises, each wave alone, so only the bad one fails."""
        from audiotok.errors import ItemError
        from audiotok.pipeline.tokenizers import check_results

        fields = self.tokenizer.fields
        try:
            return check_results(self.tokenizer(waves), len(waves), fields)
        except Exception as err:  # noqa: BLE001 - a model error must cost one sample, not the process
            if len(waves) == 1:
                return [err if isinstance(err, ItemError) else ItemError(f"tokenizer failed: {type(err).__name__}: {err}")]
        return [result for wave in waves for result in self.call_tokenizer([wave])]

    def guard_memory(self) -> None:
        from audiotok.pipeline.memory import free_caches, memory_share, process_rss

        share = memory_share()
        if share <= self.job.memory_limit:
            return
        free_caches()
        share = memory_share()
        if share > self.job.memory_limit:
            raise _Stop(
                "memory",
                f"memory use {share:.0%} is above --memory-limit {self.job.memory_limit:g} after freeing caches "
                f"(this worker holds {process_rss() / 2**30:.1f} GiB)",
            )

    def fail(self, name: str, reason: str) -> None:
        self.queue.put(("failed", self.job.index, name, reason))
        self.since_memory_check += 1
        return None


def _as_path(text: str):
    from pathlib import Path

    return Path(text)
