"""How every audiotok command stops on SIGINT (Ctrl-C) and SIGTERM.

Both raise KeyboardInterrupt in the main thread, so `finally` blocks commit finished work and
remove temporary files, and the entry point ends with one line, `error: interrupted` (exit 130)
or `error: terminated` (exit 143). The handlers are installed before anything heavy is
imported, so a signal during start-up stops the command the same way.

Three moments must not be cut:
- the first import of a native library (torch, onnxruntime, numpy, ...): its C/C++ start-up
  runs Python code; an exception raised there cannot cross C++ frames, so the process aborts
  ("terminate called after throwing an instance of 'pybind11::error_already_set'"), or it
  leaves a half-made module that fails again on the way out. Imports of `HELD_IMPORTS` run
  inside `deferred()`.
- a Python function called back from C (soundfile reading or writing a file object through
  cffi) cannot hand an exception back to C: it would be printed as "Exception ignored" and the
  C library would then fail on its own. `deferred()` holds a signal until such a block ends.
- once the command has finished (its outputs committed, its exit code chosen), `finishing()`
  makes a late signal a no-op, so interpreter shutdown is never interrupted halfway.
"""

import builtins
import contextlib
import signal
import sys
import threading

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

_received: list[int] = []
_held = 0  # depth of deferred() blocks in the main thread
_pending = False
_finishing = False

# Top-level packages whose first import is held: their C/C++ start-up calls back into Python, and
# an import cut halfway leaves a broken module behind (numpy then recurses in its __getattr__).
HELD_IMPORTS = {
    "numpy",
    "scipy",
    "sklearn",
    "soundfile",
    "soxr",
    "torch",
    "torchaudio",
    "onnxruntime",
    "transformers",
    "kaldi_native_fbank",
    "faiss",
}
_plain_import = builtins.__import__


def _on_signal(signum, frame) -> None:
    global _pending
    _received.append(signum)
    if _finishing:
        return
    if _held:
        _pending = True
        return
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt (first thing, in the main thread; again starts afresh)."""
    global _held, _pending, _finishing
    _received.clear()
    _held, _pending, _finishing = 0, False, False
    for number in EXIT_CODES:
        signal.signal(number, _on_signal)
    builtins.__import__ = _held_import


def _held_import(name, globals=None, locals=None, fromlist=(), level=0):
    """`import` that holds signals while a package of HELD_IMPORTS loads for the first time."""
    if level == 0 and name not in sys.modules and name.partition(".")[0] in HELD_IMPORTS:
        with deferred():
            return _plain_import(name, globals, locals, fromlist, level)
    return _plain_import(name, globals, locals, fromlist, level)


def received() -> int | None:
    """The first signal this process got, if any."""
    return _received[0] if _received else None


def exit_code() -> int:
    """130 after SIGINT (or a KeyboardInterrupt of any other origin), 143 after SIGTERM."""
    return EXIT_CODES.get(received(), 130)


def stop_message() -> str:
    return "error: terminated" if received() == signal.SIGTERM else "error: interrupted"


def finishing() -> None:
    """From now on a signal changes nothing: the command's work and exit code are settled."""
    global _finishing
    _finishing = True
    # A KeyboardInterrupt that passed through code run by exec() on a string (dataclasses and
    # namedtuples are made that way, often while modules import) leaves CPython's "unhandled
    # KeyboardInterrupt" flag set, and the interpreter would then exit by SIGINT instead of with
    # the code we choose. exec() of a string clears that flag before it runs.
    exec("")


@contextlib.contextmanager
def deferred():
    """Hold SIGINT/SIGTERM until the block ends, then stop as usual (a no-op off the main thread,
    where signal handlers never run)."""
    global _held, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending:
            _pending = False
            raise KeyboardInterrupt
