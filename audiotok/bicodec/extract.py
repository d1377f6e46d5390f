"""Running BiCodecTokenizer over an audio table: load, resample to 16 kHz, batch, keep order.

Items are read in blocks of consecutive keys; within a block recordings are batched longest
first up to --batch-seconds of padded audio (engine/batching.map_pieces) and results are
yielded in input order. A recording the tokenizer refuses (too short, NaN) is an ItemError
in its place; it is checked before batching, so it never takes a batch down with it.
"""

from collections.abc import Iterable, Iterator

from audiotok.errors import ItemError


def bicodec_tokens(items: Iterable, tokenizer, *, channel=None, batch_seconds=60.0, block=64, skip=None) -> Iterator[tuple[str, dict | ItemError]]:
    from audiotok.dsp.resample import resample
    from audiotok.engine.batching import map_pieces

    rate = tokenizer.sample_rate

    def prepare(item):
        audio = item.load(channel)
        samples = resample(audio.samples, audio.rate, rate)
        tokenizer.check(0, samples)
        return [samples], None

    for key, outputs, _ in map_pieces(items, prepare, tokenizer, batch_seconds=batch_seconds, rate=rate, padding_safe=True, block=block, skip=skip):
        yield key, outputs if isinstance(outputs, ItemError) else outputs[0]
