"""Seed 004's audio processor (jmcrego/audioTokenizer: AudioProcessor.__call__, the steps of
AudioEmbedder and Utils.load_wav at the seed's commit) written step by step, after the channel
choice: python-soxr's resample at its default quality, librosa.effects.trim with librosa's
default frames, then zeros to the stride, with the real soxr and librosa. The reference for
audiotok's seed004 front end."""

import librosa
import numpy as np
import soxr


def seed_processor(wav: np.ndarray, sr: int, top_db: float = 30, stride: int = 320, receptive_field: int = 400) -> np.ndarray:
    if sr != 16000:
        wav = soxr.resample(wav, sr, 16000)
    wav = wav.astype(np.float32)
    wav, _ = librosa.effects.trim(wav, top_db=top_db)
    remainder = (len(wav) - receptive_field) % stride
    if remainder != 0:
        wav = np.pad(wav, (0, stride - remainder), mode="constant")
    return wav
