"""Tokenize audio as it arrives: from the microphone, or raw PCM on stdin, one
line of units per chunk, written (and flushed) as soon as the units are final.

Input: --input - (or stdin when it is not a terminal) reads raw interleaved
PCM (--format s16le, s32le or f32le; --rate; --channels, averaged to mono);
--input FILE reads a raw PCM file; --input mic (or a terminal on stdin)
records from the default microphone (needs `pip install sounddevice` and the
PortAudio library). Audio is resampled to the bundle's rate with soxr's
streaming resampler (equal to offline resampling).

Units: Kaldi fbank/MFCC (with deltas) and Paraformer bundles give exactly the
units of `audiotok tokenize`; Whisper log-mel differs only where its
(max - 8) floor uses the maximum so far; encoders (HuBERT family, Whisper,
ONNX) see --left-context seconds before each chunk and --lookahead after it.
Chunks: --duration (or --chunk) seconds of audio are read and tokenized at a
time, one output line each. Output: --format-out text (units separated by
spaces) or jsonl ({"start": s, "end": s, "units": [...]}, seconds from the
start). Ends at the end of the input, after --stop-after seconds of audio, or
on Ctrl-C (the last units are written first; exit 130).

Other tokenizers of the registry (s3:MODEL, or a family AUDIOTOK_TOKENIZERS
adds; one field) have no incremental path: each chunk is resampled and
tokenized on its own, so tokens near chunk edges can differ from
`audiotok tokenize` on the whole recording unless the tokenizer is
frame-local and chunks are whole frames.

\b
Example:
  arecord -f S16_LE -r 16000 -c 1 | audiotok stream exp/km500 --format s16le --rate 16000
  sox in.wav -t raw -r 16000 -e signed -b 16 -c 1 - | audiotok stream exp/km500 --format-out jsonl
  audiotok stream exp/km500 --input mic --duration 0.5 --stop-after 5

See also: tokenize, quantize.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "stream"


def command(
    tokenizer: Annotated[
        str, typer.Argument(metavar="TOKENIZER", help="A bundle directory (or bundle:DIR), or another registry spec (see above).", show_default=False)
    ],
    source: Annotated[
        str | None, typer.Option("--input", "-i", help="- (stdin, raw PCM), a raw PCM file, or mic. Default: stdin unless it is a terminal.")
    ] = None,
    pcm_format: Annotated[str, typer.Option("--format", help="Raw PCM sample format: s16le, s32le or f32le.")] = "s16le",
    rate: Annotated[int | None, typer.Option("--rate", min=1, help="Input sample rate (default: the bundle's).")] = None,
    channels: Annotated[int, typer.Option("--channels", min=1, help="Interleaved input channels (averaged to mono).")] = 1,
    chunk: Annotated[
        float, typer.Option("--duration", "--chunk", min=0.01, help="Length of a chunk: seconds of audio read and tokenized at a time, one output line each.")
    ] = 1.0,
    output_format: Annotated[str, typer.Option("--format-out", help="text or jsonl.")] = "text",
    stop_after: Annotated[
        float | None, typer.Option("--stop-after", min=0.0, help="Stop after this many seconds of audio in all (default: at the end of the input, or Ctrl-C).")
    ] = None,
    left_context: Annotated[float, typer.Option("--left-context", min=0.0, help="Encoders: seconds of audio before each chunk.")] = 5.0,
    lookahead: Annotated[float, typer.Option("--lookahead", min=0.0, help="Encoders: seconds after a chunk read before its units are final.")] = 0.5,
    model: Annotated[str | None, typer.Option("--model", help="Where the bundle's encoder is, if not at the path its recipe names.")] = None,
    device: common.Device = "auto",
    dtype: common.Dtype = "float32",
) -> None:
    import logging
    import sys

    from audiotok.device import resolve
    from audiotok.errors import UsageError
    from audiotok.streaming.engine import StreamingTokenizer
    from audiotok.streaming.sources import PcmDecoder, open_microphone, read_microphone, read_pcm
    from audiotok.tokenizers import families, open_tokenizer, parse_spec
    from audiotok.units.bundle import Bundle

    log = logging.getLogger("audiotok")
    if output_format not in ("text", "jsonl"):
        raise UsageError(f"--format-out {output_format!r}: choose text or jsonl")
    decoder = PcmDecoder(pcm_format, channels)  # checks --format and --channels before the model loads
    family, target = parse_spec(tokenizer, "TOKENIZER")
    if families()[family].native_stream:
        input_rate = rate or int(Bundle.load(target).recipe.get("sample_rate", 16000))
    else:
        chunked = open_tokenizer(tokenizer, resolve(device), dtype)
        if len(chunked.fields) != 1:
            raise UsageError(f"stream writes one field; {tokenizer} gives {', '.join(chunked.fields)}", "use audiotok tokenize --format jsonl")
        input_rate = rate or int(chunked.sample_rate)
    if source is None:
        source = "mic" if sys.stdin.isatty() else "-"
    if source == "mic":
        microphone = open_microphone(input_rate, channels)  # none: say so before loading a model
    if families()[family].native_stream:
        engine = StreamingTokenizer(
            target, model=model, device=device, dtype=dtype, input_rate=input_rate, left_context=left_context, lookahead=lookahead, max_chunk=chunk
        )
    else:
        from audiotok.streaming.chunked import ChunkedTokenizer

        engine = ChunkedTokenizer(chunked, input_rate)
    chunk_frames = max(1, int(round(chunk * input_rate)))
    interrupts = _InterruptsBetweenChunks()
    if source == "mic":
        pieces = read_microphone(microphone, input_rate, channels, chunk_frames, interrupts.stop)
    elif source == "-":
        pieces = read_pcm(sys.stdin, decoder, chunk_frames, interrupts.stop)
    else:
        pieces = _read_file(source, decoder, chunk_frames, interrupts.stop)
    log.info(
        "stream: %s at %d Hz -> units at %g Hz (%s)",
        "the microphone" if source == "mic" else "stdin" if source == "-" else source,
        input_rate,
        1 / engine.frame_seconds,
        engine.describe(),
    )
    writer = _LineWriter(sys.stdout, output_format, engine.frame_seconds)
    limit = None if stop_after is None else int(round(stop_after * input_rate))
    session, read = engine.session("stream"), 0

    def tokenize(units_of) -> None:
        first = session.frames_emitted  # the number of the first unit this call gives
        writer.write(first, units_of())

    try:
        with interrupts:
            for samples in pieces:
                if limit is not None:
                    samples = samples[: limit - read]
                read += len(samples)
                tokenize(lambda: engine.feed("stream", samples))  # noqa: B023 - called at once
                interrupts.check()
                if limit is not None and read >= limit:
                    break
            interrupts.check()  # the reader stopped because of Ctrl-C
    except KeyboardInterrupt:
        tokenize(lambda: engine.finish("stream"))  # Ctrl-C: the units still pending, then exit 130
        raise
    tokenize(lambda: engine.finish("stream"))
    log.info("stream: %.2f s of audio, %d units", read / input_rate, writer.units)


def _read_file(path, decoder, chunk_frames, stop):
    from audiotok.errors import AudiotokError
    from audiotok.streaming.sources import read_pcm

    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed when the generator ends
    except OSError as err:
        raise AudiotokError(f"cannot read {path}: {err.strerror}") from None
    with handle:
        yield from read_pcm(handle, decoder, chunk_frames, stop)


class _InterruptsBetweenChunks:
    """Ctrl-C ends the stream between chunks, never inside one: the readers poll `stop` while they
    wait for audio, and a chunk being tokenized is finished first (an interrupted feed would lose
    it). A second Ctrl-C interrupts at once."""

    def __init__(self):
        self.pending = False

    def __enter__(self):
        import signal

        self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        import signal

        signal.signal(signal.SIGINT, self.previous)

    def _on_sigint(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def stop(self) -> bool:
        return self.pending

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt


class _LineWriter:
    """One flushed line per chunk that produced units."""

    def __init__(self, stream, output_format: str, frame_seconds: float):
        self.stream, self.format, self.frame_seconds = stream, output_format, frame_seconds
        self.units = 0

    def write(self, first_frame: int, units) -> None:
        import json

        if len(units) == 0:
            return
        values = [int(u) for u in units]
        if self.format == "text":
            line = " ".join(map(str, values))
        else:
            start, end = first_frame * self.frame_seconds, (first_frame + len(values)) * self.frame_seconds
            line = json.dumps({"start": round(start, 6), "end": round(end, 6), "units": values})
        self.stream.write(line + "\n")
        self.stream.flush()
        self.units += len(values)
