"""What every command shares: option declarations (one help text each) and the audio-table loops."""

import logging
from collections.abc import Callable
from typing import Annotated, Literal

import typer

log = logging.getLogger("audiotok")


def choice(*names: str):
    """A typed choice for an annotation: --help lists the names, anything else is a usage error (exit 2)."""
    return Literal[names]


def _device(value: str) -> str:
    from audiotok.device import check
    from audiotok.errors import AudiotokError

    try:
        return check(value)
    except AudiotokError as err:
        raise typer.BadParameter(f"{err.message} (choose {err.hint})") from None


DTYPES = ("float32", "bfloat16", "float16")
UNIT_FORMATS = ("text", "jsonl", "npy")

# Options repeated across commands: declared once, one help text each.
# The training commands' help on DDP, one paragraph in each (their docstrings' "{ddp}").
DDP_HELP = (
    "Under torchrun every process takes its share of each global batch (DDP; gloo on CPU, "
    "NCCL on GPU; optim.batch_size a multiple of the process count) and rank 0 writes "
    "OUTPUT_DIR, which on several nodes must be one shared directory. On N nodes, start "
    "torchrun once on each (--nnodes N); under Slurm, srun does that (MASTER: the first "
    "node of the allocation)."
)

Device = Annotated[str, typer.Option("--device", callback=_device, help="Where models run: auto, cpu, cuda or cuda:N (auto: a GPU when there is one).")]
Dtype = Annotated[
    choice(*DTYPES),
    typer.Option(
        "--dtype",
        help="Model precision; bfloat16 runs faster on GPUs and on CPUs with AVX-512 bf16 (HuBERT-base: ~1.9x); units may differ from float32's at near-ties.",
    ),
]
BatchSeconds = Annotated[
    float, typer.Option("--batch-seconds", min=0.0, help="Padded audio seconds in one model batch, longest items first (0: one at a time).")
]
Window = Annotated[
    float, typer.Option("--window", min=1.0, help="Encoders: the longest piece in seconds; longer recordings are cut into overlapping windows and stitched.")
]
Overlap = Annotated[float, typer.Option("--overlap", min=0.0, help="Seconds shared by consecutive windows.")]
Shard = Annotated[str | None, typer.Option("--shard", metavar="J/N", help="Only the J-th of N contiguous, nearly equal parts of the input (1-based).")]
UnitFormat = Annotated[choice(*UNIT_FORMATS), typer.Option("--format", help="text (key u1 u2 ...), jsonl, or npy (one KEY.npy per key in -o DIR).")]
Dedup = Annotated[bool, typer.Option("--dedup", help="Collapse runs of a unit; keep run lengths as durations.")]
MinSuccess = Annotated[
    float,
    typer.Option("--min-success", min=0.0, max=1.0, help="Fail (exit 1) when fewer than this share of items succeed."),
]
Force = Annotated[bool, typer.Option("--force", help="Redo outputs that a run with the same arguments finished.")]
Channel = Annotated[
    int | None,
    typer.Option("--channel", min=0, help="Take this 0-based channel instead of mixing all channels to mono."),
]
Inputs = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUT",
        help="Audio table: data dir, scp:FILE, ark:FILE, ark:- (or -), tar:SHARDS, parquet:SHARDS, lhotse:MANIFEST, jsonl:FILE, or audio files.",
        show_default=False,
    ),
]
AudioOutput = Annotated[
    str,
    typer.Argument(metavar="OUTPUT", help="ark:-, ark:FILE, ark,scp:FILE.ark,FILE.scp, or a directory (audio files + wav.scp).", show_default=False),
]
AudioFormat = Annotated[str, typer.Option("--audio-format", help="File format in a directory output: flac, wav or ogg.")]
Subtype = Annotated[str, typer.Option("--subtype", help="Sample encoding written: PCM_16, PCM_24, PCM_32 or FLOAT (wav only).")]


def map_audio(
    command: str,
    inputs: list[str],
    output: str,
    transform: Callable,
    signature_args: dict,
    *,
    channel: int | None,
    min_success: float,
    force: bool,
    audio_format: str,
    subtype: str,
    stream_transform: Callable | None = None,
) -> None:
    """Run `transform(audio) -> (samples, rate)` on every item of `inputs`, writing audio to `output`.

    stream_transform(stream) -> a stream (rate, blocks()) or None: the same for a long
    recording read block by block (audiotok.io.audio.AudioStream), written block by block;
    None: that one is loaded whole. Failed items are counted; finished files survive any
    failure; a re-run with the same arguments skips finished work.
    """
    from audiotok.engine import items as engine
    from audiotok.errors import ItemError
    from audiotok.io.outputs import check_not_same, make_signature, open_audio_sink

    check_not_same(inputs, output)
    items, source_failures, data_dir = engine.audio_items(inputs)
    signature = make_signature(command, inputs=inputs, channel=channel, subtype=subtype, audio_format=audio_format, **signature_args)
    sink = open_audio_sink(output, signature, force, audio_format, subtype, data_dir)

    def results():
        for item in items:
            if sink.already_done(item.key):
                yield item.key, engine.ALREADY_DONE
                continue
            try:
                stream = item.stream(channel) if stream_transform is not None and hasattr(item, "stream") else None
                streamed = None if stream is None else stream_transform(stream)
                yield item.key, streamed if streamed is not None else transform(item.load(channel))
            except ItemError as err:
                yield item.key, err

    def write(key, out):
        if isinstance(out, tuple):
            sink.write(key, *out)
        else:
            sink.write_blocks(key, out.blocks(), out.rate)

    engine.run(command, sink, results(), write, failures=source_failures, min_success=min_success)


TextOutputOption = Annotated[str, typer.Option("--output", "-o", help="Write the table here (a file or ark,t:FILE) instead of stdout.")]


def write_results(target, results: dict, output_format: str) -> None:
    """A flat dict of statistics as `name value` lines (text) or one JSON object, then the done marker."""
    import json

    with target as handle:
        if output_format == "json":
            handle.write(json.dumps(results) + "\n")
        else:
            width = max(map(len, results)) + 2
            handle.writelines(f"{name:<{width}}{_text(value)}\n" for name, value in results.items())
    target.mark_done()


def _text(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def table_report(
    command: str, inputs: list[str], output: str, describe: Callable, signature_args: dict, *, min_success: float, force: bool, footer: Callable | None = None
) -> None:
    """Write one text line per item, `describe(item) -> str`, to `output` (stdout or a file)."""
    from audiotok.engine import items as engine
    from audiotok.errors import ItemError
    from audiotok.io.outputs import TextOutput, make_signature

    items, source_failures, _ = engine.audio_items(inputs)
    target = TextOutput(output, make_signature(command, inputs=inputs, **signature_args), force)

    def results():
        for item in items:
            try:
                yield item.key, describe(item)
            except ItemError as err:
                yield item.key, err

    engine.run(command, target, results(), lambda key, line: target.write_line(line), failures=source_failures, min_success=min_success, before_finish=footer)


# --dry-run of the corpus commands (tokenize, extract-feats, s3-extract, tokenize-shards); the estimate is audiotok.engine.estimate.
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Write nothing; estimate items, hours, frames, tokens, disk and time (a short calibration run): "
        "readable lines on stderr, one JSON line on stdout.",
    ),
]
Jobs = Annotated[int | None, typer.Option("--nj", min=1, help="With --dry-run: the time of N jobs, the input cut as --shard J/N cuts it.")]
CalibrateSeconds = Annotated[float, typer.Option("--calibrate-seconds", min=0.1, help="With --dry-run: seconds of the first items the model is timed on.")]


Nodes = Annotated[
    int | None, typer.Option("--nodes", min=1, help="With --dry-run: the jobs as one job array on M nodes; prints its wall time (see --tasks-per-node).")
]
TasksPerNode = Annotated[
    int, typer.Option("--tasks-per-node", min=1, help="With --nodes: array tasks a node runs at once (its GPUs x processes a GPU, or cores).")
]
AssumeXRealTime = Annotated[
    float | None,
    typer.Option(
        "--assume-x-real-time", min=0.0, help="With --nodes: one task's speed on the target nodes (x real time), instead of this machine's calibration."
    ),
]
AssumeHours = Annotated[
    float | None,
    typer.Option(
        "--assume-hours", min=0.0, help="With --nodes: predict for a corpus of this many hours, split evenly over the --nj tasks (the input only calibrates)."
    ),
]


def array_plan(dry: bool, nodes: int | None, tasks_per_node: int, assume_x_real_time: float | None, assume_hours: float | None):
    """The job-array part of a dry run (None without --nodes); its options need --dry-run and --nodes."""
    from audiotok.engine.array_plan import ArrayPlan
    from audiotok.errors import UsageError

    if nodes is None:
        if tasks_per_node != 1 or assume_x_real_time is not None or assume_hours is not None:
            raise UsageError("--tasks-per-node, --assume-x-real-time and --assume-hours go with --nodes")
        return None
    if not dry:
        raise UsageError("--nodes goes with --dry-run", "it predicts a job array's wall time")
    if assume_x_real_time == 0 or assume_hours == 0:
        raise UsageError("--assume-x-real-time and --assume-hours must be positive")
    return ArrayPlan(nodes, tasks_per_node, assume_x_real_time, assume_hours)


def check_dry_run(dry: bool, nj: int | None) -> None:
    """--nj only sizes the jobs of an estimate: a run cuts its jobs with --shard J/N."""
    from audiotok.errors import UsageError

    if nj is not None and not dry:
        raise UsageError("--nj goes with --dry-run", "run the jobs with --shard J/N each")
