"""A tokenizer family for tests that must act while a run is certainly in the middle.

`gated:DIR` tokenizes like a tiny deterministic model (one unit per 20 ms: the frame's mean
absolute level, quantised), and before each call it appends a line to DIR/.calls and takes one
byte from the FIFO DIR/.gate: a test decides when each call may go on, and knows when a call is
waiting. Hidden names, so that the files a test adds never change the tokenizer's content
digest. `gated:-` never waits. Registered through AUDIOTOK_TOKENIZERS=tests.plugins.gated.
"""

import os

import numpy as np

from audiotok.errors import UsageError
from audiotok.tokenizers import Family, register

HOP = 320


class GatedTokenizer:
    sample_rate = 16000
    fields = ("units",)
    frame_rate = 50

    def __init__(self, directory: str):
        self.directory = None if directory == "-" else directory
        self.gate = None

    def __call__(self, waves):
        if self.directory is not None:
            with open(os.path.join(self.directory, ".calls"), "a") as calls:
                calls.write(f"{os.getpid()} {len(waves)}\n")
            if self.gate is None:
                # Opened without waiting for a writer, then read blocking: with no writer left, a read is end of file.
                self.gate = os.open(os.path.join(self.directory, ".gate"), os.O_RDONLY | os.O_NONBLOCK)
                os.set_blocking(self.gate, True)
            if os.read(self.gate, 1) == b"":
                self.directory = None  # the test closed the gate for good: no more waiting
        return [{"units": units_of(wave)} for wave in waves]


def units_of(wave: np.ndarray) -> list[int]:
    frames = len(wave) // HOP
    levels = np.abs(wave[: frames * HOP]).reshape(frames, HOP).mean(axis=1) if frames else np.zeros(0)
    return np.minimum((levels * 100).astype(np.int64), 49).tolist()


def _check(target: str) -> None:
    if target != "-" and not os.path.isdir(target):
        raise UsageError(f"gated:{target}: no such directory")


FAMILY = register(Family("gated", _check, lambda target, device, dtype: GatedTokenizer(target), "gated:DIR, a test tokenizer that waits on DIR/.gate (units)"))


class Gate:
    """The test's side: DIR and its FIFO, held open (read-write, so opening never waits). `calls()`
    counts the calls that have started, `release(n)` lets n calls through, `open_wide()` every later one."""

    def __init__(self, directory):
        from pathlib import Path

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.directory / ".gate")
        self.fd = os.open(self.directory / ".gate", os.O_RDWR)

    @property
    def spec(self) -> str:
        return f"gated:{self.directory}"

    def calls(self) -> int:
        path = self.directory / ".calls"
        return path.read_text().count("\n") if path.exists() else 0

    def release(self, calls: int = 1) -> None:
        os.write(self.fd, b"x" * calls)

    def open_wide(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
