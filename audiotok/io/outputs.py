"""Where commands write: audio tables (archives or a directory of files) and text tables.

Every file output is atomic (`.tmp` then rename) and finished outputs carry a
`.done` marker with the run's signature, so re-running the same command
skips them unless --force. A directory output also resumes a killed run:
each audio file is renamed into place when complete, so files present are
finished ones.
"""

import contextlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from audiotok import __version__
from audiotok.errors import AlreadyDone, AudiotokError, ItemError, UsageError
from audiotok.io.ark import AudioArkWriter
from audiotok.io.atomic import atomic_open, atomic_write_bytes, atomic_write_text, install, tmp_path_for
from audiotok.io.audio import encode, encode_blocks
from audiotok.io.keys import c_order, safe_file_name
from audiotok.io.locks import claim_output
from audiotok.io.markers import DoneMarker, RunMarker
from audiotok.io.specifiers import looks_like_specifier, parse_specifier

log = logging.getLogger(__name__)

AUDIO_FORMATS = {"flac": "FLAC", "wav": "WAV", "ogg": "OGG"}
SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "VORBIS")
# Files of a Kaldi data directory keyed by utterance that stay true after audio processing.
DATA_DIR_FILES = ("text", "utt2spk", "utt2lang", "utt2gender", "utt2category")


def make_signature(command: str, **arguments) -> dict:
    """What identifies a run: its command, arguments that change the output, and the version."""
    return {"command": command, "arguments": arguments, "audiotok": __version__}


class AudioSink:
    resumable = False

    def open(self) -> "AudioSink":
        return self

    def already_done(self, key: str) -> bool:
        return False

    def write(self, key: str, samples: np.ndarray, rate: int) -> None:
        raise NotImplementedError

    def write_blocks(self, key: str, blocks, rate: int) -> None:
        """A long recording block by block: the same bytes as write() on the blocks joined."""
        self.write(key, np.concatenate(list(blocks)), rate)

    def close(self, completed: bool) -> None:
        """Commit what was written; completed: the input was read to its end (items may have failed)."""

    def mark_done(self) -> None:
        """Record that the run succeeded, so the same command skips it next time."""


class ArkSink(AudioSink):
    def __init__(self, ark: str, scp: str | None, subtype: str, signature: dict):
        self.subtype = subtype
        self.signature = signature
        self.ark, self.scp = ark, scp
        if ark == "-":
            self.stream = sys.stdout.buffer
            self.scp_stream = None
        else:
            claim_output(ark)
            Path(ark).parent.mkdir(parents=True, exist_ok=True)
            self.stream = open(tmp_path_for(ark), "wb")
            self.scp_stream = None
            if scp:
                Path(scp).parent.mkdir(parents=True, exist_ok=True)
                self.scp_stream = open(tmp_path_for(scp), "w", encoding="utf-8")
        self.writer = AudioArkWriter(self.stream, ark, self.scp_stream)

    def write(self, key, samples, rate):
        self.writer.write(key, encode(samples, rate, "WAV", self.subtype))
        if self.ark == "-":
            self.stream.flush()  # a reader downstream in a pipe gets each item at once

    def write_blocks(self, key, blocks, rate):
        with tempfile.TemporaryFile() as wav:
            encode_blocks(wav, blocks, rate, "WAV", self.subtype)
            wav.seek(0)
            self.writer.write(key, wav)
        if self.ark == "-":
            self.stream.flush()

    def close(self, completed):
        if self.ark == "-":
            self.stream.flush()
            return
        self.stream.close()
        if self.scp_stream:
            self.scp_stream.close()
        if not completed:
            for path in (self.ark, self.scp):
                if path:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp_path_for(path))
            return
        DoneMarker(self.ark, directory=False).clear()
        install(tmp_path_for(self.ark), self.ark)
        if self.scp:
            install(tmp_path_for(self.scp), self.scp)

    def mark_done(self):
        if self.ark != "-":
            DoneMarker(self.ark, directory=False).write(self.signature)


class DirectorySink(AudioSink):
    """OUT/audio/KEY.EXT files plus OUT/wav.scp; resumes a killed run with the same signature."""

    resumable = True

    def __init__(self, out: str, audio_format: str, subtype: str, signature: dict, force: bool, source_dir: Path | None):
        self.out = Path(out)
        self.audio_dir = self.out / "audio"
        self.format = AUDIO_FORMATS[audio_format]
        self.extension = audio_format
        self.subtype = subtype
        self.signature = signature
        self.source_dir = source_dir
        self.written: dict[str, str] = {}
        run = RunMarker(self.out, directory=True)
        self.resuming = run.resume(signature, force)
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        DoneMarker(self.out, directory=True).clear()
        run.write(signature)

    def _path(self, key: str) -> Path:
        name = safe_file_name(key)
        if name is None:
            raise ItemError(f"key {key!r} cannot name a file (it has a '/' or starts with '.')")
        return self.audio_dir / f"{name}.{self.extension}"

    def already_done(self, key):
        if not self.resuming:
            return False
        path = self._path(key)
        if path.is_file():
            self.written[key] = str(path.resolve())
            return True
        return False

    def write(self, key, samples, rate):
        path = self._path(key)
        atomic_write_bytes(path, encode(samples, rate, self.format, self.subtype))
        self.written[key] = str(path.resolve())

    def write_blocks(self, key, blocks, rate):
        if self.format == "OGG":  # Vorbis bytes depend on how the encoder is fed: encode it whole
            return super().write_blocks(key, blocks, rate)
        path = self._path(key)
        with atomic_open(path, "wb") as handle:
            encode_blocks(handle, blocks, rate, self.format, self.subtype)
        self.written[key] = str(path.resolve())

    def close(self, completed):
        if not completed:
            return
        keys = sorted(self.written, key=c_order)
        atomic_write_text(self.out / "wav.scp", "".join(f"{k} {self.written[k]}\n" for k in keys))
        if self.source_dir is not None:
            copy_data_dir_files(self.source_dir, self.out, set(keys))

    def mark_done(self):
        DoneMarker(self.out, directory=True).write(self.signature)
        RunMarker(self.out, directory=True).clear()  # finished: nothing left to resume


def copy_data_dir_files(source: Path, target: Path, keys: set[str]) -> None:
    """Carry text, utt2spk, ... over to a new data dir, keeping the lines of `keys`; rebuild spk2utt."""
    utt2spk = []
    for name in DATA_DIR_FILES:
        src = source / name
        if not src.is_file() or src.resolve() == (target / name).resolve():
            continue
        lines = [line for line in src.read_text(encoding="utf-8").splitlines() if line.split(maxsplit=1)[:1] and line.split(maxsplit=1)[0] in keys]
        atomic_write_text(target / name, "".join(line + "\n" for line in lines))
        if name == "utt2spk":
            utt2spk = [line.split() for line in lines]
    if utt2spk:
        speakers: dict[str, list[str]] = {}
        for utt, spk in ((p[0], p[1]) for p in utt2spk if len(p) >= 2):
            speakers.setdefault(spk, []).append(utt)
        atomic_write_text(target / "spk2utt", "".join(f"{s} {' '.join(speakers[s])}\n" for s in sorted(speakers, key=c_order)))


def check_audio_format(audio_format: str, subtype: str) -> None:
    if audio_format not in AUDIO_FORMATS:
        raise UsageError(f"unknown audio format {audio_format!r}", f"choose one of {', '.join(AUDIO_FORMATS)}")
    import soundfile as sf

    if not sf.check_format(AUDIO_FORMATS[audio_format], subtype):
        raise UsageError(f"{audio_format} files cannot hold {subtype} samples", "FLAC takes PCM_16/PCM_24, OGG takes VORBIS")


def open_audio_sink(spec: str, signature: dict, force: bool, audio_format: str = "flac", subtype: str = "PCM_16", source_dir: Path | None = None) -> AudioSink:
    """An archive (`ark:-`, `ark:F`, `ark,scp:A,S`) or a directory of audio files (any other path).

    Raises AlreadyDone when a finished output with the same signature exists.
    """
    if spec == "-" or looks_like_specifier(spec):
        parsed = parse_specifier(spec, writing=True)
        if parsed.text:
            raise UsageError(f"{spec}: audio archives are binary; drop the ',t'")
        if parsed.ark != "-" and not force and DoneMarker(parsed.ark, directory=False).matches(signature):
            raise AlreadyDone(parsed.ark)
        import soundfile as sf

        if not sf.check_format("WAV", subtype):
            raise UsageError(f"wav archive entries cannot hold {subtype} samples")
        return ArkSink(parsed.ark, parsed.scp, subtype, signature)
    if os.path.isfile(spec):
        raise UsageError(f"output {spec!r} is a file", "audio goes to a directory (DIR) or an archive (ark:FILE, ark,scp:A,S, ark:-)")
    check_audio_format(audio_format, subtype)
    if not force and DoneMarker(spec, directory=True).matches(signature):
        raise AlreadyDone(spec)
    claim_output(spec, directory=True)
    if force and Path(spec, "audio").is_dir():
        shutil.rmtree(Path(spec, "audio"))
    return DirectorySink(spec, audio_format, subtype, signature, force, source_dir)


class TextOutput:
    """A text table: `-` (stdout, line by line) or a file (`FILE` or `ark,t:FILE`), written atomically.

    Use as a context manager; the file is committed on leaving the block
    without an exception, and `mark_done()` records a successful run.
    """

    def __init__(self, spec: str, signature: dict, force: bool):
        if spec.startswith("ark,t:"):
            spec = spec[len("ark,t:") :]
        elif spec != "-" and looks_like_specifier(spec):
            raise UsageError(f"{spec}: this output is a text table", "give a file name, ark,t:FILE, or - for stdout")
        self.spec = spec
        self.signature = signature
        self.marker = None if spec == "-" else DoneMarker(spec, directory=False)
        if self.marker and not force and self.marker.matches(signature):
            raise AlreadyDone(spec)
        claim_output(spec)
        self._context = None

    def __enter__(self):
        if self.spec == "-":
            return sys.stdout
        self.marker.clear()
        self._context = atomic_open(self.spec, "w", encoding="utf-8")
        return self._context.__enter__()

    def __exit__(self, *exc_info):
        if self._context is None:
            sys.stdout.flush()
            return False
        return self._context.__exit__(*exc_info)

    # The engine's sink interface: a completed run commits the file, an interrupted one drops it.
    def open(self):
        self.handle = self.__enter__()
        return self.handle

    def close(self, completed: bool) -> None:
        if completed:
            self.__exit__(None, None, None)
        else:
            self.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)

    def write_line(self, line: str) -> None:
        self.handle.write(line + "\n")
        if self.spec == "-":
            self.handle.flush()

    def mark_done(self) -> None:
        if self.marker:
            self.marker.write(self.signature)


class KeyFilesSink:
    """A directory of per-key files (`DIR/KEY.npy`, `DIR/KEY.wav`, ...), each written atomically,
    with the run's DoneMarker once the run succeeds."""

    def __init__(self, directory: str, signature: dict, force: bool):
        self.directory, self.signature = Path(directory), signature
        self.marker = DoneMarker(self.directory, directory=True)
        if not force and self.marker.matches(signature):
            raise AlreadyDone(directory)
        claim_output(directory, directory=True)

    def open(self) -> "KeyFilesSink":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.marker.clear()
        return self

    def path(self, key: str, suffix: str) -> Path:
        name = safe_file_name(key)
        if name is None:
            raise ItemError(f"key {key!r} cannot name a file")
        return self.directory / f"{name}{suffix}"

    def write_bytes(self, key: str, suffix: str, data: bytes) -> None:
        atomic_write_bytes(self.path(key, suffix), data)

    def close(self, completed: bool) -> None:
        pass  # every file is in place as soon as it is written

    def mark_done(self) -> None:
        self.marker.write(self.signature)


def check_not_same(inputs: list[str], output: str) -> None:
    for spec in inputs:
        with contextlib.suppress(OSError):
            if os.path.exists(output) and os.path.samefile(spec, output):
                raise AudiotokError(f"output {output} is the input", "write to a new directory or file")


class MatrixSink:
    """Feature matrices to `ark:-`, `ark:F`, `ark,t:F` or `ark,scp:A,S`.

    A file output grows as `A.partial` with an index of finished entries
    (`A.partial.idx`), so a killed run resumes where it stopped: the same
    command skips the indexed keys and appends the rest. When the input is
    done, the archive is renamed into place and its scp written.
    """

    def __init__(self, spec: str, signature: dict, force: bool, recipe: dict | None = None):
        parsed = parse_specifier(spec, writing=True)
        self.ark, self.scp, self.text = parsed.ark, parsed.scp, parsed.text
        self.signature, self.recipe = signature, recipe
        self.done: dict[str, int] = {}  # key -> offset of its value in the archive
        if self.ark == "-":
            self.stream = sys.stdout.buffer
            return
        if not force and DoneMarker(self.ark, directory=False).matches(signature):
            raise AlreadyDone(self.ark)
        claim_output(self.ark)
        Path(self.ark).parent.mkdir(parents=True, exist_ok=True)
        self.partial = Path(self.ark + ".partial")
        self.index = Path(self.ark + ".partial.idx")
        self.run = RunMarker(self.ark, directory=False)
        end = 0
        if self.run.resume(signature, force) and self.partial.exists() and self.index.exists():
            size = self.partial.stat().st_size
            for line in self.index.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) == 3 and int(parts[2]) <= size:  # an entry written in full
                    self.done[parts[0]] = int(parts[1])
                    end = int(parts[2])
            if self.done:
                log.info("resuming %s: %d entries already written", self.ark, len(self.done))
        mode = "r+b" if end else "wb"
        self.stream = open(self.partial, mode)
        self.stream.truncate(end)
        self.stream.seek(end)
        self.index_stream = open(self.index, "w", encoding="utf-8")
        for key, offset in self.done.items():  # rewrite only complete entries
            self.index_stream.write(f"{key} {offset} {end}\n")
        self.run.write(signature)
        DoneMarker(self.ark, directory=False).clear()

    def open(self) -> "MatrixSink":
        return self

    def already_done(self, key: str) -> bool:
        return key in self.done

    def encode(self, matrix: np.ndarray) -> bytes:
        """The bytes of one entry's value: a float32 Kaldi matrix or vector, binary or text."""
        from kaldiio.matio import write_array, write_array_ascii

        body = io.BytesIO()
        (write_array_ascii if self.text else write_array)(body, np.ascontiguousarray(matrix, dtype=np.float32))
        return body.getvalue()  # a text value ends its line: no blank line, which kaldiio would read as a key

    def write(self, key: str, matrix: np.ndarray) -> None:
        prefix = f"{key} ".encode()
        entry = prefix + self.encode(matrix)
        self.stream.write(entry)
        self.stream.flush()
        if self.ark == "-":
            return
        self.done[key] = self.stream.tell() - len(entry) + len(prefix)
        self.index_stream.write(f"{key} {self.done[key]} {self.stream.tell()}\n")
        self.index_stream.flush()

    def close(self, completed: bool) -> None:
        if self.ark == "-":
            self.stream.flush()
            return
        self.stream.close()
        self.index_stream.close()
        if not completed:
            return  # the partial archive and its index stay for a resumed run
        install(self.partial, self.ark)
        if self.scp:
            atomic_write_text(self.scp, "".join(f"{key} {self.ark}:{offset}\n" for key, offset in self.done.items()))
        from audiotok.io.recipes import recipe_sidecar

        if self.recipe is not None:
            for path in filter(None, (self.ark, self.scp)):
                atomic_write_text(recipe_sidecar(path), json.dumps(self.recipe, indent=1, sort_keys=True) + "\n")
        with contextlib.suppress(FileNotFoundError):
            self.index.unlink()
        self.run.clear()

    def mark_done(self) -> None:
        if self.ark != "-":
            DoneMarker(self.ark, directory=False).write(self.signature)
