"""Decoding audio with soundfile: any format libsndfile reads, any bit depth and rate.

Every failure becomes an `ItemError` with a one-line reason, so a corpus
with a bad file loses that file and nothing else.
"""

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from audiotok.errors import ItemError
from audiotok.io.c_stderr import decoder_messages_logged, may_be_mp3
from audiotok.signals import deferred

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64", ".sph", ".nist")


@dataclass(frozen=True)
class AudioInfo:
    """What the source holds, before any channel mixing."""

    rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


@dataclass
class Audio:
    samples: np.ndarray  # float32, 1-D, mono
    rate: int
    info: AudioInfo

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def select_channel(data: np.ndarray, channel: int | None) -> np.ndarray:
    """Mix `data` [frames, channels] to mono, or pick 0-based `channel`."""
    if channel is None:
        if data.shape[1] == 1:
            return np.ascontiguousarray(data[:, 0])
        return data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if not 0 <= channel < data.shape[1]:
        raise ItemError(f"has {data.shape[1]} channel(s), --channel {channel} does not exist")
    return np.ascontiguousarray(data[:, channel])


def _declared_wav_frames(head: bytes, total_size: int) -> int | None:
    """Frames a RIFF/WAVE header promises, when the data chunk overruns the file (truncation)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block_align = 12, None
    while pos + 8 <= len(head):
        chunk_id, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk_id == b"fmt " and pos + 24 <= len(head):
            block_align = struct.unpack("<H", head[pos + 20 : pos + 22])[0]
        if chunk_id == b"data":
            available = total_size - (pos + 8)
            # 0 and 0xFFFFFFFF mark streamed headers whose size was never filled in.
            if size in (0, 0xFFFFFFFF) or size <= available or not block_align:
                return None
            return size // block_align
        pos += 8 + size + (size & 1)
    return None


def check_samples(data: np.ndarray) -> None:
    if data.shape[0] == 0:
        raise ItemError("empty audio (0 samples)")
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise ItemError(f"{bad} non-finite sample(s) (NaN or Inf)")


def decode(source: str | os.PathLike | bytes, channel: int | None = None) -> Audio:
    """Decode a file path or the bytes of an audio file to mono float32."""
    is_path = not isinstance(source, (bytes, bytearray, memoryview))
    if is_path:
        try:
            size = os.path.getsize(source)
        except FileNotFoundError:
            raise ItemError(f"no such file: {os.fspath(source)}") from None
        except OSError as err:
            raise ItemError(f"cannot read {os.fspath(source)}: {err.strerror}") from None
        if size == 0:
            raise ItemError(f"empty file: {os.fspath(source)}")
    elif len(source) == 0:
        raise ItemError("empty input (0 bytes)")
    # Bytes are read through Python callbacks from C, which a signal must not cut (audiotok.signals);
    # libmpg123 prints notes of its own on stderr: they are logged, naming the file.
    held = contextlib.nullcontext() if is_path else deferred()
    messages = decoder_messages_logged(os.fspath(source) if is_path else "audio bytes") if may_be_mp3(source) else contextlib.nullcontext()
    with held, messages:
        try:
            handle = sf.SoundFile(source if is_path else io.BytesIO(source))
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as err:
            raise ItemError(f"cannot decode audio: {_short(err)}") from None
        with handle:
            header_frames = handle.frames
            info = AudioInfo(handle.samplerate, handle.channels, header_frames, handle.format, handle.subtype)
            try:
                data = handle.read(dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise ItemError(f"cannot decode audio (corrupt or truncated): {_short(err)}") from None
    if is_path:
        with open(source, "rb") as raw:
            declared = _declared_wav_frames(raw.read(4096), size)
        if declared is not None and declared > data.shape[0]:
            raise ItemError(f"truncated file: header promises {declared} samples, file holds {data.shape[0]}")
    # Compressed formats report their length from headers (MP3 Xing, Ogg); decoding far
    # fewer frames than promised means the file was cut short.
    if info.format in ("MP3", "OGG") and header_frames > 0 and data.shape[0] < 0.99 * header_frames - 2048:
        raise ItemError(f"truncated file: header promises {header_frames} samples, decoded {data.shape[0]}")
    check_samples(data)
    info = AudioInfo(info.rate, info.channels, data.shape[0], info.format, info.subtype)
    return Audio(select_channel(data, channel), info.rate, info)


def probe(path: str | os.PathLike) -> AudioInfo:
    """Header-only information about an audio file (no decoding)."""
    try:
        if os.path.getsize(path) == 0:
            raise ItemError(f"empty file: {os.fspath(path)}")
        i = sf.info(os.fspath(path))
    except FileNotFoundError:
        raise ItemError(f"no such file: {os.fspath(path)}") from None
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ItemError(f"cannot decode audio: {_short(err)}") from None
    if i.frames == 0:
        raise ItemError("empty audio (0 samples)")
    if i.format == "MP3":
        # An MP3 header's length is an estimate (encoder delay and padding): count by decoding.
        return decode(path).info
    return AudioInfo(i.samplerate, i.channels, i.frames, i.format, i.subtype)


def encode(samples: np.ndarray, rate: int, format: str = "WAV", subtype: str = "PCM_16") -> bytes:
    """The bytes of an audio file holding `samples` (float in [-1, 1])."""
    buffer = io.BytesIO()
    with deferred():  # soundfile writes to the buffer through Python callbacks from C
        sf.write(buffer, samples, rate, format=format, subtype=subtype)
    return buffer.getvalue()


def encode_blocks(handle, blocks: Iterator[np.ndarray], rate: int, format: str = "WAV", subtype: str = "PCM_16") -> None:
    """Write an audio file to the open binary `handle` block by block: the bytes `encode` gives for
    the blocks joined (WAV and FLAC; Ogg Vorbis's encoder depends on how it is fed)."""
    # soundfile writes to a file object through Python callbacks from C: no signal may cut one (audiotok.signals).
    with deferred():
        out = sf.SoundFile(handle, "w", rate, 1, subtype, format=format)
    try:
        for block in blocks:
            with deferred():
                out.write(block)
    finally:
        with deferred():
            out.close()


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    # libsndfile repeats the path ("Error opening 'x': ..."); keep what follows.
    if text.startswith("Error opening") and ": " in text:
        text = text.split(": ", 1)[1]
    # What libsndfile says of an existing file whose format no decoder recognises.
    if text.startswith("File does not exist or is not a regular file"):
        text = "not a format libsndfile recognises (or a damaged header)"
    return text


# ---------------------------------------------------------------- long recordings, block by block

LONG_SECONDS_VARIABLE = "AUDIOTOK_LONG_SECONDS"
LONG_SECONDS = 600.0  # recordings over this are read block by block (outputs are the same)
BLOCK_SECONDS = 30.0  # audio read at once from a long recording
STREAMABLE_FORMATS = ("WAV", "WAVEX", "FLAC", "W64", "RF64", "AIFF", "AU", "CAF", "NIST")  # exact header lengths


def long_seconds() -> float:
    """The length above which a recording is read block by block (AUDIOTOK_LONG_SECONDS overrides it, for tests)."""
    value = os.environ.get(LONG_SECONDS_VARIABLE)
    return float(value) if value else LONG_SECONDS


class AudioStream:
    """A long recording read in blocks of mono float32 samples: the blocks joined equal `decode(path, channel).samples`,
    and a bad file raises the ItemError decode raises (at the end of the blocks: the output is then dropped)."""

    def __init__(self, path: str, info: AudioInfo, channel: int | None):
        self.path, self.info, self.channel = path, info, channel
        self.rate = info.rate

    def __len__(self) -> int:
        return self.info.frames

    def blocks(self, frames: int | None = None) -> Iterator[np.ndarray]:
        frames = frames or int(BLOCK_SECONDS * self.rate)
        read = bad = 0
        try:
            with sf.SoundFile(self.path) as handle:
                while True:
                    try:
                        data = handle.read(frames, dtype="float32", always_2d=True)
                    except (sf.LibsndfileError, RuntimeError) as err:
                        raise ItemError(f"cannot decode audio (corrupt or truncated): {_short(err)}") from None
                    if data.shape[0] == 0:
                        break
                    read += data.shape[0]
                    bad += int(np.count_nonzero(~np.isfinite(data)))
                    yield select_channel(data, self.channel)
        except (sf.LibsndfileError, OSError) as err:
            raise ItemError(f"cannot decode audio: {_short(err)}") from None
        with open(self.path, "rb") as raw:
            declared = _declared_wav_frames(raw.read(4096), os.path.getsize(self.path))
        if declared is not None and declared > read:
            raise ItemError(f"truncated file: header promises {declared} samples, file holds {read}")
        if read == 0:
            raise ItemError("empty audio (0 samples)")
        if read != self.info.frames:  # what was cut and padded by the header's length would differ from decode()'s
            raise ItemError(f"truncated file: header promises {self.info.frames} samples, file holds {read}")
        if bad:
            raise ItemError(f"{bad} non-finite sample(s) (NaN or Inf)")


def open_stream(path: str | os.PathLike, channel: int | None = None) -> AudioStream | None:
    """`path` as an AudioStream when it is a long recording whose header gives its exact length; None otherwise
    (a short one, an MP3 or Ogg file, or one the header cannot tell: decode it whole)."""
    try:
        info = sf.info(os.fspath(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None  # decode() gives the error
    if info.format not in STREAMABLE_FORMATS or not info.samplerate or info.frames <= long_seconds() * info.samplerate:
        return None
    return AudioStream(os.fspath(path), AudioInfo(info.samplerate, info.channels, info.frames, info.format, info.subtype), channel)
