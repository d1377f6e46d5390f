"""Tokenize a directory of WebDataset tar shards (NAME.flac + NAME.json per sample), or
of Parquet shards when it holds no .tar, with many worker processes, one JSONL file each: OUT/{input dir name}_{process}.jsonl,
one line a sample: {"key", "shard", "language", "text", <token fields>} (language and
text from the sample's JSON, null when absent). Shards are the sorted *.tar of
--input-dir from --from-index (included) to --to-index (excluded); shard i of that
slice goes to process i % --num-proc. Process p uses GPU (p // --procs-per-gpu) %
GPUs, or the CPU when there is none. A rerun (after a kill, Ctrl-C, a memory stop or
with another --num-proc) skips every sample already in any {name}_*.jsonl, so each
sample ends up on exactly one line. A worker that dies (killed by the OOM killer, a
crash) is started again for its unfinished shards, up to --max-restarts times, and
goes on after its last written line. Every --memory-check-every samples a worker
over --memory-limit frees caches and goes on; it stops (the run exits 1, a rerun
resumes) only when memory is still over the limit right after freeing. A sample that
cannot be used (no audio, no JSON, undecodable, too short) and a damaged shard are
warnings, and recorded in {file}.skipped.jsonl beside the token file ({"key", "shard",
"reason"}; key null for a damaged shard); the run ends `done N/M`.

\b
A job array: --task J/N runs only the J-th of N contiguous, nearly equal ranges of
the selected shards and writes {name}_{J}of{N}_{process}.jsonl, so the tasks of one
array never share a file; a rerun or requeue of task J resumes its range. Under Slurm
each task maps its processes over the GPUs it sees (CUDA_VISIBLE_DEVICES from --gres):
process p of the task uses its visible GPU (p // --procs-per-gpu) % visible GPUs.
check-shard-tokens then proves every sample is there exactly once and merges them:
  utils/launch.sh --backend slurm JOB=1:8 log/tok.JOB.log \\
    audiotok tokenize-shards --task JOB/8 --input-dir shards/ --output-dir tokens/ --tokenizer bundle:km --num-proc 2
  audiotok check-shard-tokens --input-dir shards/ --output-dir tokens/ -o tokens.jsonl

\b
Tokenizers (--tokenizer SPEC):
  bundle:DIR    an audiotok units bundle (fit-kmeans): field units
  s3:MODEL      CosyVoice S3 (.onnx, S3Tokenizer weights or a preset; add
                ,version=v1,rate=25 for v1 weights): field s3_tokens
  bicodec:DIR   BiCodec (Spark-TTS): global_tokens, semantic_tokens
  DIR           a bundle directory
  NAME:TARGET   a family that a module named in the environment variable
                AUDIOTOK_TOKENIZERS registers (audiotok.tokenizers.register)

\b
The tar token extraction script's command line runs unchanged: its
--input_dir, --output_dir, --num_proc, --from_index and --to_index are these
options (so is --procs_per_gpu), and its --model_dir DIR (also --model-dir)
stands for --tokenizer bicodec:DIR, the Spark-TTS-0.5B directory; for
bundle:DIR when DIR holds a units bundle, s3:DIR when DIR is a file.

\b
Example:
  audiotok tokenize-shards --input-dir shards/ --output-dir tokens/ --tokenizer bundle:exp/km500 --num-proc 4
  audiotok tokenize-shards --input-dir emilia/ZH --output-dir out --tokenizer bicodec:Spark-TTS-0.5B --from-index 0 --to-index 100
  audiotok tokenize-shards --input_dir emilia/ZH --output_dir out --model_dir Spark-TTS-0.5B --num_proc 4
  audiotok tokenize-shards --input-dir shards/ --output-dir tokens/ --tokenizer bundle:exp/km500 --num-proc 8 --dry-run
  audiotok tokenize-shards --input-dir shards/ --output-dir tokens/ --tokenizer bundle:exp/km500 --num-proc 2 --dry-run --nj 64 --nodes 8 --tasks-per-node 4

See also: check-shard-tokens, tokenize, s3-extract, interleave.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "tokenize-shards"


def command(
    input_dir: Annotated[
        str, typer.Option("--input-dir", "--input_dir", help="Directory of *.tar shards (or of *.parquet shards, when it holds no .tar).", show_default=False)
    ],
    output_dir: Annotated[
        str,
        typer.Option("--output-dir", "--output_dir", help="Where {name}_{process}.jsonl ({name}_{J}of{N}_{process}.jsonl with --task) go.", show_default=False),
    ],
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            help="bundle:DIR (or a bundle DIR), s3:MODEL[,version=V][,rate=R][,long_audio=M], bicodec:DIR, "
            "or a family a module named in AUDIOTOK_TOKENIZERS registers.",
            show_default=False,
        ),
    ] = None,
    model_dir: Annotated[
        str | None,
        typer.Option("--model-dir", "--model_dir", help="Instead of --tokenizer: bicodec:DIR (bundle:DIR, s3:DIR when DIR is one).", show_default=False),
    ] = None,
    num_proc: Annotated[int, typer.Option("--num-proc", "--num_proc", min=1, help="Worker processes.")] = 4,
    from_index: Annotated[int, typer.Option("--from-index", "--from_index", min=0, help="First shard (0-based, included) of the sorted list.")] = 0,
    to_index: Annotated[int | None, typer.Option("--to-index", "--to_index", min=0, help="Shard index where to stop (excluded); default: the end.")] = None,
    procs_per_gpu: Annotated[int, typer.Option("--procs-per-gpu", "--procs_per_gpu", min=1, help="Processes sharing one GPU.")] = 2,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            metavar="J/N",
            help="Only the J-th (1-based) of N contiguous, nearly equal ranges of the selected shards; outputs {name}_{J}of{N}_{process}.jsonl.",
            show_default=False,
        ),
    ] = None,
    device: common.Device = "auto",
    dtype: common.Dtype = "float32",
    batch_seconds: common.BatchSeconds = 60.0,
    stats_every: Annotated[int, typer.Option("--stats-every", min=0, help="Log statistics every N samples (0: only at the end).")] = 1000,
    memory_limit: Annotated[float, typer.Option("--memory-limit", help="Memory share above which a worker frees caches; it stops if still above.")] = 0.9,
    memory_check_every: Annotated[int, typer.Option("--memory-check-every", min=1, help="Samples between memory checks.")] = 20,
    max_restarts: Annotated[int, typer.Option("--max-restarts", min=0, help="Times a worker that dies is started again.")] = 2,
    min_success: common.MinSuccess = 0.95,
    dry: common.DryRun = False,
    nj: Annotated[
        int | None, typer.Option("--nj", min=1, help="With --dry-run: the time of an array of N tasks, the shards cut as --task J/N cuts them.")
    ] = None,
    nodes: common.Nodes = None,
    tasks_per_node: common.TasksPerNode = 1,
    assume_x_real_time: common.AssumeXRealTime = None,
    assume_hours: common.AssumeHours = None,
    calibrate_seconds: common.CalibrateSeconds = 10.0,
) -> None:
    from audiotok.engine.items import parse_part
    from audiotok.errors import UsageError
    from audiotok.pipeline.shard_run import ShardRunOptions, model_dir_spec, run_shards

    part = parse_part(task, "--task") if task is not None else None
    common.check_dry_run(dry, nj)
    array = common.array_plan(dry, nodes, tasks_per_node, assume_x_real_time, assume_hours)
    if array is not None and nj is None:
        raise UsageError("--nodes needs --nj N: the array's tasks", "e.g. --dry-run --nj 1000 --nodes 100 --tasks-per-node 8")
    if nj is not None and task is not None:
        raise UsageError("give --nj (the array to estimate) or --task (one of its tasks), not both")

    if (tokenizer is None) == (model_dir is None):
        raise UsageError("give one of --tokenizer SPEC and --model-dir DIR", "--model-dir DIR is --tokenizer bicodec:DIR for a Spark-TTS directory")
    if model_dir is not None:
        tokenizer = model_dir_spec(model_dir)

    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {device!r}", "choose auto, cpu or cuda")
    if dtype not in ("float32", "float16", "bfloat16"):
        raise UsageError(f"--dtype {dtype!r}", "choose float32, float16 or bfloat16")
    if dry:
        estimate_shards(input_dir, tokenizer, num_proc, from_index, to_index, device, dtype, batch_seconds, calibrate_seconds, part, nj, array)
        return
    run_shards(
        ShardRunOptions(
            input_dir=input_dir,
            output_dir=output_dir,
            tokenizer=tokenizer,
            num_proc=num_proc,
            from_index=from_index,
            to_index=to_index,
            procs_per_gpu=procs_per_gpu,
            device=device,
            dtype=dtype,
            batch_seconds=batch_seconds,
            stats_every=stats_every,
            memory_limit=memory_limit,
            memory_check_every=memory_check_every,
            min_success=min_success,
            max_restarts=max_restarts,
            task=part,
        )  # fmt: skip
    )


def estimate_shards(input_dir, tokenizer, num_proc, from_index, to_index, device, dtype, batch_seconds, calibrate_seconds, task=None, nj=None, array=None):
    """--dry-run: the run's cost per process (with --nj: per array task), from the shards' members and a calibration (audiotok.engine.estimate)."""
    import dataclasses

    from audiotok.device import resolve
    from audiotok.engine.estimate import Model, run_shard_estimate
    from audiotok.pipeline.shard_run import assign_shards, list_shards, task_shards
    from audiotok.tokenizers import open_tokenizer, tokenize_items

    def load():
        loaded = open_tokenizer(tokenizer, resolve(device), dtype)
        return Model(loaded, getattr(loaded, "frame_rate", None), "jsonl", fields=tuple(loaded.fields))

    def process(loaded, items):
        return tokenize_items(items, loaded, batch_seconds=batch_seconds)

    shards = list_shards(input_dir, from_index, to_index)
    if nj is None:
        jobs = assign_shards(task_shards(shards, task), num_proc)
    else:  # the array's tasks, each running --num-proc processes over its shards
        jobs = [task_shards(shards, (j, nj)) for j in range(1, nj + 1)]
        array = array and dataclasses.replace(array, processes_per_task=num_proc)
    run_shard_estimate(NAME, jobs, load=load, process=process, calibrate_seconds=calibrate_seconds, array=array)
