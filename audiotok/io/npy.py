"""Reading arrays saved with numpy.save: never a pickle, and one-line errors saying what is wrong."""

from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError

MAGIC = b"\x93NUMPY"
HINT = "save the array with numpy.save (numbers, no Python objects)"


def read_npy(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC))
    except FileNotFoundError:
        raise AudiotokError(f"no such file: {path}") from None
    except OSError as err:
        raise AudiotokError(f"cannot read {path}: {err.strerror}") from None
    if head != MAGIC:  # numpy would call any other bytes "pickled data"
        raise AudiotokError(f"{path} is not a .npy file (no NumPy header)", HINT)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise AudiotokError(f"{path} holds Python objects (pickled data), which audiotok never loads", HINT) from None
        raise AudiotokError(f"{path} is truncated or damaged: {str(err).splitlines()[0]}", HINT) from None
    except (EOFError, OSError) as err:
        raise AudiotokError(f"{path} is truncated or damaged: {err}", HINT) from None
