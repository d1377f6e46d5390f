"""Audio sources: every way a command can be given a keyed table of recordings.

    data/train             a Kaldi data directory (wav.scp, optional segments)
    scp:wav.scp            `key path`, `key cmd |` or `key file.ark:offset` lines
    ark:FILE, ark:-, -     an archive of wav entries (what `resample ... ark:-` writes)
    tar:DIR|FILE|GLOB      WebDataset tar shards (a path ending in .tar works too)
    parquet:DIR|FILE|GLOB  Parquet shards with the audio inside, HF datasets' layout (io/parquet_audio.py;
                           a path ending in .parquet and a folder of them work too)
    lhotse:MANIFEST        a lhotse CutSet or RecordingSet (io/lhotse_io.py; a *cuts*.jsonl[.gz] or
                           *recordings*.jsonl[.gz] name is recognised without the prefix)
    jsonl:FILE             one JSON object a line with a key and an audio path
    a.wav b.flac ...       audio files, keyed by their name without the extension
    DIR                    a folder of audio files (searched recursively)

Errors in the table itself (a missing wav.scp, a duplicate or unsorted key)
stop the run; an item that cannot be read raises ItemError when loaded.
"""

import glob
import os
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from audiotok.errors import AudiotokError, ItemError, UsageError
from audiotok.io.ark import WavBytes, iter_ark, open_ark_input, read_ark_at
from audiotok.io.audio import AUDIO_EXTENSIONS, Audio, AudioInfo, AudioStream, decode, open_stream, probe
from audiotok.io.keys import KeyOrderChecker, c_order, check_key
from audiotok.io.specifiers import looks_like_specifier, parse_specifier
from audiotok.io.tables import iter_json_records, read_kaldi_lines
from audiotok.io.tar_shards import iter_shard

MAX_SEGMENT_OVERSHOOT = 0.5  # seconds a segment may run past its recording (Kaldi's default)
_ARK_OFFSET = re.compile(r"^(.+):(\d+)$")


@dataclass
class AudioItem:
    key: str
    origin: str  # where it comes from, for messages
    recording: str  # recording key (differs from key for segments)
    start: float = 0.0  # seconds into the recording
    end: float | None = None  # None: to the end of the recording
    metadata: dict = field(default_factory=dict)
    _read: Callable[[int | None], Audio] | None = None
    _probe: Callable[[], AudioInfo] | None = None
    path: str | None = None  # a plain audio file: a long one can be read block by block

    def load(self, channel: int | None = None) -> Audio:
        return self._read(channel)

    def stream(self, channel: int | None = None) -> AudioStream | None:
        """The recording block by block when it is a long plain file (audiotok.io.audio.long_seconds); None: load() it whole."""
        return None if self.path is None else open_stream(self.path, channel)

    def info(self) -> AudioInfo:
        """Header information without decoding where the source allows it."""
        if self._probe is not None:
            return self._probe()
        return self.load().info


class AudioSource:
    """An iterable of AudioItem with a name for messages."""

    def __init__(self, name: str, items: Callable[[], Iterator[AudioItem]], data_dir: Path | None = None):
        self.name = name
        self._items = items
        self.data_dir = data_dir

    def __iter__(self) -> Iterator[AudioItem]:
        return self._items()


# ---------------------------------------------------------------- wav.scp values


def _run_pipe(command: str) -> bytes:
    """Run a wav.scp `cmd |` value; only values that end in `|` ever reach a shell."""
    try:
        result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, stdin=subprocess.DEVNULL, check=False)
    except OSError as err:
        raise ItemError(f"cannot run command {command!r}: {err.strerror}") from None
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {tail[-1]}" if tail else ""
        raise ItemError(f"command failed with exit code {result.returncode}{detail} ({command})")
    return result.stdout


def _wav_entry(value, where: str) -> bytes:
    if not isinstance(value, WavBytes):
        raise ItemError(f"{where} is a matrix of shape {getattr(value, 'shape', '?')}, not audio")
    return bytes(value)


def scp_value_reader(value: str, where: str) -> tuple[Callable[[int | None], Audio], Callable[[], AudioInfo] | None]:
    """Loader (and header prober, for plain files) for one wav.scp value."""
    if value.endswith("|"):
        command = value[:-1].strip()
        return (lambda channel: decode(_run_pipe(command), channel)), None
    match = _ARK_OFFSET.match(value)
    if match and not os.path.exists(value) and os.path.isfile(match.group(1)):
        path, offset = match.group(1), int(match.group(2))

        def read_ark(channel):
            try:
                entry = read_ark_at(path, offset, where)
            except AudiotokError as err:
                raise ItemError(err.message) from None
            return decode(_wav_entry(entry, where), channel)

        return read_ark, None
    return (lambda channel: decode(value, channel)), (lambda: probe(value))


# ---------------------------------------------------------------- Kaldi data directories


def _scp_items(scp: Path) -> Iterator[AudioItem]:
    for number, (key, value) in read_kaldi_lines(scp, None):
        read, prober = scp_value_reader(value, f"{scp}:{number}")
        yield AudioItem(key, value, key, _read=read, _probe=prober, path=value if prober is not None else None)


def _segment_items(scp: Path, segments: Path) -> Iterator[AudioItem]:
    recordings = {key: value for _, (key, value) in read_kaldi_lines(scp, None)}
    cache: dict = {}

    def recording_audio(rec: str, channel: int | None) -> Audio:
        # Segments of one recording are usually consecutive: keep the last one decoded.
        if cache.get("id") != (rec, channel):
            cache.clear()
            read, _ = scp_value_reader(recordings[rec], f"{scp} ({rec})")
            cache["audio"] = read(channel)
            cache["id"] = (rec, channel)
        return cache["audio"]

    for number, (utt, rec, start_text, end_text) in read_kaldi_lines(segments, 4):
        where = f"{segments}:{number}"
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise AudiotokError(f"{where}: start and end must be numbers: {start_text!r} {end_text!r}") from None
        if start < 0 or (end != -1 and end <= start):
            raise AudiotokError(f"{where}: bad segment times {start_text} {end_text}", "need 0 <= start < end, or end -1 for the end of the recording")

        def read(channel, rec=rec, start=start, end=end):
            if rec not in recordings:
                raise ItemError(f"recording {rec!r} is not in {scp}")
            return cut_segment(recording_audio(rec, channel), start, None if end == -1 else end)

        yield AudioItem(utt, f"{rec} {start_text} {end_text}", rec, start, None if end == -1 else end, _read=read)


def cut_segment(audio: Audio, start: float, end: float | None) -> Audio:
    first = int(round(start * audio.rate))
    total = len(audio.samples)
    last = total if end is None else int(round(end * audio.rate))
    if first >= total:
        raise ItemError(f"segment starts at {start:.3f} s, after the recording ends ({total / audio.rate:.3f} s)")
    if last > total:
        if (last - total) / audio.rate > MAX_SEGMENT_OVERSHOOT:
            raise ItemError(f"segment ends at {end:.3f} s, {(last - total) / audio.rate:.3f} s after the recording ends")
        last = total
    samples = audio.samples[first:last]
    return Audio(samples, audio.rate, AudioInfo(audio.rate, audio.info.channels, len(samples), audio.info.format, audio.info.subtype))


def data_dir_source(directory: Path) -> AudioSource:
    scp = directory / "wav.scp"
    if not scp.is_file():
        raise AudiotokError(f"{directory} has no wav.scp", "give a Kaldi data directory, an scp:, ark: or tar: source, or audio files")
    segments = directory / "segments"
    if segments.is_file():
        return AudioSource(str(directory), lambda: _segment_items(scp, segments), data_dir=directory)
    return AudioSource(str(directory), lambda: _scp_items(scp), data_dir=directory)


# ---------------------------------------------------------------- archives, shards, manifests, files


def _ark_items(path: str) -> Iterator[AudioItem]:
    checker = KeyOrderChecker(path, sorted_required=False)
    stream = open_ark_input(path)
    try:
        for key, value in iter_ark(stream, "stdin" if path == "-" else path):
            checker.check(key, path)
            yield AudioItem(key, f"ark {path}", key, _read=lambda channel, v=value, k=key: decode(_wav_entry(v, f"entry {k!r}"), channel))
    finally:
        if path != "-":
            stream.close()


def _shard_paths(spec: str) -> list[str]:
    if os.path.isdir(spec):
        paths = sorted(glob.glob(os.path.join(spec, "*.tar")) + glob.glob(os.path.join(spec, "*.tar.gz")) + glob.glob(os.path.join(spec, "*.tgz")))
    elif any(ch in spec for ch in "*?["):
        paths = sorted(glob.glob(spec))
    else:
        paths = [spec] if os.path.exists(spec) else []
    if not paths:
        raise AudiotokError(f"no tar shards found at {spec}", "tar:DIR reads DIR/*.tar; tar:FILE.tar one shard")
    return paths


def _shard_items(spec: str, failures: list) -> Iterator[AudioItem]:
    checker = KeyOrderChecker(spec, sorted_required=False)
    for shard in _shard_paths(spec):
        try:
            for sample in iter_shard(shard):
                key = sample.key
                check_key(key, shard)
                checker.check(key, shard)
                yield AudioItem(
                    key, f"{shard}:{sample.audio_name or sample.key}", key, metadata=sample.metadata, _read=lambda channel, s=sample: _sample_audio(s, channel)
                )
        except (tarfile.TarError, EOFError, OSError) as err:
            # The samples before the damage were yielded; the shard itself counts as one failure.
            failures.append((os.path.basename(shard), f"unreadable tar shard {shard}: {err}"))


def _sample_audio(sample, channel):
    if sample.problems:
        raise ItemError("; ".join(sample.problems))
    if sample.audio is None:
        raise ItemError(f"sample has no audio member in {sample.shard}")
    return decode(sample.audio, channel)


def _parquet_source(spec: str, text: str, failures: list) -> "AudioSource":
    """Every shard's footer is checked before anything is read: a file that is not Parquet, or lacks the column, stops here."""
    from audiotok.io import parquet_audio

    parsed = parquet_audio.parse_spec(text)
    shards = [(path, parquet_audio.shard_layout(path, parsed)) for path in parquet_audio.shard_paths(parsed.pattern)]
    return AudioSource(spec, lambda: _parquet_items(spec, shards, failures))


def _parquet_items(spec: str, shards: list, failures: list) -> Iterator[AudioItem]:
    import pyarrow as pa

    from audiotok.io.parquet_audio import iter_rows

    checker = KeyOrderChecker(spec, sorted_required=False)
    for path, layout in shards:
        try:
            for row in iter_rows(path, layout):
                where = f"{path}:{row.row}"
                check_key(row.key, where)
                checker.check(row.key, where)
                yield AudioItem(row.key, where, row.key, metadata=row.metadata, _read=row.load)
        except (pa.ArrowException, OSError) as err:
            # The rows before the damage were yielded; the shard itself counts as one failure.
            failures.append((os.path.basename(path), f"unreadable Parquet shard {path}: {str(err).strip().splitlines()[0]}"))


_JSON_KEY_FIELDS = ("key", "id", "utt_id", "utt", "__key__")
_JSON_PATH_FIELDS = ("audio_path", "path", "audio", "wav", "audio_filepath")


def _jsonl_items(path: str) -> Iterator[AudioItem]:

    checker = KeyOrderChecker(path, sorted_required=False)
    for where, record in iter_json_records(path):
        audio_path = next((record[f] for f in _JSON_PATH_FIELDS if isinstance(record.get(f), str)), None)
        if audio_path is None:
            raise AudiotokError(f"{where}: no audio path field", f"name it one of {', '.join(_JSON_PATH_FIELDS)}")
        key = next((str(record[f]) for f in _JSON_KEY_FIELDS if record.get(f) is not None), None) or file_key(audio_path)
        check_key(key, where)
        checker.check(key, where)
        yield AudioItem(
            key, audio_path, key, metadata=record, _read=lambda channel, p=audio_path: decode(p, channel), _probe=lambda p=audio_path: probe(p), path=audio_path
        )


def file_key(path: str) -> str:
    """`dir/198-209-0000.hq.ogg` -> `198-209-0000.hq`: the name without its last extension."""
    return Path(path).stem


def _file_items(paths: list[str]) -> Iterator[AudioItem]:
    keyed = []
    for path in paths:
        key = file_key(path)
        check_key(key, path)
        keyed.append((key, path))
    keyed.sort(key=lambda kp: c_order(kp[0]))
    checker = KeyOrderChecker("the audio files given", sorted_required=False)
    for key, path in keyed:
        checker.check(key, path)
    for key, path in keyed:
        yield AudioItem(key, path, key, _read=lambda channel, p=path: decode(p, channel), _probe=lambda p=path: probe(p), path=path)


def _folder_files(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


# ---------------------------------------------------------------- resolution


def open_audio_source(specs: list[str] | str) -> tuple[AudioSource, list]:
    """Resolve command-line arguments to a source.

    Returns the source and a list that collects (name, reason) failures found
    while iterating that are not items of their own (a damaged tar shard).
    """
    specs = [specs] if isinstance(specs, str) else list(specs)
    failures: list = []
    if not specs:
        raise UsageError("no input given")
    if len(specs) > 1:
        for spec in specs:
            is_audio = os.path.isfile(spec) or Path(spec).suffix.lower() in AUDIO_EXTENSIONS
            if not is_audio or spec.endswith((".tar", ".tar.gz", ".tgz", ".parquet", ".jsonl.gz")) or looks_like_specifier(spec):
                raise UsageError(
                    f"several inputs must all be audio files; {spec!r} is not",
                    "give one table (data dir, scp:, ark:, tar:, parquet:, lhotse:) or a list of audio files",
                )
        return AudioSource(f"{len(specs)} files", lambda: _file_items(specs)), failures
    spec = specs[0]
    if spec.startswith("tar:"):
        return AudioSource(spec, lambda: _shard_items(spec[4:], failures)), failures
    if spec.startswith("jsonl:"):
        return AudioSource(spec, lambda: _jsonl_items(spec[6:])), failures
    if spec.startswith("parquet:"):
        return _parquet_source(spec, spec[8:], failures), failures
    if spec.startswith("lhotse:") or _lhotse_named(spec):
        from audiotok.io.lhotse_io import lhotse_source

        return lhotse_source(spec, spec.removeprefix("lhotse:")), failures
    if spec == "-" or looks_like_specifier(spec):
        parsed = parse_specifier(spec)
        if parsed.text:
            raise UsageError(f"{spec}: audio archives are binary; drop the ',t'")
        if parsed.scp is not None:
            scp = Path(parsed.scp)
            return AudioSource(spec, lambda: _scp_items(scp)), failures
        return AudioSource(spec, lambda: _ark_items(parsed.ark)), failures
    path = Path(spec)
    if path.is_dir():
        if (path / "wav.scp").exists():
            return data_dir_source(path), failures
        if glob.glob(os.path.join(spec, "*.tar")):
            return AudioSource(spec, lambda: _shard_items(spec, failures)), failures
        if glob.glob(os.path.join(glob.escape(spec), "*.parquet")):
            return _parquet_source(spec, spec, failures), failures
        files = _folder_files(path)
        if not files:
            raise AudiotokError(
                f"{spec} holds no wav.scp, no tar or Parquet shards and no audio files",
                "give a Kaldi data dir, a folder of audio files, or tar or Parquet shards",
            )
        return AudioSource(spec, lambda: _file_items(files)), failures
    if spec.endswith(".parquet"):
        return _parquet_source(spec, spec, failures), failures
    if spec.endswith((".tar", ".tar.gz", ".tgz")) or any(ch in spec for ch in "*?["):
        return AudioSource(spec, lambda: _shard_items(spec, failures)), failures
    if spec.endswith(".jsonl"):
        return AudioSource(spec, lambda: _jsonl_items(spec)), failures
    if path.name == "wav.scp" or spec.endswith(".scp"):
        return AudioSource(spec, lambda: _scp_items(path)), failures
    if path.suffix.lower() in AUDIO_EXTENSIONS or path.is_file():
        return AudioSource(spec, lambda: _file_items([spec])), failures
    raise AudiotokError(
        f"no such file or directory: {spec}",
        "inputs are data dirs, audio files, folders, scp:/ark: specifiers, tar:/jsonl: tables or - for stdin",
    )


def _lhotse_named(spec: str) -> bool:
    """A lhotse manifest recognised by its name: `*cuts*.jsonl[.gz]` or `*recordings*.jsonl[.gz]`.
    A plain `.jsonl` so named is one only when its first record is lhotse's (a jsonl: audio table stays one)."""
    name = os.path.basename(spec)
    if not name.endswith((".jsonl", ".jsonl.gz")) or not ("cuts" in name or "recordings" in name) or not os.path.isfile(spec):
        return False
    if name.endswith(".jsonl.gz"):
        return True
    from audiotok.io.lhotse_io import looks_like_lhotse

    return looks_like_lhotse(spec)
