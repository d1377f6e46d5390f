"""Atomic file writes and the `.done` markers that make re-runs skip finished work.

A file is written as `NAME.tmp.PID` and renamed into place, so a reader
never sees half a file and an existing file is always a finished one. A
`.done` marker records the signature (command and arguments) of the run
that finished an output; a re-run with the same signature skips it.
"""

import contextlib
import os
from pathlib import Path


def tmp_path_for(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.tmp.{os.getpid()}")


def is_special(path: str | os.PathLike) -> bool:
    """An existing non-regular file (/dev/null, a FIFO, a terminal): written in place, never renamed onto."""
    path = Path(path)
    return path.exists() and not path.is_file() and not path.is_dir()


def install(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put a finished temporary file at `path`: a rename, or for a special file (`-o /dev/null`)
    a copy into it, since renaming onto a device would replace the device with a plain file."""
    if not is_special(path):
        os.replace(tmp, path)
        return
    import shutil

    with open(tmp, "rb") as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """Open a temporary sibling of `path`; rename it onto `path` on success."""
    path = Path(path)
    if is_special(path):
        with open(path, mode, **kwargs) as handle:
            yield handle
        return
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
