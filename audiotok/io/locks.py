"""One run at a time on an output: an advisory lock, held until the process ends.

A run claims its output before it reads any resume state (`.partial` files, run markers,
per-process JSONL), so a second run on the same output stops at once with one line naming the
holder's PID instead of racing the first on the same files. The lock is `flock` on a small file
beside the output (`.NAME.lock`, for a directory too): the kernel releases it when
the holder dies, kill -9 included, so a lock left by a killed run never blocks its resume. Holding the lock, a run also removes the
temporaries (`NAME.tmp.PID`) a killed run left behind.
"""

import atexit
import contextlib
import fcntl
import glob
import os
import re
from pathlib import Path

from audiotok.errors import AudiotokError

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (open descriptor, pid of the process that claimed it)


def lock_path(output: str | os.PathLike) -> Path:
    """`.NAME.lock` beside the output, a directory's too (so that emptying or removing the directory
    with --force never removes the lock held while doing it)."""
    output = Path(output).absolute()
    return output.with_name(f".{output.name}.lock") if output.name else output / ".lock"


def claim_output(output: str | os.PathLike, directory: bool = False) -> None:
    """Hold the lock of `output` until this process ends; AudiotokError when another process holds it.
    `-` and special files (/dev/null, FIFOs) take no lock. Claiming again in the same process is a no-op."""
    from audiotok.io.atomic import is_special

    if str(output) == "-" or is_special(output):
        return
    path = lock_path(output)
    if path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise AudiotokError(
                f"{output} is being written by another run ({holder})",
                "wait for that run to end, or stop it; a run that died holds no lock",
            ) from None
        # The holder before us may have removed the file between our open and our lock: then the
        # lock is on a file nobody else will see; take the one at the path instead.
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[path] = (fd, os.getpid())
    _remove_temporaries(Path(output), directory)


_TEMPORARY = re.compile(r".+\.tmp\.\d+")  # audiotok.io.atomic's NAME.tmp.PID


def _remove_temporaries(output: Path, directory: bool) -> None:
    """Temporaries of the output that a killed run left (safe: no other run can be writing now)."""
    if directory:
        folders = [output, *(entry.path for entry in _entries(output) if entry.is_dir(follow_symlinks=False))]
        candidates = [Path(entry.path) for folder in folders for entry in _entries(folder) if _TEMPORARY.fullmatch(entry.name)]
    else:
        candidates = list(output.parent.glob(f"{glob.escape(output.name)}.tmp.*"))
    for path in candidates:
        if _TEMPORARY.fullmatch(path.name) and path.is_file() and not path.name.endswith(f".tmp.{os.getpid()}"):
            with contextlib.suppress(OSError):
                path.unlink()


def _entries(folder) -> list:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(os.pread(fd, 32, 0).decode().strip())}"
    return "pid unknown"


@atexit.register
def release_all() -> None:
    """Remove this process's lock files, then let the locks go (a killed process skips this: the
    kernel lets its locks go, and the file left behind is reused by the next run)."""
    for path, (fd, owner) in list(_held.items()):
        if owner == os.getpid():  # a forked child that exits normally leaves its parent's locks alone
            with contextlib.suppress(OSError):
                os.unlink(path)
        os.close(fd)
        del _held[path]
