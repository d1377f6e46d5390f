"""The export run: unit tables -> Parquet shards or a flat token file, with their provenance.

Decisions made once for the whole output:
- the vocabulary (--vocab-size, else the codebook recorded beside the input (UNITS.recipe.json)
  or in --bundle, else the largest token read in a first pass + 1), and from it, the offsets and
  bos/eos/sep ids, the narrowest unsigned dtype;
- the frame rate (--frame-rate, else recorded), which gives durations in seconds.
Every token is checked against the vocabulary, so a wrong --vocab-size cannot wrap silently.
The output directory is built beside the target as DIR.tmp.PID and renamed into place.
"""

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiotok import __version__
from audiotok.errors import AlreadyDone, AudiotokError, UsageError
from audiotok.io.token_file import narrowest_unsigned
from audiotok.units.token_tables import TokenRow, main_field, read_token_rows

log = logging.getLogger("audiotok")
TARGETS = ("parquet", "tokens", "lhotse")
META_COLUMNS = ("text", "speaker", "language", "shard")  # string columns the input or a data dir can give
DATA_DIR_META = {"text": "text", "utt2spk": "speaker", "utt2lang": "language"}


@dataclass
class ExportOptions:
    field: str | None = None
    template: str = "<audio_{}>"
    vocab_size: int | None = None
    bundle: str | None = None
    frame_rate: float | None = None
    offsets: str | None = None
    bos: int | None = None
    eos: int | None = None
    sep: int | None = None
    data_dir: str | None = None
    rows_per_shard: int | None = None
    shard_size: str = "512MB"
    split: str = "train"
    cuts: str | None = None


def parse_size(text: str) -> int:
    """`512MB`, `2GB`, `100000` -> bytes (decimal units, as file sizes are quoted)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", text.upper())
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"--shard-size {text!r}: expected a positive size like 512MB or 2GB")
    return int(float(match.group(1)) * 1000 ** " KMGT".index(match.group(2) or " "))


def table_path(spec: str) -> str:
    """The file or directory a unit table spec names (`jsonl:` and `npy:` prefixes dropped)."""
    return spec.removeprefix("npy:").removeprefix("jsonl:")


def input_recipe(spec: str) -> dict | None:
    """What s3-extract or tokenize recorded beside a unit table (UNITS.recipe.json), if anything."""
    from audiotok.io.recipes import recipe_sidecar

    if spec == "-":
        return None
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, NotADirectoryError):
        recipe = json.loads(recipe_sidecar(table_path(spec)).read_text(encoding="utf-8"))
        return recipe if isinstance(recipe, dict) else None
    return None


def run_export(command: str, inputs: list[str], target: str, output: str, options: ExportOptions, force: bool) -> None:
    from audiotok.io.digests import content_digest
    from audiotok.io.locks import claim_output
    from audiotok.io.markers import DoneMarker
    from audiotok.io.outputs import make_signature
    from audiotok.units.interleave import parse_offsets

    if target not in TARGETS:
        raise UsageError(f"unknown --to {target!r}", f"choose one of {', '.join(TARGETS)}")
    if inputs.count("-") > 1:
        raise UsageError("only one input can be stdin (-)")
    if target != "tokens" and {options.bos, options.eos, options.sep} != {None}:
        raise UsageError(f"--bos, --eos and --sep belong to --to tokens (a {target} row is one utterance)")
    if (target == "lhotse") != (options.cuts is not None):
        raise UsageError("--to lhotse needs --cuts MANIFEST" if target == "lhotse" else f"--cuts goes with --to lhotse, not --to {target}")
    if target == "lhotse" and not output.endswith((".jsonl", ".jsonl.gz")):
        raise UsageError(f"--to lhotse writes a cuts manifest: -o {output} must end in .jsonl.gz or .jsonl")
    for name in ("bos", "eos", "sep"):
        if (getattr(options, name) or 0) < 0:
            raise UsageError(f"--{name} must be a non-negative id")
    offsets = parse_offsets(options.offsets, len(inputs))
    if any(offset < 0 for offset in offsets):
        raise UsageError("--offsets must be non-negative")
    shard_bytes = parse_size(options.shard_size)
    out = Path(output)

    recipes = [input_recipe(spec) for spec in inputs]
    bundle = _bundle_facts(options.bundle)
    recorded = [r for r in recipes if r] + ([bundle] if bundle else [])
    vocab = options.vocab_size or _recorded(recorded, "codebook_size", "vocabulary") or None
    frame_rate = options.frame_rate or _recorded(recorded, "frame_rate", "frame rate")
    if vocab is None:
        vocab = _scan_vocabulary(inputs, options)
    specials = [v for v in (options.bos, options.eos, options.sep) if v is not None]
    largest = max([offset + vocab - 1 for offset in offsets] + specials) if inputs else 0
    dtype = narrowest_unsigned(max(largest, 0))
    clash = [v for v in specials if any(offset <= v < offset + vocab for offset in offsets)]
    if clash:
        raise UsageError(f"special id {clash[0]} is also a token id (tokens use {_ranges(offsets, vocab)})", "put --bos/--eos/--sep above the codebooks")

    signature = make_signature(
        command,
        inputs=inputs,
        input_content=[None if spec == "-" else content_digest(table_path(spec)) for spec in inputs],
        to=target,
        vocab=vocab,
        dtype=dtype.name,
        frame_rate=frame_rate,
        options={k: v for k, v in vars(options).items() if k not in ("vocab_size", "frame_rate")},
        data_dir_content=content_digest(options.data_dir) if options.data_dir else None,
        cuts_content=content_digest(options.cuts) if options.cuts and os.path.exists(options.cuts) else None,
    )
    marker = DoneMarker(out, directory=target != "lhotse")
    if not force and "-" not in inputs and marker.matches(signature):
        raise AlreadyDone(output)
    if target == "lhotse":
        claim_output(out)
        marker.clear()
        summary = _write_lhotse(out, _checked_rows(inputs, offsets, vocab, options, False), dtype, frame_rate, options.cuts)
        marker.write(signature)
        log.info("exported %s to %s (%s, vocabulary %d)", summary, out, dtype.name, vocab)
        return
    claim_output(out, directory=True)
    _check_replaceable(out, force)
    _remove_stale_builds(out)

    provenance = {
        "audiotok": __version__,
        "inputs": inputs,
        "recipes": recipes,
        "bundle": bundle,
        "vocab_size": vocab,
        "offsets": offsets,
        "dtype": dtype.name,
        "frame_rate": frame_rate,
    }
    meta = _data_dir_meta(options.data_dir)
    build = out.with_name(f"{out.name}.tmp.{os.getpid()}")
    build.mkdir(parents=True)
    # Units whose runs were collapsed last as long as their durations say; without them, unknown.
    deduplicated = any(r.get("dedup") for r in recorded)
    rows = _checked_rows(inputs, offsets, vocab, options, deduplicated)
    try:
        if target == "parquet":
            summary = _write_parquet(build, rows, dtype, frame_rate, meta, provenance, options, shard_bytes)
        else:
            summary = _write_tokens(build, rows, dtype, frame_rate, meta, provenance, options)
        if out.exists():
            shutil.rmtree(out)
        os.replace(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    marker.write(signature)
    log.info("exported %s to %s (%s, vocabulary %d, offsets %s)", summary, out, dtype.name, vocab, ",".join(map(str, offsets)))


def _ranges(offsets, vocab) -> str:
    return ", ".join(f"{o}..{o + vocab - 1}" for o in offsets)


def _recorded(recipes: list[dict], name: str, what: str):
    values = {r.get(name) for r in recipes if r.get(name) is not None}
    if len(values) > 1:
        raise UsageError(f"the inputs record different {what}s: {', '.join(map(str, sorted(values)))}", f"give --{name.replace('_', '-')} to choose")
    return values.pop() if values else None


def _bundle_facts(path: str | None) -> dict | None:
    if path is None:
        return None
    from audiotok.units.bundle import Bundle

    bundle = Bundle.load(path)
    return {"bundle": str(path), "codebook_size": bundle.k, "frame_rate": bundle.recipe.get("frame_rate"), "recipe": bundle.recipe}


def _scan_vocabulary(inputs: list[str], options: ExportOptions) -> int:
    """The largest token + 1, read in a first pass (which stdin cannot give)."""
    if "-" in inputs:
        raise UsageError("the vocabulary of stdin cannot be read in a first pass", "give --vocab-size (or --bundle, or a file with its recipe beside it)")
    largest = -1
    for spec in inputs:
        for row in read_token_rows(spec, options.template):
            tokens = row.fields[main_field(row, options.field, spec)]
            if tokens.size:
                largest = max(largest, int(tokens.max()))
    return largest + 1 if largest >= 0 else 1


def _checked_rows(inputs, offsets, vocab, options, deduplicated: bool):
    """(row, field, tokens with offset, frames) for every row of every input; errors name the row.
    frames: of audio (the sum of run lengths for collapsed units; None when they are not known)."""
    seen: dict[str, str] = {}
    width = None
    for spec, offset in zip(inputs, offsets, strict=True):
        for row in read_token_rows(spec, options.template):
            if row.key in seen:
                raise AudiotokError(f"key {row.key!r} is in {seen[row.key]} and again in {spec}", "export each utterance once")
            seen[row.key] = spec
            name = main_field(row, options.field, spec)
            tokens = row.fields.pop(name)
            row_width = tokens.shape[1] if tokens.ndim == 2 else 1
            if tokens.size == 0 and width and width > 1:
                tokens = tokens.reshape(0, width)
                row_width = width
            if width is None:
                width = row_width
            elif row_width != width:
                raise AudiotokError(f"{spec}: row {row.key!r} has {row_width} codes a frame, earlier rows {width}")
            if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab):
                bad = int(tokens.min()) if tokens.min() < 0 else int(tokens.max())
                raise AudiotokError(f"{spec}: row {row.key!r} holds token {bad}, outside the vocabulary 0..{vocab - 1}", "give the right --vocab-size")
            if "durations" in row.fields:
                frames = int(row.fields["durations"].sum())
            else:
                frames = None if deduplicated else len(tokens)
            yield row, name, tokens + offset, frames


def _data_dir_meta(data_dir: str | None) -> dict[str, dict[str, str]]:
    """text, utt2spk, utt2lang of a Kaldi data dir as {column: {key: value}}."""
    if data_dir is None:
        return {}
    from audiotok.io.tables import read_kaldi_lines

    directory = Path(data_dir)
    if not directory.is_dir():
        raise AudiotokError(f"no such data dir: {data_dir}")
    meta = {}
    for name, column in DATA_DIR_META.items():
        if (directory / name).exists():
            meta[column] = {parts[0]: parts[1] for _, parts in read_kaldi_lines(directory / name, None, sorted_required=False, allow_empty=True)}
    if not meta:
        raise AudiotokError(f"{data_dir} has none of {', '.join(DATA_DIR_META)}", "--data-dir adds text, speaker and language from a Kaldi data dir")
    return meta


def _check_replaceable(out: Path, force: bool) -> None:
    """An existing output is replaced when it is an earlier export (or empty), or with --force."""
    if not out.exists() or force:
        return
    if not out.is_dir():
        raise AudiotokError(f"{out} exists and is not a directory", "give a new directory, or --force replaces it")
    exported = (out / ".done").exists() or (out / "header.json").exists() or any(out.glob("*.parquet"))
    if any(out.iterdir()) and not exported:
        raise AudiotokError(f"{out} holds files that are not an export", "give a new directory, or --force replaces it")


def _remove_stale_builds(out: Path) -> None:
    """Build directories a killed export left (we hold the output's lock: no run is using them)."""
    for stale in out.parent.glob(f"{out.name}.tmp.*"):
        if stale.is_dir() and stale.name.rsplit(".", 1)[-1].isdigit() and stale.name != f"{out.name}.tmp.{os.getpid()}":
            shutil.rmtree(stale, ignore_errors=True)


def _row_meta(row: TokenRow, meta: dict) -> dict:
    values = {column: row.meta.get(column) for column in META_COLUMNS if row.meta.get(column) is not None}
    for column, table in meta.items():
        if column not in values and row.key in table:
            values[column] = table[row.key]
    return values


def _write_tokens(build: Path, rows, dtype, frame_rate, meta, provenance, options) -> str:
    from audiotok.io.token_file import TokenFileWriter

    writer = None
    field, total = None, 0
    try:
        for row, field, tokens, _ in rows:
            if writer is None:
                width = tokens.shape[1] if tokens.ndim == 2 else 1
                if width > 1 and {options.bos, options.eos, options.sep} != {None}:
                    raise UsageError(f"--bos/--eos/--sep need one token a frame; {field} has {width}")
                writer = TokenFileWriter(build, dtype, width, options.bos, options.eos, options.sep)
            writer.write(row.key, tokens)
            total += tokens.size
        if writer is None:
            writer = TokenFileWriter(build, dtype, 1, options.bos, options.eos, options.sep)
        writer.finish(
            {"vocab_size": provenance["vocab_size"], "offsets": provenance["offsets"], "frame_rate": frame_rate, "field": field, "provenance": provenance}
        )
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    return f"{writer.rows} rows, {total} tokens"


def _write_lhotse(out: Path, rows, dtype, frame_rate, cuts: str) -> str:
    """Each cut of the manifest with its tokens as a custom field (audiotok.io.lhotse_io.attach_tokens);
    cuts without tokens and tokens without a cut are counted and named."""
    from audiotok.io.lhotse_io import attach_tokens

    if not os.path.exists(cuts):
        raise AudiotokError(f"no such cuts manifest: {cuts}")
    tokens = {row.key: values.astype(dtype) for row, _, values, _ in rows}
    report = attach_tokens(cuts, tokens, out, field="audio_tokens", frame_rate=frame_rate)
    for what, keys in (
        ("cuts have no tokens", report.without_tokens),
        ("keys match no cut", report.unused_keys),
        ("cuts are shorter than their tokens at the frame rate", report.cut_short),
    ):
        if keys:
            log.warning("%d %s: %s", len(keys), what, ", ".join(keys[:5]) + (f" ({len(keys) - 5} more)" if len(keys) > 5 else ""))
    return f"{report.written} cuts with tokens (field audio_tokens, arrays in {report.storage_path})"


def _write_parquet(build: Path, rows, dtype, frame_rate, meta, provenance, options, shard_bytes) -> str:
    from audiotok.io.parquet_tokens import ParquetShards

    shards, schema, count, total = None, None, 0, 0
    try:
        for row, field, tokens, frames in rows:
            record = {"key": row.key, field: tokens, "num_frames": frames}
            if frame_rate:
                record.update(frame_rate=frame_rate, duration=None if frames is None else frames / frame_rate)
            record.update(_row_meta(row, meta))
            record.update(row.fields)
            if schema is None:
                schema = _schema(row, field, tokens, dtype, frame_rate, meta, provenance)
                shards = ParquetShards(build, schema, options.split, options.rows_per_shard, shard_bytes)
            unknown = set(record) - set(schema.names)
            if unknown:
                raise AudiotokError(f"row {row.key!r} has fields the first row lacks: {', '.join(sorted(unknown))}", "export tables of one kind together")
            shards.write(record, tokens.size * dtype.itemsize)
            count += 1
            total += tokens.size
        if shards is None:
            schema = _schema(None, options.field or "tokens", np.zeros(0, np.int64), dtype, frame_rate, meta, provenance)
            shards = ParquetShards(build, schema, options.split, options.rows_per_shard, shard_bytes)
        parts = shards.finish()
    except BaseException:
        if shards is not None:
            shards.abandon()
        raise
    return f"{count} rows, {total} tokens in {len(parts)} shard(s)"


def _schema(row, field, tokens, dtype, frame_rate, meta, provenance):
    import pyarrow as pa

    token_type = pa.from_numpy_dtype(dtype)
    main = pa.list_(pa.list_(token_type)) if tokens.ndim == 2 else pa.list_(token_type)
    columns = [pa.field("key", pa.string(), nullable=False), pa.field(field, main), pa.field("num_frames", pa.int32())]
    if frame_rate:
        columns += [pa.field("frame_rate", pa.float32()), pa.field("duration", pa.float32())]
    present = set(meta) | ({c for c in META_COLUMNS if c in row.meta} if row else set())
    columns += [pa.field(column, pa.string()) for column in META_COLUMNS if column in present]
    for name, values in row.fields.items() if row else []:
        columns.append(pa.field(name, pa.list_(pa.list_(pa.int32())) if values.ndim == 2 else pa.list_(pa.int32())))
    return pa.schema(columns, metadata={"audiotok": json.dumps(provenance)})
