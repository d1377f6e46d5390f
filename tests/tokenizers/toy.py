"""A toy tokenizer family from outside audiotok: one module and one registry line.

Tokens are the loudness of each 20 ms frame in 3 dB steps (0..15), frame by frame, so the
tokens of a recording equal those of its whole-frame chunks. Registered when this module is
imported: AUDIOTOK_TOKENIZERS=tests.tokenizers.toy makes `toy:STEP` a tokenizer spec.
"""

import numpy as np

from audiotok.errors import AudiotokError, ItemError
from audiotok.tokenizers import Family, register

FRAME = 320  # samples at 16 kHz: 50 tokens a second


class LoudnessTokenizer:
    sample_rate = 16000
    frame_rate = 50.0
    fields = ("toy_tokens",)

    def __init__(self, target: str, device: str, dtype: str = "float32"):
        self.step_db = float(target)

    def __call__(self, waves: list[np.ndarray]) -> list:
        results = []
        for wave in waves:
            frames = len(wave) // FRAME
            if frames == 0:
                results.append(ItemError("shorter than one 20 ms frame"))
                continue
            power = np.mean(np.square(wave[: frames * FRAME].reshape(frames, FRAME), dtype=np.float64), axis=1)
            level = -10 * np.log10(power + 1e-10) / self.step_db
            results.append({"toy_tokens": np.clip(level, 0, 15).astype(np.int64).tolist()})
        return results


def check(target: str) -> None:
    try:
        float(target)
    except ValueError:
        raise AudiotokError(f"toy:{target}: the target is the step in dB") from None


register(Family("toy", check, LoudnessTokenizer, "toy:STEP_DB, frame loudness in steps (field toy_tokens)"))
