"""What C decoders print on the process's stderr (libmpg123's `Note: Illegal Audio-MPEG-Header`,
`[src/libmpg123/parse.c:...] warning: ...`) is caught and logged under audiotok's logger, with
the file it is about, at debug level (`-v` shows it): the item's own warning or error already says
what went wrong, in one line.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading

log = logging.getLogger("audiotok.io.audio")

_DECODER_LINE = re.compile(r"^(\[src/libmpg123/|Note: |Warning: |\[.*mpg123)")
_lock = threading.Lock()


@contextlib.contextmanager
def decoder_messages_logged(about: str):
    """Route file descriptor 2 to a buffer for the block; log the decoder's lines, pass any other through."""
    with _lock, tempfile.TemporaryFile() as buffer:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(buffer.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            for line in buffer.read().decode("utf-8", "replace").splitlines():
                if _DECODER_LINE.match(line):
                    log.debug("%s: decoder: %s", about, line.strip())
                elif line.strip():
                    print(line, file=sys.stderr)  # another thread's output, a moment late


def may_be_mp3(source) -> bool:
    """MP3 by name, or by its first bytes (an ID3 tag or an MPEG frame sync)."""
    if isinstance(source, bytes | bytearray | memoryview):
        head = bytes(source[:3])
        return head == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    return os.fspath(source).lower().endswith(".mp3")
