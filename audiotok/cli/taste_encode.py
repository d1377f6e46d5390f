"""Text-aligned speech tokens (TASTE) from a model trained by taste-train:
for each utterance, one group of RVQ codes per text token of its transcript.

INPUT is audio with transcripts, as taste-extract reads it: a JSONL manifest
(`{"audio_path": ..., "text": ...}` a line) or a Kaldi data dir with wav.scp and
text. The Whisper encoder and text model are those the training features were made
with (recorded in the model directory; --whisper / --text-model point at moved
copies, whose weights must be the same). With --features STORE, a taste-extract
feature store is read instead of INPUT (no Whisper run); both give the same codes.

Output: JSONL, one line an utterance:
  {"key", "text", "text_ids": [N], "tokens": [N token strings], "codes": [[C codes] x N]}
Items without text or with unreadable audio are counted and named.

\b
Example:
  audiotok taste-encode data/test --model exp/taste -o taste_tokens.jsonl
  audiotok taste-encode --features dump/taste/test --model exp/taste -o taste_tokens.jsonl

See also: taste-train, taste-extract.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "taste-encode"


def command(
    model: Annotated[str, typer.Option("--model", help="A taste-train output directory (config.json + model.safetensors).", show_default=False)],
    input_table: Annotated[
        str | None,
        typer.Argument(
            metavar="[INPUT]", help="JSONL manifest (audio_path, text) or Kaldi data dir (wav.scp + text); not with --features.", show_default=False
        ),
    ] = None,
    output: common.TextOutputOption = "-",
    features: Annotated[str | None, typer.Option("--features", help="Read this taste-extract feature store instead of running Whisper on INPUT.")] = None,
    whisper: Annotated[str | None, typer.Option("--whisper", help="Where the training features' Whisper model is now (default: the recorded path).")] = None,
    text_model: Annotated[str | None, typer.Option("--text-model", help="Where the training features' text model is now (default: the recorded path).")] = None,
    device: common.Device = "auto",
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.errors import ItemError, UsageError

    if (input_table is None) == (features is None):  # before torch is imported: a quick answer
        raise UsageError("give INPUT (audio with transcripts) or --features STORE, one of the two")
    from audiotok.device import resolve
    from audiotok.engine import items as engine
    from audiotok.io.digests import model_digest
    from audiotok.io.outputs import TextOutput, make_signature
    from audiotok.taste.encode import check_store_meta, load_encoder, load_tokenizer, record, stored_precision

    device = resolve(device)
    encoder, meta = load_encoder(model, device)
    trained = meta["features"]
    contents = {f"{name}_content": model_digest(path) for name, path in (("model", model), ("whisper", whisper), ("text_model", text_model)) if path}
    signature = make_signature(NAME, model=model, input=input_table, features=features, whisper=whisper, text_model=text_model, channel=channel, **contents)
    target = TextOutput(output, signature, force)

    if features is not None:
        from audiotok.io.feature_store import FeatureStore

        store = FeatureStore(features)
        check_store_meta(store.meta, trained, features)
        tokenizer = load_tokenizer(text_model or trained.get("text_model"))

        def results():
            for item in store:
                yield item.key, item
    else:
        from audiotok.taste.extract import TasteExtractor, open_corpus

        corpus = open_corpus(input_table)
        extractor = TasteExtractor.from_meta(trained, device=device, whisper=whisper, text_model=text_model)
        tokenizer = extractor.text.tokenizer
        store_dtype = trained.get("store_dtype", "float32")

        def results():
            pairs = ((item, corpus.text_of(item)) for item in corpus.source)
            for key, item in extractor.extract(pairs, channel=channel):
                if not isinstance(item, ItemError):
                    item.text_emb, item.whisper = stored_precision(item.text_emb, store_dtype), stored_precision(item.whisper, store_dtype)
                yield key, item
            for name, reason in corpus.failures:
                yield name, ItemError(reason)

    def write(key, item):
        try:
            codes = encoder.codes(item.text_emb, item.whisper)
        except ValueError as err:  # e.g. more text tokens than the model's position table
            raise ItemError(str(err)) from None
        target.write_line(record(key, item.text, item.text_ids, codes, tokenizer))

    engine.run(NAME, target, results(), write, min_success=min_success)
