"""A tokenizer of the registry without an incremental path, served to `audiotok stream`
chunk by chunk with StreamingTokenizer's session interface (feed, finish, frames_emitted):
each chunk is brought to the tokenizer's rate and tokenized on its own, so tokens equal
those of the whole recording only for frame-local tokenizers fed whole frames."""

import numpy as np

from audiotok.dsp.resample import resample
from audiotok.errors import AudiotokError
from audiotok.tokenizers import call_tokenizer


class ChunkedTokenizer:
    """A registry tokenizer served chunk by chunk, with StreamingTokenizer's session interface:
    each chunk is brought to the tokenizer's rate and tokenized on its own."""

    def __init__(self, tokenizer, input_rate: int):
        self.tokenizer, self.input_rate = tokenizer, input_rate
        (self.field,) = tokenizer.fields
        self.frame_seconds = 1.0 / float(getattr(tokenizer, "frame_rate", 0) or 50.0)
        self.frames_emitted = 0

    def describe(self) -> str:
        return f"{type(self.tokenizer).__name__}, chunk by chunk"

    def session(self, name: str):
        return self

    def feed(self, name: str, samples):
        if len(samples) == 0:
            return []
        wave = resample(np.asarray(samples, np.float32), self.input_rate, self.tokenizer.sample_rate, method=getattr(self.tokenizer, "resampler", "soxr"))
        (result,) = call_tokenizer(self.tokenizer, [wave])
        if isinstance(result, Exception):
            raise AudiotokError(f"the tokenizer failed on a chunk: {result}")
        units = result[self.field]
        self.frames_emitted += len(units)
        return units

    def finish(self, name: str):
        return []
