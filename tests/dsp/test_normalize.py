import numpy as np
import pytest

from audiotok.dsp import normalize as N
from audiotok.errors import ItemError
from tests.conftest import sine, tone_burst
from tests.dsp import step_audio_reference as step_audio


def bicodec_reference(audio, coeff=0.2):
    """Spark-TTS's audio_volume_normalize, written out plainly for comparison."""
    temp = np.sort(np.abs(audio))
    if temp[-1] < 0.1:
        audio = audio / max(temp[-1], 1e-3) * 0.1
    temp = temp[temp > 0.01]
    if temp.shape[0] <= 10:
        return audio
    volume = np.mean(temp[int(0.9 * temp.shape[0]) : int(0.99 * temp.shape[0])])
    audio = audio * np.clip(coeff / volume, a_min=0.1, a_max=10)
    if np.max(np.abs(audio)) > 1:
        audio = audio / np.max(np.abs(audio))
    return audio


@pytest.mark.parametrize("scale", [3.0, 1.0, 0.25, 0.0101, 0.01, 0.0099, 1e-4, 0.0])
def test_peak_normalisation_is_step_audios_energy_norm_to_the_bit(scale):
    """Step-Audio's energy_norm_fn on a float32 tensor (its path) and on an array: equal to the bit,
    below the 0.01 floor too (scaled by 1 / 0.01, not to full scale)."""
    import torch

    x = (np.random.default_rng(7).standard_normal(16001) * scale).astype(np.float32)
    ours = N.peak_normalize(x)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, step_audio.energy_norm_fn(torch.from_numpy(x)[None])[0].numpy())
    assert np.array_equal(ours, step_audio.energy_norm_fn(x))
    peak = np.max(np.abs(x))
    assert np.isclose(np.max(np.abs(ours)), 0.999 * peak / max(peak, 0.01), rtol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.05, 3.0, 0.0005])
def test_volume_normalisation_matches_bicodec(scale):
    x = tone_burst(noise=1e-3) * scale
    np.testing.assert_allclose(N.volume_normalize(x), bicodec_reference(x.astype(np.float64)), atol=1e-6)


def test_rms_and_loudness_targets_are_reached():
    x = tone_burst(tone=2.0)
    assert abs(N.rms_db(N.rms_normalize(x, -26.0)) - -26.0) < 1e-3
    y = N.loudness_normalize(x, 16000, -23.0)
    assert abs(N.loudness_lufs(y, 16000) - -23.0) < 0.05
    with pytest.raises(ItemError, match="too short"):
        N.loudness_lufs(x[:1000], 16000)
    with pytest.raises(ItemError, match="silence"):
        N.rms_normalize(np.zeros(100, np.float32), -20)


def test_peak_limit_scales_down_only():
    x = sine(100, 16000, 0.1, amplitude=0.5)
    assert N.limit_peak(x, 1.0) is x
    assert np.isclose(np.max(np.abs(N.limit_peak(x * 4, 1.0))), 1.0)
