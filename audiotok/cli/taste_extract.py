"""TASTE features: for each utterance, its transcript's token ids and
their embeddings from a text model, and the Whisper encoder's hidden states of its audio,
written to a sharded feature store that taste-train reads by key.

INPUT is a JSONL manifest (`{"audio_path": ..., "text": ...}` a line; the key from
key/id/utt_id or the file name) or a Kaldi data dir with wav.scp and text. OUT_DIR gets
meta.json (models, weight digests, layer, dims, dtypes), index.jsonl and
shard-NNNNN.safetensors files. The text model defaults to the Whisper directory (its
tokenizer and decoder embeddings); special tokens are left out unless
--add-special-tokens. Items without text or with unreadable audio are counted and named.

A rerun skips the keys OUT_DIR already holds (after a crash, Ctrl-C or kill -9, it
ends with the same features as an uninterrupted run); a larger --subset-ratio adds
only the new keys. Every --memory-check-every items, memory use above --memory-limit
saves what is finished and stops (exit 1) with how to continue.

\b
Example:
  audiotok taste-extract data/train -o dump/taste/train --whisper whisper-tiny.en
  audiotok taste-extract train.jsonl -o dump/taste/train --whisper DIR --text-model CosyVoice-300M/llm --subset-ratio 0.1
  audiotok taste-extract train.jsonl -o dump/taste/train --whisper DIR --layer 3 --store-dtype float16

See also: taste-train, taste-encode, extract-feats, s3-extract.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "taste-extract"


def command(
    input_table: Annotated[str, typer.Argument(metavar="INPUT", help="JSONL manifest (audio_path, text) or data dir (wav.scp, text).", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", metavar="OUT_DIR", help="The feature store directory.", show_default=False)],
    whisper: Annotated[str, typer.Option("--whisper", help="Whisper model: a local directory (transformers format) or a preset name.", show_default=False)],
    layer: Annotated[int | None, typer.Option("--layer", min=0, help="Encoder hidden state to keep (default: the last layer, the encoder's output).")] = None,
    text_model: Annotated[str | None, typer.Option("--text-model", help="Tokenizer + input embeddings directory (default: --whisper's).")] = None,
    add_special_tokens: Annotated[bool, typer.Option("--add-special-tokens", help="Keep special tokens (BOS/EOS, Whisper's task tokens).")] = False,
    subset_ratio: Annotated[float, typer.Option("--subset-ratio", min=0.0, max=1.0, help="Keep this share of keys, chosen by key and --seed.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --subset-ratio choice.")] = 0,
    memory_limit: Annotated[float, typer.Option("--memory-limit", min=0.0, max=1.0, help="Save and stop when this share of memory is in use.")] = 0.9,
    memory_check_every: Annotated[int, typer.Option("--memory-check-every", min=0, help="Check memory every this many items (0: never).")] = 20,
    shard_items: Annotated[int, typer.Option("--shard-items", min=1, help="Items per shard file (an item is saved when its shard is).")] = 256,
    store_dtype: Annotated[str, typer.Option("--store-dtype", help="float32 or float16 for the stored embeddings and features.")] = "float32",
    device: common.Device = "auto",
    dtype: common.Dtype = "float32",
    batch_seconds: common.BatchSeconds = 60.0,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: Annotated[bool, typer.Option("--force", help="Remove OUT_DIR's features and start over.")] = False,
) -> None:
    from audiotok.errors import UsageError
    from audiotok.taste.extract import STORE_DTYPES, TasteExtractor, extract_corpus, finished_without_models, open_corpus, prepare_output
    from audiotok.taste.text_model import local_model_name

    if store_dtype not in STORE_DTYPES:
        raise UsageError(f"unknown --store-dtype {store_dtype!r}", f"choose one of {', '.join(STORE_DTYPES)}")
    if subset_ratio <= 0.0:
        raise UsageError("--subset-ratio must be above 0")
    corpus = open_corpus(input_table)  # a bad input fails before the models load
    prepare_output(output, force)
    settings = {
        "whisper_model": local_model_name(whisper),
        "text_model": local_model_name(text_model or whisper),
        "store_dtype": store_dtype,
        "dtype": dtype,
        "add_special_tokens": add_special_tokens,
    }
    if layer is not None:
        settings["layer"] = layer
    if not force and finished_without_models(corpus, output, settings, subset_ratio, seed):
        return
    extractor = TasteExtractor(whisper, layer=layer, text_model=text_model, device=device, dtype=dtype, add_special_tokens=add_special_tokens)
    extract_corpus(
        extractor,
        corpus,
        output,
        subset_ratio=subset_ratio,
        seed=seed,
        memory_limit=memory_limit,
        memory_check_every=memory_check_every,
        shard_items=shard_items,
        store_dtype=store_dtype,
        batch_seconds=batch_seconds,
        channel=channel,
        min_success=min_success,
    )
