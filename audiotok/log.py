"""Logging set up once, by the command-line entry point; never at import time."""

import logging
import os
import shlex
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbosity: int = 0) -> None:
    """verbosity: -1 quiet (warnings only), 0 info, 1 debug."""
    env = os.environ.get("AUDIOTOK_LOG_LEVEL")
    if env:
        level = getattr(logging, env.upper(), logging.INFO)
    else:
        level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger("audiotok")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def command_line() -> str:
    """The command as the user typed it, quoted so it can be pasted back."""
    argv = list(sys.argv)
    argv[0] = "audiotok" if argv[0].endswith(("audiotok", "__main__.py")) else argv[0]
    return shlex.join(argv)
