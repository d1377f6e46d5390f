"""The interleave and deinterleave runs: reading unit tables, checking keys and rates, writing."""

import logging

import numpy as np

from audiotok.errors import AudiotokError, UsageError
from audiotok.units.interleave import deinterleave, format_string, interleave, parse_offsets, parse_ratio, parse_string

log = logging.getLogger("audiotok")
FORMATS = ("int", "jsonl", "string")


def read_units(spec: str) -> dict[str, np.ndarray]:
    from audiotok.io.tables import read_int_vectors, read_jsonl_table

    if spec.startswith("jsonl:") or spec.endswith(".jsonl"):
        return {key: np.asarray(tokens, dtype=np.int64) for key, tokens in read_jsonl_table(spec)}
    return dict(read_int_vectors(spec))


def _names(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:5]) + (f" ({len(keys) - 5} more)" if len(keys) > 5 else "")


def check_same_keys(tables: list[tuple[str, dict]]) -> list[str]:
    """The first table's keys, in its order; an error naming the keys any table lacks or adds."""
    first_name, first = tables[0]
    for name, table in tables[1:]:
        missing, extra = set(first) - set(table), set(table) - set(first)
        if missing or extra:
            detail = "; ".join(
                filter(None, [f"{name} lacks {_names(missing)}" if missing else "", f"{name} has {_names(extra)} that {first_name} lacks" if extra else ""])
            )
            raise AudiotokError(f"the streams hold different keys: {detail}", "interleave units of the same utterances")
    return list(first)


def check_rates(keys, streams: list[tuple[str, dict]], ratio: list[int], max_skew: float) -> None:
    """Each key's streams must last about as many groups: otherwise the rates do not fit the ratio."""
    bad = []
    for key in keys:
        groups = [len(table[key]) / r for (_, table), r in zip(streams, ratio, strict=True)]
        if max(groups) - min(groups) > max(max_skew, 0.05 * max(groups)):
            bad.append(f"{key} ({' vs '.join(f'{len(t[key])}' for _, t in streams)} tokens)")
    if bad:
        raise AudiotokError(
            f"stream lengths do not fit --ratio {':'.join(map(str, ratio))} for {len(bad)} key(s): {', '.join(bad[:5])}",
            "check the streams' frame rates, or --max-skew",
        )


def run_interleave(command, stream_specs, ratio_text, offsets_text, prefix_specs, prefix_offsets_text, output_format, template, max_skew, output, force):
    from audiotok.io.outputs import TextOutput, make_signature
    from audiotok.io.tables import format_int_vector, format_jsonl
    from audiotok.units.interleave import template_regex

    ratio = parse_ratio(ratio_text)
    if len(ratio) != len(stream_specs):
        raise UsageError(f"--ratio {ratio_text} has {len(ratio)} parts for {len(stream_specs)} streams")
    if output_format not in FORMATS:
        raise UsageError(f"unknown --format {output_format!r}", f"choose one of {', '.join(FORMATS)}")
    if output_format == "string":
        template_regex(template)
    if [*stream_specs, *prefix_specs].count("-") > 1:
        raise UsageError("only one input can be stdin (-)")
    offsets = parse_offsets(offsets_text, len(stream_specs))
    prefix_offsets = parse_offsets(prefix_offsets_text, len(prefix_specs))
    streams = [(spec, read_units(spec)) for spec in stream_specs]
    prefixes = [(spec, read_units(spec)) for spec in prefix_specs]
    keys = check_same_keys(streams + prefixes)
    check_rates(keys, streams, ratio, max_skew)
    signature = make_signature(
        command,
        streams=stream_specs,
        ratio=ratio,
        offsets=offsets,
        prefixes=prefix_specs,
        prefix_offsets=prefix_offsets,
        format=output_format,
        template=template,
    )
    target = TextOutput(output, signature, force)
    dropped = 0
    with target as handle:
        for key in keys:
            tokens = interleave([t[key] for _, t in streams], ratio, offsets, [t[key] for _, t in prefixes], prefix_offsets)
            dropped += sum(len(t[key]) for _, t in streams) + sum(len(t[key]) for _, t in prefixes) - len(tokens)
            if output_format == "int":
                line = format_int_vector(key, tokens)
            elif output_format == "jsonl":
                line = format_jsonl(key, tokens=tokens)
            else:
                line = f"{key} {format_string(tokens, template)}".rstrip()
            handle.write(line + "\n")
    log.info("interleaved %d keys; %d trailing tokens of partial groups dropped", len(keys), dropped)
    target.mark_done()


def _read_tokens(spec: str, input_format: str, template: str):
    """(key, tokens) of an interleaved table in any of interleave's formats."""
    from audiotok.io.keys import check_key
    from audiotok.io.tables import read_int_vectors, read_jsonl_table

    if input_format == "jsonl":
        yield from ((key, np.asarray(tokens, dtype=np.int64)) for key, tokens in read_jsonl_table(spec))
    elif input_format == "int":
        yield from read_int_vectors(spec)
    else:
        import sys

        handle = sys.stdin if spec == "-" else open(spec, encoding="utf-8")
        with handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                key, _, text = line.strip().partition(" ")
                where = f"{spec}:{number}"
                check_key(key, where)
                yield key, parse_string(text.strip(), template, where)


def run_deinterleave(command, spec, outputs, ratio_text, offsets_text, prefix_lengths, prefix_offsets_text, prefix_outputs, input_format, template, force):
    import contextlib

    from audiotok.io.outputs import TextOutput, make_signature
    from audiotok.io.tables import format_int_vector

    ratio = parse_ratio(ratio_text)
    if input_format not in FORMATS:
        raise UsageError(f"unknown --format {input_format!r}", f"choose one of {', '.join(FORMATS)}")
    if len(outputs) != len(ratio):
        raise UsageError(f"give one --output per stream: --ratio {ratio_text} has {len(ratio)} streams, {len(outputs)} outputs given")
    if len(prefix_outputs) != len(prefix_lengths):
        raise UsageError(f"give one --prefix-output per --prefix-length ({len(prefix_lengths)} given, {len(prefix_outputs)} outputs)")
    offsets = parse_offsets(offsets_text, len(ratio))
    prefix_offsets = parse_offsets(prefix_offsets_text, len(prefix_lengths))
    signature = make_signature(
        command, tokens=spec, ratio=ratio, offsets=offsets, prefix_lengths=prefix_lengths, prefix_offsets=prefix_offsets, format=input_format, template=template
    )
    targets = [TextOutput(path, signature, force) for path in [*prefix_outputs, *outputs]]
    count = 0
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(target) for target in targets]
        for key, tokens in _read_tokens(spec, input_format, template):
            try:
                prefixes, streams = deinterleave(tokens, ratio, offsets, prefix_lengths, prefix_offsets)
            except AudiotokError as err:
                raise AudiotokError(f"{spec}: key {key!r}: {err.message}") from None
            for handle, values in zip(handles, [*prefixes, *streams], strict=True):
                if len(values) and values.min() < 0:
                    raise AudiotokError(f"{spec}: key {key!r}: token {int(values.min()) + 0} is below its stream's offset", "check --offsets and --ratio")
                handle.write(format_int_vector(key, values) + "\n")
            count += 1
    for target in targets:
        target.mark_done()
    log.info("deinterleaved %d keys into %d streams", count, len(targets))
