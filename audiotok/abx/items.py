"""ABX items from phone alignments: one line per phone (or triphone) token, as ZeroSpeech's item files hold them.

An item is `file onset offset phone prev-phone next-phone speaker`. The rules are abkhazia's
`alignment2item`, which made the ZeroSpeech and Libri-light item files:

    phone      every phone of an utterance, with its neighbours as context; the first phone's
               previous and the last phone's next neighbour are SIL
    triphone   every phone that has two neighbours, its span running from the start of the
               previous phone to the end of the next one (the context column is the same)

An item is dropped when its phone or a context phone is in the exclusion set (silences and
non-speech by default), so no item spans a pause.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from audiotok.errors import AudiotokError, UsageError
from audiotok.units.alignments import Alignments

KINDS = ("phone", "triphone")
BOUNDARY = "SIL"  # the context of a phone at an utterance's edge
# Labels aligners give to silence and non-speech: MFA, Kaldi, HTK/HTS, TIMIT, and the empty interval.
SILENCES = frozenset({"sil", "SIL", "sp", "SP", "spn", "SPN", "<eps>", "<sil>", "pau", "h#", "#", "", "silence", "noise", "<unk>"})
ITEM_HEADER = "#file onset offset #phone prev-phone next-phone speaker"
_STRESS = re.compile(r"[012]$")


@dataclass(frozen=True)
class Item:
    file: str
    onset: float
    offset: float
    phone: str
    prev: str
    next: str
    speaker: str


def fold_phone(phone: str) -> str:
    """ARPAbet and TIMIT spellings of one phone made equal: lower case, no stress digit (AH1 -> ah)."""
    return _STRESS.sub("", phone).lower() if len(phone) > 1 else phone.lower()


def build_items(
    alignments: Alignments,
    speakers: Mapping[str, str],
    kind: str = "phone",
    exclude: Iterable[str] = SILENCES,
    phone_map: Mapping[str, str] | None = None,
    fold: bool = False,
) -> list[Item]:
    """Items of every aligned utterance, in the alignments' key order and time order."""
    if kind not in KINDS:
        raise UsageError(f"unknown item kind {kind!r}", f"choose one of {', '.join(KINDS)}")
    excluded = set(exclude)
    items = []
    for key, intervals in alignments.items():
        labels = [_relabel(phone, phone_map, fold) for _, _, phone in intervals]
        speaker = speakers[key]
        count = len(intervals)
        for i, (start, end, _) in enumerate(intervals):
            prev = labels[i - 1] if i > 0 else BOUNDARY
            nxt = labels[i + 1] if i + 1 < count else BOUNDARY
            if kind == "triphone":
                if i == 0 or i + 1 == count:
                    continue
                start, end = intervals[i - 1][0], intervals[i + 1][1]
            if excluded.isdisjoint((labels[i], prev, nxt)):
                items.append(Item(key, start, end, labels[i], prev, nxt, speaker))
    return items


def _relabel(phone: str, phone_map: Mapping[str, str] | None, fold: bool) -> str:
    if phone_map is not None:
        phone = phone_map.get(phone, phone)
    return fold_phone(phone) if fold and phone not in SILENCES else phone


def write_item_file(items: list[Item], path: str | Path) -> None:
    """The ZeroSpeech item file: a header line, then one space-separated item a line."""
    from audiotok.io.atomic import atomic_open

    with atomic_open(path, "w") as handle:
        handle.write(ITEM_HEADER + "\n")
        for item in items:
            handle.write(f"{item.file} {item.onset!r} {item.offset!r} {item.phone} {item.prev} {item.next} {item.speaker}\n")


def read_item_file(path: str | Path) -> list[Item]:
    """A ZeroSpeech item file (the header line, then `file onset offset phone prev next speaker` lines)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()[1:]
    except FileNotFoundError:
        raise AudiotokError(f"no such item file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise AudiotokError(f"cannot read {path}: {err}") from None
    items = []
    for number, line in enumerate(lines, 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 7:
            raise AudiotokError(f"{path}:{number}: expected 7 columns, found {len(fields)}", ITEM_HEADER)
        try:
            onset, offset = float(fields[1]), float(fields[2])
        except ValueError:
            raise AudiotokError(f"{path}:{number}: onset and offset must be seconds", ITEM_HEADER) from None
        items.append(Item(fields[0], onset, offset, fields[3], fields[4], fields[5], fields[6]))
    return items


def check_labels(items: list[Item]) -> None:
    """Item files are space-separated: a phone or speaker label holding a space cannot be written."""
    for item in items:
        for label in (item.file, item.phone, item.prev, item.next, item.speaker):
            if not label or any(c.isspace() for c in label):
                raise AudiotokError(f"{item.file}: label {label!r} is empty or holds a space", "map it to a single word with --phone-map")


# ---------------------------------------------------------------- speakers and phone maps


def speakers_of(keys: Iterable[str], utt2spk: str | None = None, pattern: str | None = None) -> tuple[dict[str, str], str]:
    """{utterance: speaker} from a Kaldi utt2spk file, a regular expression on the key (its first
    group, else the whole match), or, with neither, each utterance its own speaker; and how.
    Settings.check() refuses both at once, before any table is read."""
    keys = list(keys)
    if utt2spk is not None:
        table = read_two_columns(utt2spk, "utt2spk")
        missing = [key for key in keys if key not in table]
        if missing:
            raise AudiotokError(f"{utt2spk} has no speaker for {len(missing)} utterance(s): {', '.join(missing[:3])}", "add `utt speaker` lines for them")
        return {key: table[key] for key in keys}, f"speakers from {utt2spk}"
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise UsageError(f"--speaker-pattern {pattern!r} is not a regular expression: {err}") from None
        speakers = {}
        for key in keys:
            match = regex.search(key)
            if match is None:
                raise AudiotokError(f"--speaker-pattern {pattern!r} does not match the key {key!r}", "every key needs a speaker")
            speakers[key] = match.group(1) if regex.groups else match.group(0)
        return speakers, f"speakers from the keys by {pattern!r}"
    return {key: key for key in keys}, "no --utt2spk or --speaker-pattern: each utterance counts as its own speaker"


def read_two_columns(path: str, what: str) -> dict[str, str]:
    """`first second` lines (utt2spk, a phone map); one-line errors for anything else."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AudiotokError(f"no such {what} file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise AudiotokError(f"cannot read {path}: {err}") from None
    table = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2:
            raise AudiotokError(f"{path}:{number}: expected two columns, found {len(fields)}", f"a {what} line is `key value`")
        table[fields[0]] = fields[1]
    return table
