"""ABX scores from ZeroSpeech's libri-light-abx2 (zrc_abx2), the reference `audiotok abx` is tested against.

Run with PYTHONPATH=.venv/reference (requirements-reference.txt):

    python zrc_abx2_reference.py FEATURES.npz ITEM_DIR FRAME_RATE

FEATURES.npz holds one float32 [frames, dim] array a file, in the order the scorer sees the
files (zrc_abx2 takes them in directory-walk order; the order decides which tokens its
seeded draws pick). Prints {condition name: score} as JSON, for the six conditions audiotok
names phone_{within,any}_context_{within,across}_speaker and triphone_{within,across}_speaker.
"""

import contextlib
import json
import os
import sys

import numpy as np
import torch
from zrc_abx2.ABX_src.models import Pooling
from zrc_abx2.eval_ABX import EvalABX


def main(features_path: str, item_dir: str, frame_rate: str) -> None:
    features = dict(np.load(features_path))
    files = [(key, key) for key in features]  # (file id, path): the path is handed to the loader below

    def load(key):
        return torch.from_numpy(features[key])

    scores = {}
    for items, contexts in (("phone", ["within", "any"]), ("triphone", ["within"])):
        with contextlib.redirect_stdout(sys.stderr):  # the package prints its progress
            found = EvalABX()._ABX(
                Pooling.NONE,
                3459,
                load,
                os.path.join(item_dir, f"{items}.item"),
                files,
                "cosine",
                float(frame_rate),
                ["within", "across"],
                contexts,
                max_x_across=5,
                max_size_group=10,
            )
        for key, value in found.items():
            speaker, context = key.split("-")
            name = f"triphone_{speaker}_speaker" if items == "triphone" else f"phone_{context}_context_{speaker}_speaker"
            scores[name] = None if value != value else value  # NaN: no triplet
    print(json.dumps(scores))


if __name__ == "__main__":
    main(*sys.argv[1:])
