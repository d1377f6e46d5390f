"""Export unit tables in the formats LM trainers read.

--to parquet: Parquet shards in OUT (`train-00000-of-00002.parquet`, ...), one row an utterance:
key, the tokens as a list of the narrowest unsigned type that holds the vocabulary (uint16 for
K <= 65536), num_frames, frame_rate and duration (when the frame rate is known), text, speaker
and language (from the input or --data-dir), and the input's other integer fields (durations,
text_ids, global_tokens). The file metadata (key "audiotok") records the inputs, their recipes,
the vocabulary and offsets. `datasets.load_dataset("parquet", data_dir=OUT)` loads it.

--to tokens: one flat token array for memory-mapped training: OUT/tokens.bin (all tokens back to
back, with optional --bos/--eos/--sep ids), OUT/index.bin (int64 start and length a row),
OUT/keys.txt and OUT/header.json (dtype, layout, vocabulary). Read it with
`audiotok.io.token_file.TokenFile(OUT)` (numpy.memmap).

--to lhotse: the cuts of --cuts MANIFEST, each carrying its tokens as the custom field
audio_tokens (a lhotse TemporalArray in .npy files beside -o OUT.jsonl.gz), so
`cut.load_audio_tokens()` and lhotse's collate_custom_field read them.

INPUT is any unit table audiotok writes: `key 1 2 3` lines (tokenize, quantize, s3-extract,
interleave), `key <audio_1><audio_2>` strings (interleave --format string; see --template),
JSONL (tokenize --format jsonl, tokenize-shards' per-process files, taste-encode's codes), or
npy:DIR. Several inputs are written one after the other (keys must not repeat); --offsets moves
each input's codes into its own range of one vocabulary, as interleave does.

The vocabulary is --vocab-size, else the codebook recorded beside the input (UNITS.recipe.json)
or in --bundle, else the largest token + 1; a token outside it is an error.

\b
Example:
  audiotok export units.txt --bundle exp/km500 --to parquet -o hf/
  audiotok interleave vq02.txt vq06.txt --ratio 2:3 --offsets 0,1024 | audiotok export - --vocab-size 5120 --eos 5120 --to tokens -o lm/
  audiotok export out/tokens_*.jsonl --to parquet --rows-per-shard 100000 -o hf/
  audiotok export en/units.txt zh/units.txt --offsets 0,500 --vocab-size 500 --to tokens -o lm/  # two codebooks, one vocabulary
  audiotok export units.txt --to lhotse --cuts data/cuts.jsonl.gz -o data/cuts_tokens.jsonl.gz

See also: tokenize, tokenize-shards, interleave.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "export"


def command(
    inputs: Annotated[
        list[str], typer.Argument(metavar="INPUT", help="Unit tables: `key 1 2 3` lines, strings, JSONL, npy:DIR, or - once.", show_default=False)
    ],
    output: Annotated[str, typer.Option("-o", "--output", help="The output directory (--to lhotse: a .jsonl.gz manifest).", show_default=False)],
    to: Annotated[
        common.choice("parquet", "tokens", "lhotse"),
        typer.Option("--to", help="parquet (one row an utterance), tokens (a flat memory-mappable array) or lhotse (the --cuts manifest with tokens)."),
    ] = "parquet",
    field: Annotated[str | None, typer.Option("--field", help="JSONL: the field that holds the tokens (default: tokens, else codes).")] = None,
    template: Annotated[str, typer.Option("--template", help="How a token is written in string tables.")] = "<audio_{}>",
    vocab_size: Annotated[int | None, typer.Option("--vocab-size", min=1, help="Codes per codebook (default: recorded, else the largest token + 1).")] = None,
    bundle: Annotated[str | None, typer.Option("--bundle", help="A k-means bundle: its k is the vocabulary, its frame rate the rate.")] = None,
    frame_rate: Annotated[float | None, typer.Option("--frame-rate", min=0.0, help="Frames a second (default: recorded); gives durations.")] = None,
    offsets: Annotated[str | None, typer.Option("--offsets", help="Added to each INPUT's codes, e.g. 0,1024.")] = None,
    bos: Annotated[int | None, typer.Option("--bos", help="--to tokens: an id put before each row.")] = None,
    eos: Annotated[int | None, typer.Option("--eos", help="--to tokens: an id put after each row.")] = None,
    sep: Annotated[int | None, typer.Option("--sep", help="--to tokens: an id put between rows.")] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", help="A Kaldi data dir whose text, utt2spk, utt2lang fill those columns.")] = None,
    rows_per_shard: Annotated[int | None, typer.Option("--rows-per-shard", min=1, help="--to parquet: rows in one shard at most.")] = None,
    shard_size: Annotated[str, typer.Option("--shard-size", help="--to parquet: token bytes in one shard at most (before compression).")] = "512MB",
    split: Annotated[str, typer.Option("--split", help="--to parquet: the split the shard names carry.")] = "train",
    cuts: Annotated[str | None, typer.Option("--cuts", help="--to lhotse: the cuts manifest the tokens are attached to (by cut id).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT even when it holds other files, or redo a finished export.")] = False,
) -> None:
    from audiotok.units.export import ExportOptions, run_export

    options = ExportOptions(
        field=field,
        template=template,
        vocab_size=vocab_size,
        bundle=bundle,
        frame_rate=frame_rate,
        offsets=offsets,
        bos=bos,
        eos=eos,
        sep=sep,
        data_dir=data_dir,
        rows_per_shard=rows_per_shard,
        shard_size=shard_size,
        split=split,
        cuts=cuts,
    )
    run_export(NAME, inputs, to, output, options, force)
