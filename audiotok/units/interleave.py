"""Interleaving unit streams into one token sequence, and taking it apart again.

Step-Audio's dual codebook: 2 linguistic (vq02, 16.7 Hz) then 3 semantic
(vq06, 25 Hz) tokens per 120 ms group; a trailing partial group is dropped;
ids are offset so the streams do not collide (vq02 65536 + code, vq06 66560 +
code; in `<audio_N>` strings N = code and 1024 + code). Prefix streams
(BiCodec's 32 global tokens) go first, whole.
"""

import re

import numpy as np

from audiotok.errors import AudiotokError, UsageError


def parse_ratio(text: str) -> list[int]:
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        raise UsageError(f"--ratio {text!r}: expected integers like 2:3") from None
    if not parts or any(p < 1 for p in parts):
        raise UsageError(f"--ratio {text!r}: every part must be at least 1")
    return parts


def parse_offsets(text: str | None, count: int) -> list[int]:
    if not text:
        return [0] * count
    try:
        offsets = [int(p) for p in text.split(",")]
    except ValueError:
        raise UsageError(f"--offsets {text!r}: expected integers like 65536,66560") from None
    if len(offsets) != count:
        raise UsageError(f"--offsets has {len(offsets)} values for {count} streams")
    return offsets


def interleave(streams: list[np.ndarray], ratio: list[int], offsets: list[int], prefixes: list[np.ndarray] = (), prefix_offsets: list[int] = ()) -> np.ndarray:
    """Prefixes whole, then groups of ratio[i] tokens of stream i; partial groups dropped."""
    groups = min(len(s) // r for s, r in zip(streams, ratio, strict=True))
    parts = [np.asarray(p, dtype=np.int64) + o for p, o in zip(prefixes, prefix_offsets, strict=True)]
    if groups:
        # [groups, sum(ratio)]: each stream's tokens reshaped to [groups, ratio[i]], side by side.
        blocks = [(np.asarray(s[: groups * r], dtype=np.int64) + o).reshape(groups, r) for s, r, o in zip(streams, ratio, offsets, strict=True)]
        parts.append(np.concatenate(blocks, axis=1).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def deinterleave(
    tokens: np.ndarray, ratio: list[int], offsets: list[int], prefix_lengths: list[int] = (), prefix_offsets: list[int] = ()
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(prefix streams, streams) with offsets removed; the inverse of `interleave`."""
    tokens = np.asarray(tokens, dtype=np.int64)
    prefixes, start = [], 0
    for length, offset in zip(prefix_lengths, prefix_offsets, strict=True):
        if start + length > len(tokens):
            raise AudiotokError(f"{len(tokens)} tokens cannot hold a prefix of {sum(prefix_lengths)}")
        prefixes.append(tokens[start : start + length] - offset)
        start += length
    body = tokens[start:]
    width = sum(ratio)
    if len(body) % width:
        raise AudiotokError(f"{len(body)} tokens after the prefix are not whole groups of {width} (--ratio {':'.join(map(str, ratio))})")
    grid = body.reshape(-1, width)
    streams, column = [], 0
    for r, offset in zip(ratio, offsets, strict=True):
        streams.append(grid[:, column : column + r].reshape(-1) - offset)
        column += r
    return prefixes, streams


def template_regex(template: str) -> re.Pattern:
    """`<audio_{}>` -> a pattern that reads the number back."""
    if template.count("{}") != 1:
        raise UsageError(f"--template {template!r} must hold exactly one {{}}")
    before, after = template.split("{}")
    return re.compile(re.escape(before) + r"(-?\d+)" + re.escape(after))


def format_string(tokens: np.ndarray, template: str) -> str:
    return "".join(template.format(int(t)) for t in tokens)


def parse_string(text: str, template: str, where: str) -> np.ndarray:
    pattern = template_regex(template)
    values, position = [], 0
    for match in pattern.finditer(text):
        if match.start() != position:
            raise AudiotokError(f"{where}: unexpected text {text[position : match.start()][:30]!r} between tokens")
        values.append(int(match.group(1)))
        position = match.end()
    if position != len(text):
        raise AudiotokError(f"{where}: unexpected text {text[position:][:30]!r} after the tokens")
    return np.array(values, dtype=np.int64)
