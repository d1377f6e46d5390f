import pickle

import numpy as np
import pytest

from audiotok.errors import AudiotokError
from audiotok.io.npy import read_npy


def test_arrays_load_and_everything_else_is_one_clear_line(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.eye(3, dtype=np.float32))
    assert read_npy(good).tolist() == np.eye(3).tolist()
    cases = {
        "random.npy": (np.random.default_rng(0).bytes(500), "is not a .npy file (no NumPy header)"),
        "objects.npy": (None, "holds Python objects (pickled data), which audiotok never loads"),
        "cut.npy": (good.read_bytes()[:-10], "is truncated or damaged"),
        "pickle.npy": (pickle.dumps([1, 2]), "is not a .npy file (no NumPy header)"),
    }
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name, (data, message) in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(AudiotokError) as err:
            read_npy(tmp_path / name)
        assert err.value.message.startswith(f"{tmp_path / name} {message}"), err.value.message
        assert err.value.hint == "save the array with numpy.save (numbers, no Python objects)"
    with pytest.raises(AudiotokError, match="no such file"):
        read_npy(tmp_path / "missing.npy")
