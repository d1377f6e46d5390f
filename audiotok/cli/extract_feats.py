"""Extract frame features from audio: Kaldi fbank/MFCC, Whisper log-mel, or the
hidden states of a speech encoder (HuBERT, mHuBERT-147, wav2vec2, XLS-R,
WavLM, data2vec, the Whisper encoder; local directory or hub id) or an
ONNX encoder at --layer.

Writes float matrices [frames, dim] to ark:-, ark:FILE, ark,t:FILE or
ark,scp:A,S, keyed and ordered like the input, and records the feature
recipe beside file outputs (FILE.recipe.json) for fit-kmeans and quantize.
Before the backend, each recording goes through the audio front end:
none (default) resamples audio at another rate to the model's (soxr VHQ);
seed004 is the processor of the audioTokenizer SSL k-means scripts: soxr
HQ resampling, silence trimmed at 30 dB (librosa.effects.trim), zeros
padded to 400 + n x 320 samples. The
recipe records the front end, and tokenize replays it. Encoders see batches of
up to --batch-seconds padded audio, longest first; group-norm encoders
(HuBERT-base, wav2vec2-base) batch only equal lengths, since padding
changes their output. Recordings over --window seconds are cut into
overlapping windows and stitched. A killed run resumes where it stopped.
--dtype bfloat16 runs the whole encoder in bfloat16 (about 1.9x float32 on
AVX-512 CPUs, > 99.9% identical units at K=500 on HuBERT-base size);
--precision-layout keeps chosen parts in float32 instead.

\b
Example:
  audiotok extract-feats --backend mfcc --deltas data/train ark,scp:dump/mfcc.ark,dump/mfcc.scp
  audiotok extract-feats --model hubert-dir --layer 6 --shard 2/4 data/train ark,scp:f.2.ark,f.2.scp
  audiotok extract-feats --backend logmel --num-mels 128 a.wav ark,t:-
  audiotok extract-feats --model mhubert-147 --front-end seed004 data/train ark,scp:f.ark,f.scp
  audiotok extract-feats --model hubert-dir --layer 6 data/train ark,scp:f.ark,f.scp --dry-run --nj 8

See also: fit-kmeans, quantize, tokenize.
"""

from typing import Annotated

import typer

from audiotok.cli import common
from audiotok.tokenizers.features import BACKENDS
from audiotok.units.precision import PRECISION_LAYOUTS

NAME = "extract-feats"
PrecisionLayout = Annotated[
    common.choice(*PRECISION_LAYOUTS),
    typer.Option(
        "--precision-layout",
        help="With --dtype bfloat16/float16 on a wav2vec2-family encoder, what stays in float32: uniform (nothing, the fastest), "
        "fp32-cnn (the convolutional feature encoder), fp32-last (the layer read), autocast (norms, softmax, residual stream).",
    ),
]


def command(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT", help="Audio table (as for resample) and, last, the feature wspecifier.", show_default=False)],
    backend: Annotated[
        common.choice(*BACKENDS),
        typer.Option("--backend", help="Kaldi fbank or mfcc, Whisper logmel, or an encoder's hidden states (model, implied by --model)."),
    ] = "model",
    model: Annotated[str | None, typer.Option("--model", help="Encoder: a transformers model directory, a hub id, or a .onnx file.")] = None,
    layer: Annotated[int | None, typer.Option("--layer", min=0, help="Hidden state to take (0 = encoder input, k = output of layer k).")] = None,
    num_mels: Annotated[int | None, typer.Option("--num-mels", min=1, help="Mel bins: fbank (80), logmel (80 or 128), mfcc (23).")] = None,
    num_ceps: Annotated[int, typer.Option("--num-ceps", min=1, help="mfcc: cepstra kept.")] = 13,
    deltas: Annotated[bool, typer.Option("--deltas", help="fbank/mfcc: append deltas and delta-deltas (fairseq's HuBERT MFCC is mfcc --deltas).")] = False,
    device: common.Device = "auto",
    dtype: common.Dtype = "float32",
    precision_layout: PrecisionLayout = "uniform",
    batch_seconds: common.BatchSeconds = 60.0,
    window: common.Window = 30.0,
    overlap: common.Overlap = 1.0,
    onnx_output: Annotated[str | None, typer.Option("--onnx-output", help="ONNX encoders: the output to take (default: the first).")] = None,
    front_end: Annotated[
        str, typer.Option("--front-end", help="Audio front end: none (resampling only) or seed004 (resample, trim silence, pad to the stride).")
    ] = "none",
    shard: common.Shard = None,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
    dry: common.DryRun = False,
    nj: common.Jobs = None,
    nodes: common.Nodes = None,
    tasks_per_node: common.TasksPerNode = 1,
    assume_x_real_time: common.AssumeXRealTime = None,
    assume_hours: common.AssumeHours = None,
    calibrate_seconds: common.CalibrateSeconds = 10.0,
) -> None:
    from audiotok.dsp.front_end import preset
    from audiotok.errors import UsageError

    common.check_dry_run(dry, nj)
    array = common.array_plan(dry, nodes, tasks_per_node, assume_x_real_time, assume_hours)
    if len(inputs) < 2:
        raise UsageError("give the audio input and the output wspecifier", "e.g. audiotok extract-feats --backend mfcc data/train ark:-")
    *sources, output = inputs
    if backend == "model" and model is None:
        raise UsageError("give --model for an encoder, or --backend fbank, mfcc or logmel")
    options = {
        "backend": backend,
        "model": model,
        "layer": layer,
        "num_mels": num_mels,
        "num_ceps": num_ceps,
        "deltas": deltas,
        "dtype": dtype,
        "onnx_output": onnx_output,
    }
    chosen_front_end = preset(front_end)
    if dry:
        estimate_extraction(
            sources, output, options, device, chosen_front_end, channel, batch_seconds, window, overlap, shard, nj, calibrate_seconds, precision_layout, array
        )
        return
    extractor = open_extractor(options, device, precision_layout)
    # A layout other than uniform is another run; uniform leaves the signature as it was.
    layout = {} if precision_layout == "uniform" else {"precision_layout": precision_layout}
    run_extraction(
        NAME,
        sources,
        output,
        extractor,
        {**options, "front_end": front_end, **layout},
        front_end=chosen_front_end,
        channel=channel,
        batch_seconds=batch_seconds,
        window=window,
        overlap=overlap,
        shard=shard,
        min_success=min_success,
        force=force,
    )


def open_extractor(options, device, precision_layout):
    """The feature backend; an encoder in its precision layout."""
    from audiotok.errors import UsageError
    from audiotok.tokenizers.features import open_backend

    if precision_layout == "uniform":
        return open_backend(device=device, **options)
    if options["backend"] != "model":
        raise UsageError(f"--precision-layout applies to encoders (--model), not to --backend {options['backend']}")
    from audiotok.units.encoders import load_encoder

    return load_encoder(options["model"], options["layer"], device, options["dtype"], options["onnx_output"], layout=precision_layout)


def features(items, backend, front_end, channel, batch_seconds, window, overlap, skip=None):
    """(key, features [frames, dim] or ItemError) for each item, in input order."""
    from audiotok.engine.batching import SignalBackend, extract_features

    window_seconds = None if isinstance(backend, SignalBackend) else window
    return extract_features(
        items, backend, channel=channel, batch_seconds=batch_seconds, window_seconds=window_seconds, overlap_seconds=overlap, skip=skip, front_end=front_end
    )


def estimate_extraction(
    sources, output, options, device, front_end, channel, batch_seconds, window, overlap, shard, nj, calibrate_seconds, precision_layout, array=None
):
    """--dry-run: the run's cost, from headers and a calibration on the first seconds (audiotok.engine.estimate)."""
    from audiotok.engine.estimate import Model, run_estimate
    from audiotok.io.specifiers import parse_specifier

    target = parse_specifier(output, writing=True)  # a bad wspecifier fails now, as the run would

    def load():
        backend = open_extractor(options, device, precision_layout)
        return Model(backend, backend.recipe.frame_rate, "features", dim=backend.dim)

    def process(backend, items):
        return features(items, backend, front_end, None, batch_seconds, window, overlap)

    run_estimate(
        NAME, sources, load=load, process=process, shard=shard, nj=nj, calibrate_seconds=calibrate_seconds, channel=channel,
        output=target.ark if target.scp else None, text_output=target.text, array=array,
    )  # fmt: skip


def run_extraction(command, sources, output, backend, options, *, front_end, channel, batch_seconds, window, overlap, shard, min_success, force):
    from audiotok.engine import items as engine
    from audiotok.io.outputs import MatrixSink, make_signature

    items, source_failures, _ = engine.audio_items(sources, shard)
    items = list(items)  # counted below, and keyed for resume
    recipe = {**backend.recipe.as_dict(), "front_end": front_end.as_dict()}
    # The recipe names the model by a digest of its weights: a model replaced at the same path is another run.
    signature = make_signature(command, inputs=sources, shard=shard, channel=channel, window=window, overlap=overlap, recipe=recipe, **options)
    sink = MatrixSink(output, signature, force, recipe)
    common.log.info(
        "%s: %d items%s, %s features of dim %d at %g Hz, audio front end %s",
        command,
        len(items),
        f" (shard {shard})" if shard else "",
        recipe["backend"],
        recipe["dim"],
        recipe["frame_rate"],
        front_end.describe(),
    )
    results = features(items, backend, front_end, channel, batch_seconds, window, overlap, skip=sink.already_done)
    already_done = sum(sink.already_done(item.key) for item in items)
    engine.run(command, sink, results, sink.write, failures=source_failures, min_success=min_success, already_done=already_done)
