"""A regular file read through a memory map: archive values become views of the page cache.

A binary float matrix in a Kaldi archive on disk (`ark:FILE`, or a file redirected to stdin)
is handed out as a read-only numpy view of the mapped file, so reading it copies nothing; the
caller's own copy (packing frames into blocks) is the only one. Pages behind the reading
position are given back to the kernel as the reading goes on, so the resident memory stays
flat however large the archive is (the pages stay in the page cache; a view still held
reads them again from there).
"""

import io
import mmap
import os
import stat
from typing import BinaryIO

RELEASE_LAG = 96 << 20  # bytes kept mapped behind the reading position (where views in use point)
RELEASE_EVERY = 32 << 20


class MappedReader(io.RawIOBase):
    """The part of a mapped file from `start` on, read like a buffered file (read, peek, readinto)
    or taken as zero-copy views (`view`)."""

    def __init__(self, fileno: int, start: int, on_close=None):
        super().__init__()
        self._map = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
        self._position = start
        self._released = start - start % mmap.PAGESIZE
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def peek(self, size: int = 1) -> bytes:
        return self._map[self._position : self._position + max(size, 1)]

    def read(self, size: int = -1) -> bytes:
        end = len(self._map) if size is None or size < 0 else min(len(self._map), self._position + size)
        data = self._map[self._position : end]
        self._advance(end)
        return data

    def readinto(self, buffer) -> int:
        target = memoryview(buffer).cast("B")
        end = min(len(self._map), self._position + len(target))
        target[: end - self._position] = self._map[self._position : end]
        count = end - self._position
        self._advance(end)
        return count

    def view(self, size: int) -> memoryview:
        """The next `size` bytes without a copy (fewer at the end of the file)."""
        end = min(len(self._map), self._position + size)
        data = memoryview(self._map)[self._position : end]
        self._advance(end)
        return data

    def _advance(self, end: int) -> None:
        self._position = end
        behind = end - RELEASE_LAG
        if behind - self._released >= RELEASE_EVERY:
            upto = behind - behind % mmap.PAGESIZE
            self._map.madvise(mmap.MADV_DONTNEED, self._released, upto - self._released)
            self._released = upto

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            self._on_close(self._position)
        super().close()  # the map itself goes when its last view does


def mapped(stream: BinaryIO) -> MappedReader | None:
    """A MappedReader over a stream that is a non-empty regular file, from its current position;
    None for pipes, sockets, terminals and empty files. Closing it moves the stream's file
    position to where the reading stopped, as reading the stream itself would have."""
    try:
        fileno = stream.fileno()
        info = os.fstat(fileno)
        start = stream.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size <= start:
        return None
    return MappedReader(fileno, start, on_close=lambda position: os.lseek(fileno, position, os.SEEK_SET))
