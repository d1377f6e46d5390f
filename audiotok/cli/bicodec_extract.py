"""Spark-TTS BiCodec tokens: 32 global (speaker) tokens in [0, 4096) per recording and
semantic tokens in [0, 8192) at 50 a second, one JSON line per key:
{"key": ..., "global_tokens": [...], "semantic_tokens": [...]}.

MODEL is the Spark-TTS-0.5B directory (config.yaml, BiCodec/config.yaml,
BiCodec/model.safetensors, wav2vec2-large-xlsr-53/). Audio is resampled to 16 kHz and
volume-normalised as Spark-TTS does; global tokens come from the first 6 s (tiled when
shorter). Recordings are batched by --batch-seconds of padded audio, longest first,
with length masks: a batch gives each recording the tokens it gets alone. A killed run
with -o FILE resumes from FILE.partial.

\b
Example:
  audiotok bicodec-extract --model Spark-TTS-0.5B data/train -o bicodec.jsonl
  audiotok bicodec-extract --model Spark-TTS-0.5B --device cuda --shard 2/8 'shards/*.tar' -o bicodec.2.jsonl
  audiotok deinterleave bicodec.jsonl --ratio 1 --prefix-length 32 --prefix-output global.txt -o semantic.txt

See also: s3-extract, interleave, deinterleave, tokenize-shards.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "bicodec-extract"


def command(
    inputs: common.Inputs,
    model: Annotated[str, typer.Option("--model", help="Spark-TTS-0.5B directory (config.yaml, BiCodec/, wav2vec2-large-xlsr-53/).", show_default=False)],
    output: common.TextOutputOption = "-",
    device: common.Device = "auto",
    dtype: common.Dtype = "float32",
    batch_seconds: common.BatchSeconds = 60.0,
    shard: common.Shard = None,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from pathlib import Path

    from audiotok.bicodec.extract import bicodec_tokens
    from audiotok.bicodec.tokenizer import DTYPES
    from audiotok.engine import items as engine
    from audiotok.errors import UsageError
    from audiotok.io.digests import model_digest
    from audiotok.io.jsonl_writer import ResumableJsonl
    from audiotok.io.outputs import make_signature
    from audiotok.tokenizers.bicodec import open_bicodec

    if dtype not in DTYPES:
        raise UsageError(f"unknown --dtype {dtype!r}", f"choose one of {', '.join(DTYPES)}")
    signature = make_signature(
        NAME, model=str(Path(model).resolve()), model_content=model_digest(model), dtype=dtype, inputs=inputs, shard=shard, channel=channel
    )
    target = ResumableJsonl(output, signature, force)  # a finished output stops here, before the model loads
    tokenizer = open_bicodec(model, device, dtype)
    items, source_failures, _ = engine.audio_items(inputs, shard)
    items = list(items)
    target.open()  # reads the keys a killed run finished
    already_done = sum(item.key in target.done_keys for item in items)
    results = bicodec_tokens(items, tokenizer, channel=channel, batch_seconds=batch_seconds, skip=target.done_keys.__contains__)
    engine.run(
        NAME, target, results, lambda key, tokens: target.write(key, **tokens), failures=source_failures, min_success=min_success, already_done=already_done
    )
