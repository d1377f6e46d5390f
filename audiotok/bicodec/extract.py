"""Running BiCodecTokenizer over an audio table: load, resample to 16 kHz, batch, keep order.

Items are read in blocks of consecutive keys; within a block recordings are batched longest
first up to --batch-seconds of padded audio (engine/batching.make_batches) and results are
yielded in input order. A recording the tokenizer refuses (too short, NaN) is an ItemError
in its place; it is checked before batching, so it never takes a batch down with it.
"""

from collections.abc import Iterable, Iterator

from audiotok.errors import ItemError


def bicodec_tokens(items: Iterable, tokenizer, *, channel=None, batch_seconds=60.0, block=64, skip=None) -> Iterator[tuple[str, dict | ItemError]]:
    from audiotok.dsp.resample import resample
    from audiotok.engine.batching import Piece, in_blocks, make_batches

    rate = tokenizer.sample_rate
    for chunk in in_blocks(items, block, skip):
        results: dict[str, dict | ItemError] = {}
        pieces = []
        for item in chunk:
            try:
                audio = item.load(channel)
                samples = resample(audio.samples, audio.rate, rate)
                tokenizer.check(0, samples)
            except ItemError as err:
                results[item.key] = err
                continue
            pieces.append(Piece(item.key, 0, samples))
        for batch in make_batches(pieces, batch_seconds, rate, padding_safe=True):
            for piece, tokens in zip(batch, tokenizer([p.wave for p in batch]), strict=True):
                results[piece.key] = tokens
        for item in chunk:
            yield item.key, results[item.key]
