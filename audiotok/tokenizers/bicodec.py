"""The BiCodec family (`bicodec:DIR`, a Spark-TTS directory): 32 global tokens from the reference
clip and 50 semantic tokens a second (fields global_tokens, semantic_tokens)."""

import os

from audiotok.errors import AudiotokError
from audiotok.tokenizers import Family


def check(target: str) -> None:
    if not os.path.isdir(target):
        raise AudiotokError(f"no such BiCodec model directory: {target}", "give the Spark-TTS model directory (BiCodec/ and wav2vec2-large-xlsr-53/ inside)")


def open_bicodec(target: str, device: str, dtype: str):
    from audiotok.bicodec.tokenizer import BiCodecTokenizer
    from audiotok.device import resolve

    return BiCodecTokenizer(target, resolve(device), dtype)


FAMILY = Family("bicodec", check, open_bicodec, "bicodec:DIR, BiCodec from Spark-TTS (global_tokens, semantic_tokens)")
