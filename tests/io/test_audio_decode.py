import numpy as np
import pytest
import soundfile as sf

from audiotok.errors import ItemError
from audiotok.io.audio import decode, encode, probe
from tests.conftest import sine, write_audio


@pytest.mark.parametrize(
    "name,format,subtype,tolerance",
    [
        ("a.wav", "WAV", "PCM_16", 1e-4),
        ("a.wav", "WAV", "PCM_24", 1e-6),
        ("a.wav", "WAV", "PCM_32", 1e-6),
        ("a.wav", "WAV", "FLOAT", 0),
        ("a.wav", "WAV", "PCM_U8", 1e-2),
        ("a.flac", "FLAC", "PCM_16", 1e-4),
        ("a.flac", "FLAC", "PCM_24", 1e-6),
        ("a.ogg", "OGG", "VORBIS", None),
        ("a.opus", "OGG", "OPUS", None),
        ("a.mp3", "MP3", "MPEG_LAYER_III", None),
    ],
)
def test_every_format_and_bit_depth_decodes_to_mono_float32(tmp_path, name, format, subtype, tolerance):
    rate = 48000 if subtype == "OPUS" else 22050
    x = sine(440, rate, 1.0)
    path = write_audio(tmp_path / name, x, rate, subtype=subtype, format=format)
    audio = decode(path)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.rate == rate and audio.info.format == format and audio.info.subtype == subtype
    if tolerance is not None:
        assert len(audio.samples) == len(x)
        assert np.max(np.abs(audio.samples - x)) <= tolerance
    else:  # lossy codecs: same length within codec padding, same level
        assert abs(len(audio.samples) - len(x)) < 0.05 * rate
        assert abs(np.sqrt(np.mean(audio.samples**2)) - np.sqrt(np.mean(x**2))) < 0.05


def test_stereo_is_mixed_to_mono_or_one_channel_taken(tmp_path):
    x = sine(300, 16000, 0.5, channels=2)  # channel 1 is twice channel 0
    path = write_audio(tmp_path / "s.flac", x, 16000, subtype="PCM_24")
    mixed = decode(path)
    assert mixed.info.channels == 2
    np.testing.assert_allclose(mixed.samples, x.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(decode(path, channel=1).samples, x[:, 1], atol=1e-6)
    with pytest.raises(ItemError, match="has 2 channel"):
        decode(path, channel=2)


def test_decode_from_bytes_equals_decode_from_file(tmp_path):
    x = sine(1000, 8000, 0.3)
    path = write_audio(tmp_path / "a.wav", x, 8000)
    assert np.array_equal(decode(path).samples, decode(open(path, "rb").read()).samples)
    assert np.array_equal(decode(encode(x, 8000)).samples, decode(path).samples)


def test_bad_inputs_are_item_errors_with_a_reason(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ItemError, match="empty file"):
        decode(empty)
    with pytest.raises(ItemError, match="no such file"):
        decode(tmp_path / "missing.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x01garbage" * 10)
    with pytest.raises(ItemError, match="cannot decode"):
        decode(corrupt)
    zero = write_audio(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(ItemError, match="0 samples"):
        decode(zero)
    nan = sine(100, 16000, 0.1)
    nan[5] = np.nan
    with pytest.raises(ItemError, match="non-finite"):
        decode(write_audio(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT"))


@pytest.mark.parametrize("name,subtype", [("t.wav", "PCM_16"), ("t.flac", "PCM_16"), ("t.mp3", "MPEG_LAYER_III")])
def test_truncated_files_are_detected(tmp_path, name, subtype):
    full = write_audio(tmp_path / ("full" + name), np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), 16000, subtype=subtype)
    data = open(full, "rb").read()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ItemError, match="truncated|corrupt"):
        decode(cut)


def test_probe_reads_headers_only(tmp_path):
    path = write_audio(tmp_path / "a.flac", sine(440, 44100, 2.0, channels=2), 44100)
    info = probe(path)
    assert (info.rate, info.channels, info.frames, info.format) == (44100, 2, 88200, "FLAC")
    assert info.duration == 2.0


def test_encode_round_trips_any_subtype(tmp_path):
    x = sine(440, 16000, 0.2)
    for subtype in ("PCM_16", "PCM_24", "FLOAT"):
        back, rate = sf.read(__import__("io").BytesIO(encode(x, 16000, "WAV", subtype)), dtype="float32")
        assert rate == 16000 and np.max(np.abs(back - x)) < 1e-4


def test_an_existing_file_that_is_not_audio_is_said_so(tmp_path):
    text = tmp_path / "text.mp3"
    text.write_text("these are words, not an mp3 " * 40)
    with pytest.raises(ItemError) as err:
        decode(text)
    assert str(err.value) == "cannot decode audio: not a format libsndfile recognises (or a damaged header)"


def test_the_mp3_decoders_own_messages_are_logged_not_printed(tmp_path, capfd, caplog, monkeypatch):
    import logging

    # An earlier in-process command may have set audiotok's logging up (a handler on a closed stream, no propagation).
    monkeypatch.setattr(logging.getLogger("audiotok"), "handlers", [])
    monkeypatch.setattr(logging.getLogger("audiotok"), "propagate", True)
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with caplog.at_level("DEBUG", logger="audiotok.io.audio"), pytest.raises(ItemError):
        decode(noise)
    assert capfd.readouterr().err == ""  # libmpg123 wrote its note to the logger, not to the terminal
    assert any(record.getMessage().startswith(f"{noise}: decoder: ") for record in caplog.records)
