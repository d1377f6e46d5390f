"""Phone alignments: `{utt_key: [(start_s, end_s, phone), ...]}` from the formats aligners write.

    textgrid      Praat TextGrid, long or short text format (MFA); the tier named
                  "phones", else the first whose name contains "phone"; key = file name
                  without its extension; a directory of TextGrids is read whole
    ctm           Kaldi CTM: `utt channel start duration phone [confidence]`
    text          `utt start end phone`
    lab           HTK label file: `start end phone` in 100 ns units (key = file name);
                  HTS full-context labels (`a^b-PHONE+c=d/...`) give their centre phone
    speechbrain   tab-separated with a header naming `file`, `sample_rate`, `phones` and
                  `phone_end_samples` (space-separated phones and their end samples)

Intervals come back sorted by start time. Empty labels become SILENCE.
"""

import re
from collections.abc import Iterable
from pathlib import Path

from audiotok.errors import AudiotokError, UsageError
from audiotok.io.keys import check_key

Interval = tuple[float, float, str]
Alignments = dict[str, list[Interval]]

FORMATS = ("auto", "textgrid", "ctm", "text", "lab", "speechbrain")
SILENCE = "sil"
HTK_UNITS_PER_SECOND = 10_000_000
SPEECHBRAIN_COLUMNS = ("file", "sample_rate", "phones", "phone_end_samples")
_HINTS = {
    "ctm": "a CTM line is `utt channel start duration phone [confidence]`",
    "text": "a line is `utt start end phone` (seconds)",
    "lab": "an HTK label line is `start end phone` in 100 ns units",
    "speechbrain": f"columns {', '.join(SPEECHBRAIN_COLUMNS)} (tab-separated)",
}
# HTS full-context label: p1^p2-p3+p4=p5/A:...; p3 is the phone of the interval.
_HTS_LABEL = re.compile(r"^[^^]*\^[^-]*-([^+]+)\+[^=]*=")
# TextGrid text tokens: quoted strings ("" escapes a quote), flags, [indices] (skipped), numbers.
# Everything else (`xmin =`, `item`, `intervals:`) is a label that Praat itself ignores.
_TEXTGRID_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(<exists>|<absent>)|\[[^\]\n]*\]|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)')


def read_alignments(paths: Iterable[str], fmt: str = "auto") -> Alignments:
    """Read and merge alignment files (or directories of TextGrid/.lab files); a key given twice is an error."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown alignment format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
    merged: Alignments = {}
    origin: dict[str, str] = {}
    for path in paths:
        for file in _expand(Path(path), fmt):
            for key, intervals in _read_file(file, detect_format(file) if fmt == "auto" else fmt).items():
                if key in merged:
                    raise AudiotokError(f"alignments for {key!r} appear in both {origin[key]} and {file}", "give each utterance one alignment")
                merged[key], origin[key] = intervals, str(file)
    return merged


def _expand(path: Path, fmt: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise AudiotokError(
            f"no such alignment file or directory: {path}", "give TextGrids (a file or a directory of them), a CTM, HTK .lab files or a SpeechBrain TSV"
        )
    if fmt not in ("auto", "textgrid", "lab"):
        raise UsageError(f"{path} is a directory, and {fmt} alignments are one file for many utterances", "give the file")
    # .lab files also hold transcripts, so a directory means TextGrids unless --alignment-format lab.
    suffix = ".lab" if fmt == "lab" else ".textgrid"
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == suffix)
    if not files:
        raise AudiotokError(f"{path} holds no {suffix} files", "give the alignment files themselves, or --alignment-format lab for HTK labels")
    return files


def detect_format(path: Path) -> str:
    """The format of one file, from its extension, else from its first lines."""
    suffix = path.suffix.lower()
    if suffix == ".textgrid":
        return "textgrid"
    if suffix in (".ctm", ".lab"):
        return suffix[1:]
    for line in _decode(path).splitlines():
        if not line.strip() or line.startswith(("#", ";;")):
            continue
        if line.startswith("File type"):
            return "textgrid"
        if set(SPEECHBRAIN_COLUMNS) <= set(line.strip().split("\t")):
            return "speechbrain"
        fields = line.split()
        # Where each format keeps its times: CTM start and duration, text start and end, HTK start and end.
        for fmt, sizes, times in (("ctm", (5, 6), fields[2:4]), ("text", (4,), fields[1:3]), ("lab", (3,), fields[:2])):
            if len(fields) in sizes and all(_is_number(t) for t in times):
                return fmt
        break
    raise AudiotokError(f"{path}: cannot tell the alignment format", "give --alignment-format textgrid, ctm, text, lab or speechbrain")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_file(path: Path, fmt: str) -> Alignments:
    if fmt == "textgrid":
        return {_file_key(path): read_textgrid(path)}
    if fmt == "lab":
        return {_file_key(path): _read_lab(path)}
    if fmt == "speechbrain":
        return _read_speechbrain(path)
    return _read_keyed_lines(path, fmt)


def _file_key(path: Path) -> str:
    return check_key(path.stem, str(path))


def _decode(path: Path) -> str:
    data = path.read_bytes()
    # Praat writes files with non-ASCII labels as UTF-16 with a byte-order mark.
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise AudiotokError(f"{path}: not UTF-8 or UTF-16 text (byte {err.start})") from None


def _label(text: str) -> str:
    return text.strip() or SILENCE


def _interval(start: float, end: float, phone: str, where: str, fmt: str) -> Interval:
    if not (0 <= start <= end):
        raise AudiotokError(f"{where}: interval {start:g}..{end:g} s is negative or reversed", _HINTS.get(fmt))
    return (start, end, _label(phone))


def _number(text: str, where: str, fmt: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AudiotokError(f"{where}: {text!r} is not a number", _HINTS[fmt]) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise AudiotokError(f"{where}: {text!r} is not a finite number", _HINTS[fmt])
    return value


def _content_lines(path: Path):
    """(where, fields) of the lines that carry data: blank lines and `#`/`;;` comments are skipped."""
    for number, line in enumerate(_decode(path).splitlines(), 1):
        if line.strip() and not line.startswith(("#", ";;")):
            yield f"{path}:{number}", line


def _read_keyed_lines(path: Path, fmt: str) -> Alignments:
    table: Alignments = {}
    for where, line in _content_lines(path):
        fields = line.split()
        if fmt == "ctm":
            if len(fields) not in (5, 6):
                raise AudiotokError(f"{where}: expected 5 or 6 fields, found {len(fields)}", _HINTS[fmt])
            key, start, duration, phone = fields[0], _number(fields[2], where, fmt), _number(fields[3], where, fmt), fields[4]
            end = start + duration
        else:
            if len(fields) != 4:
                raise AudiotokError(f"{where}: expected 4 fields, found {len(fields)}", _HINTS[fmt])
            key, start, end, phone = fields[0], _number(fields[1], where, fmt), _number(fields[2], where, fmt), fields[3]
        table.setdefault(key, []).append(_interval(start, end, phone, where, fmt))
    for intervals in table.values():
        intervals.sort()
    return table


def _read_lab(path: Path) -> list[Interval]:
    intervals = []
    for where, line in _content_lines(path):
        fields = line.split()
        if len(fields) < 3:  # HTK allows a score and a word after the label
            raise AudiotokError(f"{where}: expected `start end phone`, found {line.strip()!r}", _HINTS["lab"])
        start, end = (_number(f, where, "lab") / HTK_UNITS_PER_SECOND for f in fields[:2])
        full_context = _HTS_LABEL.match(fields[2])
        intervals.append(_interval(start, end, full_context.group(1) if full_context else fields[2], where, "lab"))
    return sorted(intervals)


def _read_speechbrain(path: Path) -> Alignments:
    table: Alignments = {}
    columns = None
    for where, line in _content_lines(path):
        cells = line.rstrip("\r\n").split("\t")
        if columns is None:
            if not set(SPEECHBRAIN_COLUMNS) <= set(cells):
                raise AudiotokError(f"{where}: the header does not name the columns {', '.join(SPEECHBRAIN_COLUMNS)}", _HINTS["speechbrain"])
            columns = {name: cells.index(name) for name in SPEECHBRAIN_COLUMNS}
            continue
        if len(cells) <= max(columns.values()):
            raise AudiotokError(f"{where}: expected at least {max(columns.values()) + 1} tab-separated fields, found {len(cells)}", _HINTS["speechbrain"])
        key = check_key(Path(cells[columns["file"]]).stem, where)
        rate = _number(cells[columns["sample_rate"]], where, "speechbrain")
        phones = cells[columns["phones"]].split()
        ends = [_number(e, where, "speechbrain") / rate for e in cells[columns["phone_end_samples"]].split()] if rate > 0 else []
        if rate <= 0 or len(phones) != len(ends):
            raise AudiotokError(f"{where}: {len(phones)} phones but {len(ends)} end samples (sample rate {rate:g})", _HINTS["speechbrain"])
        if key in table:
            raise AudiotokError(f"{where}: duplicate key {key!r}")
        # Each phone starts where the previous one ends; the first at 0.
        table[key] = [_interval(start, end, phone, where, "speechbrain") for start, end, phone in zip([0.0] + ends[:-1], ends, phones)]
    if columns is None:
        raise AudiotokError(f"{path}: empty alignment table")
    return table


# ---------------------------------------------------------------- TextGrid


class _Tokens:
    """The values of a TextGrid text file in order, with their line numbers for messages."""

    def __init__(self, path: Path):
        text = _decode(path)
        self.path = path
        self.items = []  # (kind, value, line)
        line = 1
        last = 0
        for match in _TEXTGRID_TOKEN.finditer(text):
            line += text.count("\n", last, match.start())
            last = match.start()
            string, flag, number = match.groups()
            if string is not None:
                self.items.append(("string", string.replace('""', '"'), line))
            elif flag is not None:
                self.items.append(("flag", flag, line))
            elif number is not None:
                self.items.append(("number", number, line))
        self.position = 0

    def next(self, kind: str, what: str):
        if self.position >= len(self.items):
            raise AudiotokError(f"{self.path}: ends early: expected {what}", "is it a complete Praat TextGrid (text format)?")
        found, value, line = self.items[self.position]
        if found != kind:
            raise AudiotokError(f"{self.path}:{line}: expected {what}, found {value!r}", "is it a Praat TextGrid (text format)?")
        self.position += 1
        return float(value) if kind == "number" else value

    def count(self, what: str) -> int:
        value = self.next("number", what)
        if value != int(value) or value < 0:
            raise AudiotokError(f"{self.path}: {what} is {value:g}, not a count")
        return int(value)


def read_textgrid(path: str | Path) -> list[Interval]:
    """The phone tier of a Praat TextGrid (long or short text format) as sorted intervals."""
    tokens = _Tokens(Path(path))
    # Older Praat versions wrote "ooTextFile short" for the short format.
    if not tokens.next("string", '"ooTextFile"').startswith("ooTextFile") or tokens.next("string", '"TextGrid"') != "TextGrid":
        raise AudiotokError(f"{path}: not a TextGrid in Praat's text format", "save it from Praat as a text file")
    tokens.next("number", "xmin")
    tokens.next("number", "xmax")
    if tokens.next("flag", "<exists>") != "<exists>":
        raise AudiotokError(f"{path}: the TextGrid has no tiers")
    tiers = {}
    for _ in range(tokens.count("the number of tiers")):
        kind = tokens.next("string", "a tier class")
        name = tokens.next("string", "a tier name")
        tokens.next("number", "tier xmin")
        tokens.next("number", "tier xmax")
        size = tokens.count(f"the size of tier {name!r}")
        if kind == "IntervalTier":
            intervals = [(tokens.next("number", "xmin"), tokens.next("number", "xmax"), tokens.next("string", "a label")) for _ in range(size)]
            tiers.setdefault(name, [_interval(s, e, label, f"{path} tier {name!r}", "textgrid") for s, e, label in intervals])
        elif kind == "TextTier":
            for _ in range(size):
                tokens.next("number", "a point time")
                tokens.next("string", "a point label")
        else:
            raise AudiotokError(f"{path}: unknown tier class {kind!r}")
    name = "phones" if "phones" in tiers else next((n for n in tiers if "phone" in n.lower()), None)
    if name is None:
        raise AudiotokError(f"{path}: no phone tier among the interval tiers {', '.join(repr(n) for n in tiers) or '(none)'}", 'name the phone tier "phones"')
    return sorted(tiers[name])
