"""Kaldi archives: a safe reader for any entry kind, and a writer of audio entries.

Audio entries are whole RIFF/WAVE files (what Kaldi's wav-copy writes), so
Kaldi tools can read the archives audiotok writes. Matrices and vectors are
read through kaldiio; pickled entries are refused (archives come from strangers).
"""

import io
import struct
import sys
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from kaldiio.matio import read_kaldi, read_token
from kaldiio.utils import MultiFileDescriptor

from audiotok.errors import AudiotokError


class WavBytes(bytes):
    """The bytes of one RIFF/WAVE file stored in an archive."""


class _Forward:
    """Hides seekability so kaldiio does not seek back past bytes we already consumed."""

    def __init__(self, fd):
        self.fd = fd

    def read(self, size=-1):
        return self.fd.read(size)

    def seekable(self):
        return False


def read_entry(fd: BinaryIO, where: str) -> WavBytes | np.ndarray:
    """Read the value at the current position of an archive."""
    head = fd.read(5)
    if head[:4] == b"RIFF":
        size_bytes = fd.read(4 - (len(head) - 4))
        raw = head + size_bytes
        if len(raw) < 8:
            raise AudiotokError(f"{where}: truncated archive (RIFF header cut short)", "the archive was cut short: make it again")
        size = struct.unpack("<I", raw[4:8])[0]
        body = fd.read(size)
        if len(body) != size:
            raise AudiotokError(f"{where}: truncated archive (wav entry needs {size} bytes, found {len(body)})", "the archive was cut short: make it again")
        return WavBytes(raw[:8] + body)
    if head[:3] == b"PKL":
        raise AudiotokError(f"{where}: refusing a pickled archive entry", "pickles can run code; write arrays with numpy or Kaldi formats")
    if head == b"AUDIO" or head[:4] == b"fLaC":
        raise AudiotokError(f"{where}: unsupported audio entry kind in archive", "write audio archives as wav entries")
    if not head:
        raise AudiotokError(f"{where}: archive ends after a key with no value")
    try:
        value = read_kaldi(MultiFileDescriptor(io.BytesIO(head), _Forward(fd)), load_kwargs={"allow_pickle": False})
    except Exception as err:  # kaldiio raises bare ValueError/AssertionError on bad bytes
        raise AudiotokError(f"{where}: unreadable archive entry: {err or type(err).__name__}") from None
    return value


def iter_ark(fd: BinaryIO, name: str) -> Iterator[tuple[str, WavBytes | np.ndarray]]:
    """Yield (key, value) pairs of an archive stream."""
    index = 0
    while True:
        token = read_token(fd)
        if token is None:
            return
        key = token.strip()
        if not key:  # text archives end entries with a newline
            continue
        index += 1
        yield key, read_entry(fd, f"{name} entry {index} ({key!r})")


def open_ark_input(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise AudiotokError(f"no such archive: {path}", "check the path in the ark:/scp: specifier") from None


def read_ark_at(path: str, offset: int, where: str) -> WavBytes | np.ndarray:
    """The value an scp line `key path:offset` points to."""
    try:
        with open(path, "rb") as fd:
            fd.seek(offset)
            return read_entry(fd, where)
    except FileNotFoundError:
        raise AudiotokError(f"{where}: no such archive: {path}", "the scp names an archive that moved: write the scp again beside it") from None


class AudioArkWriter:
    """Write `key <wav bytes>` entries to an archive (file or stdout), optionally with an scp."""

    def __init__(self, stream: BinaryIO, ark_name: str, scp_stream=None):
        self.stream = stream
        self.ark_name = ark_name
        self.scp_stream = scp_stream
        self.offset = 0

    def write(self, key: str, wav: bytes | BinaryIO) -> None:
        """wav: the bytes of a wav file, or a file open at its start (copied piece by piece: a long recording)."""
        prefix = f"{key} ".encode()
        self.stream.write(prefix)
        if self.scp_stream is not None:
            self.scp_stream.write(f"{key} {self.ark_name}:{self.offset + len(prefix)}\n")
        size = 0
        for piece in [wav] if isinstance(wav, bytes | bytearray) else iter(lambda: wav.read(1 << 22), b""):
            self.stream.write(piece)
            size += len(piece)
        self.offset += len(prefix) + size
