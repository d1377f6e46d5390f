"""Show what each item is: sample rate, channels, samples, duration, format, level.

Decodes every item (so corrupt, truncated or NaN audio is reported) and
prints one line per key; --header-only reads file headers and skips the
level columns. A summary (count, hours, rates) goes to stderr.

A feature or unit archive (ark:/scp: of matrices or int vectors, a .ark
file of them) is refused in one line (exit 2) that names feat-info.

\b
Example:
  audiotok info data/train
  audiotok resample --rate 16000 scp:wav.scp ark:- | audiotok info ark:-
  audiotok info --format jsonl a.flac b.wav

See also: wav-to-duration, feat-info.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "info"
FORMATS = ("text", "tsv", "jsonl")
COLUMNS = ("rate", "channels", "samples", "duration", "format", "subtype", "peak_db", "rms_db")


def command(
    inputs: common.Inputs,
    output: common.TextOutputOption = "-",
    output_format: Annotated[str, typer.Option("--format", help="text (key field=value ...), tsv (with a header) or jsonl.")] = "text",
    header_only: Annotated[bool, typer.Option("--header-only", help="Read file headers only: fast, but checks no samples.")] = False,
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    import json
    import logging
    from collections import Counter
    from dataclasses import replace

    import numpy as np

    from audiotok.cli.wav_to_duration import format_seconds
    from audiotok.dsp.normalize import rms_db
    from audiotok.errors import UsageError

    if output_format not in FORMATS:
        raise UsageError(f"unknown --format {output_format!r}", f"choose one of {', '.join(FORMATS)}")
    refuse_feature_archives(inputs)
    totals = {"seconds": 0.0, "rates": Counter()}
    header_pending = [output_format == "tsv"]

    def describe(item):
        if header_only:
            info, levels = item.info(), {}
        else:
            info, peak, rms = measure(item)
            levels = {"peak_db": round(20 * np.log10(peak), 2) if peak > 0 else float("-inf"), "rms_db": round(rms, 2)}
        totals["seconds"] += info.duration
        totals["rates"][info.rate] += 1
        fields = {
            "rate": info.rate,
            "channels": info.channels,
            "samples": info.frames,
            "duration": format_seconds(info.frames, info.rate),
            "format": info.format,
            "subtype": info.subtype,
            **levels,
        }
        if output_format == "jsonl":
            record = {"key": item.key, **fields}
            record["duration"] = float(record["duration"])
            return json.dumps(record, ensure_ascii=False)
        if output_format == "tsv":
            row = "\t".join([item.key] + [str(fields.get(c, "")) for c in COLUMNS])
            if header_pending[0]:
                header_pending[0] = False
                return "\t".join(("key",) + COLUMNS) + "\n" + row
            return row
        return item.key + " " + " ".join(f"{name}={value}" for name, value in fields.items())

    def measure(item):
        """(info, peak, RMS in dB) of the decoded item; a long recording is read block by block."""
        stream = item.stream(channel) if hasattr(item, "stream") else None
        if stream is None:
            audio = item.load(channel)
            return audio.info, float(np.max(np.abs(audio.samples))), rms_db(audio.samples)
        peak, energy, frames = 0.0, 0.0, 0
        for block in stream.blocks():
            peak = max(peak, float(np.max(np.abs(block))))
            energy += float(np.sum(np.square(block, dtype=np.float64)))
            frames += len(block)
        rms = float(np.sqrt(energy / frames))
        level = 20 * np.log10(rms) if rms > 0 else float("-inf")
        return replace(stream.info, frames=frames), peak, level

    def footer():
        rates = ", ".join(f"{rate} Hz x{count}" for rate, count in sorted(totals["rates"].items()))
        logging.getLogger("audiotok").info("total %.2f h (%.1f s); %s", totals["seconds"] / 3600, totals["seconds"], rates or "no audio")

    common.table_report(
        NAME,
        inputs,
        output,
        describe,
        {"format": output_format, "header_only": header_only, "channel": channel},
        min_success=min_success,
        force=force,
        footer=footer,
    )


def refuse_feature_archives(inputs: list[str]) -> None:
    """A feature or unit archive given as audio: one usage error pointing at feat-info, not a failure per item."""
    from audiotok.errors import UsageError
    from audiotok.io.archives import holds_features
    from audiotok.io.specifiers import looks_like_specifier

    for spec in inputs:
        if holds_features(spec):
            table = (
                spec
                if spec == "-" or looks_like_specifier(spec) or spec.startswith(("text:", "npy:"))
                else f"{'scp' if spec.endswith('.scp') else 'ark'}:{spec}"
            )
            raise UsageError(f"{'stdin' if spec in ('-', 'ark:-') else spec} is a feature archive, not audio", f"audiotok feat-info {table}")
