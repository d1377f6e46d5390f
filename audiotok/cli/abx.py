"""ABX phone discriminability of features or units, as ZeroSpeech scores it (libri-light-abx2).

Reads TABLE, dense features (ark:FILE, scp:FILE, npy:DIR, - for a binary archive on stdin)
or discrete units (`key 12 12 407 ...` lines, text:FILE, jsonl:FILE), builds ABX items from
--alignments (Praat TextGrids, Kaldi CTM, `utt start end phone`, HTK .lab, SpeechBrain TSV)
and the speakers (--utt2spk, --speaker-pattern, else one speaker an utterance), or reads
them from a ZeroSpeech item file (--item-file, e.g. Libri-light's dev-clean.item with
--item-kind triphone), and prints
the ABX error rate (0..1, lower is better) of each condition:

\b
    phone_{within,any}_context_{within,across}_speaker   phone items, zrc_abx2's four conditions
    triphone_{within,across}_speaker                    triphone items within context (Libri-light ABX)

Frames are compared by angle (cosine) or Euclidean distance, items by DTW; triplets are
drawn as zrc_abx2 draws them (same seed, group sizes), so scores equal the reference
package's. Units are scored as one-hot vectors or, with --bundle and --vectors centroids,
as their centroids. A condition without any triplet prints n/a and a one-line note with
the counts that fall short.

\b
Example:
  audiotok abx --alignments data/dev/textgrids --utt2spk data/dev/utt2spk ark:dump/hubert_l6.ark
  audiotok abx --alignments ali.ctm --speaker-pattern '^([^-]+)-' --bundle exp/km500 units.txt
  audiotok abx --alignments ali.ctm --conditions triphone_within_speaker --format json scp:feats.scp

See also: report (PNMI and ABX of units), sweep-table, extract-feats.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "abx"
FORMATS = ("text", "json")

AlignmentFormat = Annotated[str, typer.Option("--alignment-format", help="auto, textgrid, ctm, text (utt start end phone), lab (HTK) or speechbrain.")]
Utt2spk = Annotated[str | None, typer.Option("--utt2spk", metavar="FILE", help="Kaldi utt2spk: the speaker of each utterance.")]
SpeakerPattern = Annotated[
    str | None,
    typer.Option("--speaker-pattern", metavar="REGEX", help="Speaker = the regex's first group (else its match) in the key, e.g. '^([^-]+)-' for LibriSpeech."),
]
Conditions = Annotated[str, typer.Option("--conditions", metavar="LIST", help="Comma-separated conditions (names above), or all.")]
Distance = Annotated[str, typer.Option("--distance", help="Frame distance: cosine (angle / pi, ZeroSpeech's) or euclidean.")]
PhoneMap = Annotated[
    str | None, typer.Option("--phone-map", metavar="FILE", help="`phone class` lines: phones renamed before items are made (e.g. TIMIT 61 -> 39).")
]
FoldPhones = Annotated[bool, typer.Option("--fold-phones", help="Compare phones in lower case without ARPAbet stress digits (AH1 = ah).")]
ExcludePhones = Annotated[
    str | None, typer.Option("--exclude-phones", metavar="LIST", help="Comma-separated labels no item may hold or touch (default: silence labels).")
]
MaxSizeGroup = Annotated[int, typer.Option("--max-size-group", min=2, help="Tokens drawn from a (speaker, context, phone) group.")]
MaxXAcross = Annotated[int, typer.Option("--max-x-across", min=1, help="X speakers drawn for each A group across speakers.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the triplet draws.")]


def command(
    table: Annotated[str, typer.Argument(metavar="TABLE", help="Features (ark:FILE, scp:FILE, npy:DIR, -) or units (FILE, text:FILE, jsonl:FILE).")],
    alignments: Annotated[
        list[str] | None, typer.Option("--alignments", metavar="PATH", help="Phone alignments: a file or a directory of TextGrids; repeatable.")
    ] = None,
    alignment_format: AlignmentFormat = "auto",
    utt2spk: Utt2spk = None,
    speaker_pattern: SpeakerPattern = None,
    frame_rate: Annotated[
        float | None, typer.Option("--frame-rate", metavar="HZ", help="Frames a second (default: the recipe beside TABLE, or --bundle's).")
    ] = None,
    bundle: Annotated[str | None, typer.Option("--bundle", metavar="DIR", help="Units: the tokenizer bundle (k, frame rate, centroids).")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="Units without --bundle: the codebook size (default: the largest code + 1).")] = None,
    vectors: Annotated[str, typer.Option("--vectors", help="Units as onehot vectors or as their centroids (needs --bundle).")] = "onehot",
    conditions: Conditions = "all",
    distance: Distance = "cosine",
    phone_map: PhoneMap = None,
    fold_phones: FoldPhones = False,
    exclude_phones: ExcludePhones = None,
    max_size_group: MaxSizeGroup = 10,
    max_x_across: MaxXAcross = 5,
    seed: Seed = 3459,
    item_file: Annotated[
        str | None, typer.Option("--item-file", metavar="FILE", help="Score a ZeroSpeech item file's items instead of building them (e.g. Libri-light's).")
    ] = None,
    item_kind: Annotated[str, typer.Option("--item-kind", help="With --item-file: its items are phone or triphone items.")] = "phone",
    write_items: Annotated[
        str | None, typer.Option("--write-items", metavar="DIR", help="Also write the ZeroSpeech item files (phone.item, triphone.item) here.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="text (`name value` lines) or json (one object).")] = "text",
    output: common.TextOutputOption = "-",
    force: common.Force = False,
) -> None:
    from audiotok.abx.evaluate import evaluate, unit_vectors
    from audiotok.errors import UsageError
    from audiotok.io.outputs import TextOutput, make_signature
    from audiotok.units.alignments import read_alignments
    from audiotok.units.bundle import Bundle
    from audiotok.units.report import smallest_k

    if output_format not in FORMATS:
        raise UsageError(f"unknown --format {output_format!r}", f"choose one of {', '.join(FORMATS)}")
    settings = make_settings(conditions, distance, utt2spk, speaker_pattern, phone_map, fold_phones, exclude_phones, max_size_group, max_x_across, seed)
    settings.write_items = write_items
    settings.check()
    if bool(alignments) == bool(item_file):
        raise UsageError("give --alignments or --item-file (one of them)", "items are built from alignments, or read from a ZeroSpeech item file")
    if item_kind not in ("phone", "triphone"):
        raise UsageError(f"unknown --item-kind {item_kind!r}", "choose phone or triphone")
    if bundle is not None and k is not None:
        raise UsageError("give --k or --bundle, not both", "the bundle knows its k")
    signature = make_signature(
        NAME,
        table=table,
        alignments=alignments,
        item_file=item_file,
        item_kind=item_kind,
        settings=settings.signature(),
        bundle=bundle,
        k=k,
        vectors=vectors,
        format=output_format,
    )
    target = TextOutput(output, signature, force)
    loaded, units = read_table(table)
    if not units and (bundle or vectors != "onehot" or k):
        raise UsageError(f"{table} holds dense features", "--bundle, --k and --vectors are for unit tables")
    codebook = Bundle.load(bundle) if bundle else None
    rate = frame_rate_of(table, frame_rate, codebook.recipe.get("frame_rate") if codebook else None)
    if units:
        size = codebook.k if codebook else k or smallest_k(loaded)
        loaded = unit_vectors(loaded, size, vectors, codebook.centroids if codebook and vectors == "centroids" else None)
    phones = read_alignments(alignments, alignment_format) if alignments else None
    results = {"utterances": len(loaded), "frame_rate": rate} | evaluate(loaded, rate, phones, settings, item_file, item_kind)
    common.write_results(target, results, output_format)


def make_settings(conditions, distance, utt2spk, speaker_pattern, phone_map, fold_phones, exclude_phones, max_size_group=10, max_x_across=5, seed=3459):
    """The ABX settings from the options `abx` and `report --abx` share."""
    from audiotok.abx.evaluate import Settings, parse_conditions

    settings = Settings(
        conditions=parse_conditions(conditions),
        distance=distance,
        utt2spk=utt2spk,
        speaker_pattern=speaker_pattern,
        phone_map=phone_map,
        fold_phones=fold_phones,
        max_size_group=max_size_group,
        max_x_across=max_x_across,
        seed=seed,
    )
    if exclude_phones is not None:
        settings.exclude_phones = tuple(label.strip() for label in exclude_phones.split(","))
    return settings


def read_table(spec: str):
    """(table, whether it holds units) of TABLE: a unit table (text or JSONL) or a feature archive."""
    import numpy as np

    from audiotok.errors import AudiotokError, UsageError
    from audiotok.io.archives import read_archive
    from audiotok.io.specifiers import looks_like_specifier

    if spec.startswith("jsonl:") or spec.endswith(".jsonl") or (spec != "-" and not looks_like_specifier(spec) and not spec.startswith("npy:")):
        from audiotok.io.tables import read_unit_table

        return read_unit_table(spec), True
    table = dict(read_archive(spec))
    if not table:
        raise AudiotokError(f"no entries in {spec}")
    kinds = {np.issubdtype(value.dtype, np.integer) for value in table.values()}
    if len(kinds) > 1:
        raise UsageError(f"{spec} mixes unit and feature entries")
    if kinds == {True}:
        return table, True
    return {key: value[None, :] if value.ndim == 1 else value for key, value in table.items()}, False


def frame_rate_of(spec: str, frame_rate: float | None, bundle_rate: float | None) -> float:
    """The frame rate: the option's, else the recipe recorded beside TABLE, else the bundle's."""
    from audiotok.errors import UsageError
    from audiotok.io.recipes import read_recipe_for

    if frame_rate is None:
        frame_rate = (read_recipe_for(spec) or {}).get("frame_rate") or bundle_rate
    if frame_rate is None:
        raise UsageError(f"the frame rate of {spec} is not recorded", "give --frame-rate HZ")
    if frame_rate <= 0:
        raise UsageError(f"--frame-rate must be positive, got {frame_rate:g}")
    return float(frame_rate)
