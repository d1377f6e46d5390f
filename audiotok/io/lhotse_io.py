"""lhotse manifests: cuts and recordings in as an audio source, tokens out as a cut field.

In: `lhotse:MANIFEST` (a CutSet or RecordingSet, `.jsonl` or `.jsonl.gz`, read lazily with
lhotse), or a file named `*cuts*.jsonl[.gz]` / `*recordings*.jsonl[.gz]` without the prefix.
One item a cut (a recording of a RecordingSet): key = its id, audio = what lhotse's own
`load_audio()` gives for it (the cut's offset and duration), channels as lhotse loads them
(a MonoCut has one; a MultiCut its `channel` list, in order), mixed to mono or picked with
--channel like any other input. The supervisions' text (joined by spaces in time order),
speaker and language (one value, or the distinct values in order when they differ) are the
item's metadata.

Out: `attach_tokens` writes a cuts manifest whose cuts carry their tokens as a custom
TemporalArray, stored as .npy files by lhotse's NumpyFilesWriter (lossless for integers,
no extra package; lilcom is lossy and meant for float features), so that
`cut.load_audio_tokens()` and `lhotse.dataset.collation.collate_custom_field(cuts,
"audio_tokens", pad_value=-1)` work with no glue code.
"""

import gzip
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError, ItemError

_LHOTSE_RECORD_FIELDS = ("sources", "recording", "recording_id", "tracks")  # a Recording has sources; a cut a recording (or tracks)


def looks_like_lhotse(path: str) -> bool:
    """Whether the first record of a JSONL file is a lhotse Recording or cut."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "null")
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(first, dict) and "id" in first and any(name in first for name in _LHOTSE_RECORD_FIELDS)


def _open_manifest(path: str):
    """The manifest, read lazily; a file that is no CutSet or RecordingSet is one error."""
    from lhotse import RecordingSet
    from lhotse.cut import CutSet
    from lhotse.serialization import load_manifest_lazy

    if not os.path.isfile(path):
        raise AudiotokError(f"no such lhotse manifest: {path}", "lhotse:FILE.jsonl.gz reads a CutSet or RecordingSet")
    if not path.endswith((".jsonl", ".jsonl.gz")):
        raise AudiotokError(f"{path}: a lhotse manifest is read here as JSONL (.jsonl or .jsonl.gz)", "save it with CutSet.to_file('cuts.jsonl.gz')")
    try:
        manifest = load_manifest_lazy(path)
    except Exception as err:  # noqa: BLE001 - lhotse raises many kinds for a file that is not its own
        raise AudiotokError(f"{path} is not a lhotse manifest: {_short(err)}", "give a CutSet or RecordingSet saved as .jsonl or .jsonl.gz") from None
    if manifest is not None and not isinstance(manifest, (CutSet, RecordingSet)):
        raise AudiotokError(f"{path} is a lhotse {type(manifest).__name__}, which holds no audio", "give a CutSet or RecordingSet")
    return manifest


def _short(err: Exception) -> str:
    """The first line; lhotse's AudioLoadingError puts the first backend's reason on the next line."""
    lines = str(err).strip().splitlines()
    if not lines:
        return type(err).__name__
    return f"{lines[0]} {lines[1]}" if lines[0].endswith("Details:") and len(lines) > 1 else lines[0]


def _missing_file(entry) -> str | None:
    """The first audio file of a cut's (or a recording's) sources that does not exist here."""
    recording = entry if hasattr(entry, "sources") else getattr(entry, "recording", None)
    for source in getattr(recording, "sources", None) or []:
        if source.type == "file" and not os.path.isfile(source.source):
            return source.source
    return None


def _metadata(cut) -> dict:
    """text, speaker and language of the cut's supervisions (none for a Recording)."""
    supervisions = sorted(getattr(cut, "supervisions", None) or [], key=lambda s: s.start)
    metadata: dict = {}
    texts = [s.text for s in supervisions if s.text]
    if texts:
        metadata["text"] = " ".join(texts)
    for name in ("speaker", "language"):
        values = list(dict.fromkeys(getattr(s, name) for s in supervisions if getattr(s, name)))
        if values:
            metadata[name] = values[0] if len(values) == 1 else values
    return metadata


def _loader(entry, rate: int):
    """load(channel) for a cut or a recording: lhotse's samples [channels, frames], as audiotok.io.audio.Audio."""

    def load(channel: int | None):
        from audiotok.io.audio import Audio, AudioInfo, check_samples, select_channel

        missing = _missing_file(entry)
        if missing is not None:
            raise ItemError(f"no such file: {missing}")
        try:
            samples = entry.load_audio()
        except Exception as err:  # noqa: BLE001 - lhotse and its backends raise many kinds
            raise ItemError(f"lhotse cannot load the audio: {_short(err)}") from None
        frames = np.ascontiguousarray(np.atleast_2d(samples).T, dtype=np.float32)
        check_samples(frames)
        info = AudioInfo(rate, frames.shape[1], frames.shape[0], "LHOTSE", "FLOAT")
        return Audio(select_channel(frames, channel), rate, info)

    return load


def _channel_count(entry) -> int:
    channels = getattr(entry, "channel_ids", None)  # a Recording
    if channels is None:
        channel = getattr(entry, "channel", 0)  # a MonoCut: an int; a MultiCut: a list
        channels = channel if isinstance(channel, list) else [channel]
    return len(channels)


def _probe(entry, rate: int):
    from audiotok.io.audio import AudioInfo

    return lambda: AudioInfo(rate, _channel_count(entry), entry.num_samples, "LHOTSE", "FLOAT")


def iter_items(spec: str, path: str) -> Iterator:
    from audiotok.io.audio_table import AudioItem
    from audiotok.io.keys import KeyOrderChecker, check_key

    manifest = _open_manifest(path)
    if manifest is None:
        return
    checker = KeyOrderChecker(spec, sorted_required=False)
    for entry in manifest:
        key = entry.id
        check_key(key, f"{path} ({key!r})")
        checker.check(key, path)
        rate = entry.sampling_rate
        recording = getattr(entry, "recording_id", None) or key
        start = float(getattr(entry, "start", 0.0))
        end = start + float(entry.duration)
        yield AudioItem(key, f"{path}:{key}", recording, start, end, metadata=_metadata(entry), _read=_loader(entry, rate), _probe=_probe(entry, rate))


def lhotse_source(spec: str, path: str):
    """The manifest as an AudioSource; checked (its first record) before anything is read."""
    from audiotok.io.audio_table import AudioSource

    _open_manifest(path)
    return AudioSource(spec, lambda: iter_items(spec, path))


# ---------------------------------------------------------------- tokens out


@dataclass
class AttachReport:
    """What attach_tokens wrote: cuts with tokens, and the ids it could not give any."""

    written: int = 0
    without_tokens: list[str] = field(default_factory=list)  # cuts of the manifest with no tokens given
    unused_keys: list[str] = field(default_factory=list)  # tokens whose key is no cut of the manifest
    cut_short: list[str] = field(default_factory=list)  # frame_rate given: load_<field>() returns fewer frames than stored
    storage_path: str = ""


def default_storage_path(out_path: str | os.PathLike, field_name: str) -> Path:
    """`DIR/cuts_tokens.jsonl.gz` -> `DIR/cuts_tokens_audio_tokens/`: where the .npy files go."""
    out = Path(out_path)
    stem = out.name.split(".jsonl")[0] if ".jsonl" in out.name else out.stem
    return out.with_name(f"{stem}_{field_name}")


def attach_tokens(
    cuts_manifest,
    tokens: Mapping[str, np.ndarray],
    out_path: str | os.PathLike,
    field: str = "audio_tokens",
    frame_rate: float | None = None,
    storage_path: str | os.PathLike | None = None,
) -> AttachReport:
    """Write `out_path` (a cuts manifest, .jsonl or .jsonl.gz): the cuts of `cuts_manifest` (a
    CutSet or the path of one) in order, each carrying `tokens[cut.id]` (frames first: [T] or
    [T, codebooks]) as the custom field `field`, a lhotse TemporalArray stored as one .npy
    file a cut under `storage_path` (default: beside out_path, `NAME_FIELD/`).

    frame_rate: token frames a second. Given, it is the array's frame shift (1 / frame_rate),
    so lhotse's truncate/pad/slicing of the cut apply to the tokens; a cut whose span holds
    fewer frames at that rate than its tokens (lhotse then loads the first frames only) is
    listed in `cut_short`. None: the tokens evenly span the cut (frame shift = duration / T),
    so `cut.load_<field>()` gives exactly the tokens stored.

    Cuts with no tokens are written unchanged and listed in `without_tokens`; tokens whose key
    is no cut are listed in `unused_keys`. The manifest is written to a temporary file and
    renamed into place: a reader never sees half of one.
    """
    from lhotse.array import seconds_to_frames
    from lhotse.cut import CutSet
    from lhotse.features.io import NumpyFilesWriter

    from audiotok.io.atomic import tmp_path_for

    if frame_rate is not None and not frame_rate > 0:
        raise AudiotokError(f"frame_rate {frame_rate}: must be > 0 frames a second")
    if isinstance(cuts_manifest, (str, os.PathLike)):
        cuts = _open_manifest(os.fspath(cuts_manifest))
        if cuts is not None and not isinstance(cuts, CutSet):
            raise AudiotokError(f"{cuts_manifest} is a RecordingSet", "tokens are attached to cuts: CutSet.from_manifests(recordings=...).to_file(...)")
        cuts = cuts if cuts is not None else CutSet()
    else:
        cuts = cuts_manifest
    out_path = Path(out_path)
    if not out_path.name.endswith((".jsonl", ".jsonl.gz")):
        raise AudiotokError(f"{out_path}: a cuts manifest is written as .jsonl or .jsonl.gz")
    storage = Path(storage_path) if storage_path is not None else default_storage_path(out_path, field)
    report = AttachReport(storage_path=str(storage))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    # lhotse picks gzip by the name's suffix: the temporary name keeps it.
    tmp = tmp_path_for(out_path)
    tmp = tmp.with_name(f".{tmp.name}{'.jsonl.gz' if out_path.name.endswith('.gz') else '.jsonl'}")
    try:
        with NumpyFilesWriter(storage) as arrays, CutSet.open_writer(tmp, overwrite=True) as writer:
            for cut in cuts:
                value = tokens.get(cut.id)
                if value is None:
                    report.without_tokens.append(cut.id)
                    writer.write(cut)
                    continue
                seen.add(cut.id)
                value = np.asarray(value)
                if value.ndim == 0 or len(value) == 0:
                    report.without_tokens.append(cut.id)
                    writer.write(cut)
                    continue
                shift = 1.0 / frame_rate if frame_rate is not None else cut.duration / len(value)
                if frame_rate is not None and seconds_to_frames(cut.duration, shift) < len(value):
                    report.cut_short.append(cut.id)
                array = arrays.store_array(cut.id, value, frame_shift=shift, temporal_dim=0, start=cut.start)
                writer.write(cut.with_custom(field, array))
                report.written += 1
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    report.unused_keys = sorted(set(tokens) - seen)
    return report
