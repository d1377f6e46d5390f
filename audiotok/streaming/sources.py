"""Where streamed audio comes from: raw PCM bytes (stdin, a file) or the microphone.

Both yield mono float32 pieces of at most `chunk` frames as soon as they are
read; several channels are averaged, as the offline reader does.
"""

import logging
from collections.abc import Iterator

import numpy as np

from audiotok.errors import AudiotokError, UsageError

log = logging.getLogger("audiotok")

# Raw PCM layouts: numpy type, and the value of full scale (floats are taken as they are).
PCM_FORMATS = {"s16le": ("<i2", 32768.0), "s32le": ("<i4", 2147483648.0), "f32le": ("<f4", 1.0)}

MICROPHONE_HINT = (
    "pip install sounddevice (it needs the PortAudio library: apt install libportaudio2 or brew install portaudio), "
    "or pipe raw PCM on stdin: arecord -f S16_LE -r 16000 -c 1 | audiotok stream BUNDLE --format s16le --rate 16000"
)


def to_mono(frames: np.ndarray) -> np.ndarray:
    """[frames, channels] -> [frames]: the mean in float64, as audiotok.io.audio.select_channel mixes."""
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0], dtype=np.float32)
    return frames.mean(axis=1, dtype=np.float64).astype(np.float32)


class PcmDecoder:
    """Bytes of interleaved little-endian PCM in, float samples out; keeps a partial frame for the next read."""

    def __init__(self, pcm_format: str, channels: int):
        if pcm_format not in PCM_FORMATS:
            raise UsageError(f"--format {pcm_format!r}: unknown raw PCM format", f"choose one of {', '.join(PCM_FORMATS)}")
        if channels < 1:
            raise UsageError("--channels must be at least 1")
        self.format, self.channels = pcm_format, channels
        self.dtype, self.scale = PCM_FORMATS[pcm_format]
        self.frame_bytes = np.dtype(self.dtype).itemsize * channels
        self.pending = b""
        self.frames = 0

    def decode(self, data: bytes) -> np.ndarray:
        data = self.pending + data
        whole = len(data) - len(data) % self.frame_bytes
        self.pending = data[whole:]
        values = np.frombuffer(data[:whole], dtype=self.dtype).reshape(-1, self.channels)
        if self.format == "f32le" and not np.all(np.isfinite(values)):
            raise AudiotokError(f"the input holds NaN or Inf after {self.frames} frames", "is it really f32le? give --format")
        self.frames += len(values)
        return to_mono(values.astype(np.float32) / np.float32(self.scale) if self.scale != 1.0 else values.astype(np.float32))

    def finish(self) -> None:
        if self.pending:
            raise AudiotokError(
                f"the input ends inside a sample frame: {len(self.pending)} byte(s) left after {self.frames} frames "
                f"of {self.frame_bytes} bytes ({self.format}, {self.channels} channel(s))",
                "check --format and --channels against what the producer writes",
            )


def read_pcm(stream, decoder: PcmDecoder, chunk_frames: int, stop=lambda: False) -> Iterator[np.ndarray]:
    """Pieces of `chunk_frames` frames from a binary stream, each as soon as it has been read.

    The file descriptor is polled (select), not read in a blocking call, so that stop() -> True
    ends the stream within 0.1 s even while no input comes, and no bytes read are ever lost to it.
    """
    import os
    import select

    descriptor = stream.fileno()
    wanted = chunk_frames * decoder.frame_bytes
    ended = False
    while not ended:
        data = bytearray()
        while len(data) + len(decoder.pending) < wanted:
            if stop():
                return
            if not select.select([descriptor], [], [], 0.1)[0]:
                continue
            block = os.read(descriptor, wanted - len(data) - len(decoder.pending))
            if not block:
                ended = True
                break
            data += block
        samples = decoder.decode(bytes(data))
        if len(samples):
            yield samples
    decoder.finish()


def open_microphone(rate: int, channels: int):
    """The sounddevice module with a usable input device, or one clear error saying what is missing."""
    try:
        import sounddevice
    except ImportError:
        raise AudiotokError("reading the microphone needs the sounddevice package, which is not installed", MICROPHONE_HINT) from None
    except OSError as err:  # sounddevice raises OSError when the PortAudio library is missing
        raise AudiotokError(f"reading the microphone needs the PortAudio library: {err}", MICROPHONE_HINT) from None
    try:
        device = sounddevice.query_devices(kind="input")
        sounddevice.check_input_settings(samplerate=rate, channels=channels, dtype="float32")
    except Exception as err:  # noqa: BLE001 - PortAudio reports a missing device or bad settings in many ways
        raise AudiotokError(
            f"no usable audio input device: {str(err).splitlines()[0] if str(err) else type(err).__name__}", "plug in a microphone, or pipe raw PCM on stdin"
        ) from None
    log.info(
        "recording from %s at %d Hz, %d channel(s)",
        device.get("name", "the default input") if isinstance(device, dict) else "the default input",
        rate,
        channels,
    )
    return sounddevice


def read_microphone(sounddevice, rate: int, channels: int, chunk_frames: int, stop=lambda: False) -> Iterator[np.ndarray]:
    """Pieces of `chunk_frames` frames from the default input (`sounddevice`: what open_microphone gave)."""
    with sounddevice.InputStream(samplerate=rate, channels=channels, dtype="float32", blocksize=chunk_frames) as stream:
        while not stop():
            frames, overflowed = stream.read(chunk_frames)
            if overflowed:
                log.warning("the microphone buffer overflowed: some audio was lost (is the model slower than real time?)")
            yield to_mono(np.asarray(frames, dtype=np.float32).reshape(-1, channels))
