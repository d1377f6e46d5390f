"""ABX scores from ZeroSpeech's libri-light-abx2 (zrc_abx2), the reference `audiotok abx` is tested
and benched against. Run with PYTHONPATH=.venv/reference (requirements-reference.txt):

    python zrc_abx2_reference.py FEATURES.npz ITEM_DIR FRAME_RATE

FEATURES.npz holds one float32 [frames, dim] array a file, in the order the scorer sees the
files (zrc_abx2 takes them in directory-walk order; the order decides which tokens its
seeded draws pick). ITEM_DIR holds phone.item and triphone.item. Prints {condition: score}
as JSON, for the six conditions audiotok names phone_{within,any}_context_{within,across}_speaker
and triphone_{within,across}_speaker; null where the condition has no triplet.
"""

import contextlib
import json
import os
import sys

import numpy as np
import torch
from zrc_abx2.ABX_src.models import Pooling
from zrc_abx2.eval_ABX import EvalABX

CONDITIONS = (("phone", "within"), ("phone", "any"), ("triphone", "within"))


def reference_scores(features: dict, item_dir: str, frame_rate: float) -> dict:
    files = [(key, key) for key in features]  # (file id, path): the path is what the loader below gets

    def load(key):
        return torch.from_numpy(features[key])

    scores = {}
    for items, context in CONDITIONS:
        for speaker in ("within", "across"):
            name = f"triphone_{speaker}_speaker" if items == "triphone" else f"phone_{context}_context_{speaker}_speaker"
            try:
                with contextlib.redirect_stdout(sys.stderr):  # the package prints its progress
                    found = EvalABX()._ABX(
                        Pooling.NONE,
                        3459,
                        load,
                        os.path.join(item_dir, f"{items}.item"),
                        files,
                        "cosine",
                        frame_rate,
                        [speaker],
                        [context],
                        max_x_across=5,
                        max_size_group=10,
                    )
            except RuntimeError as err:  # zrc_abx2 cannot build its result tensor from zero triplets
                if "sparse_dim" not in str(err):
                    raise
                scores[name] = None
                continue
            value = found[f"{speaker}-{context}"]
            scores[name] = None if value != value else value  # NaN: no phone pair scored
    return scores


if __name__ == "__main__":
    path, directory, rate = sys.argv[1:]
    print(json.dumps(reference_scores(dict(np.load(path)), directory, float(rate))))
