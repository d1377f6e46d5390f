import numpy as np
import pytest

from audiotok.dsp.resample import resample, resampled_length
from tests.conftest import sine


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window, n=8 * len(x)))
    return float(np.argmax(spectrum) * rate / (8 * len(x)))


@pytest.mark.parametrize(
    "rate_in,rate_out", [(8000, 16000), (16000, 8000), (44100, 16000), (22050, 16000), (16000, 48000), (48000, 16000), (16000, 22050), (11025, 24000)]
)
def test_sine_frequency_amplitude_and_length_preserved(rate_in, rate_out):
    freq, amplitude, seconds = 1000.0, 0.5, 1.3
    x = sine(freq, rate_in, seconds, amplitude)
    y = resample(x, rate_in, rate_out)
    # Duration exact to a sample: the rounded input duration in output samples.
    assert len(y) == round(len(x) * rate_out / rate_in)
    assert y.dtype == np.float32
    middle = y[len(y) // 10 : -len(y) // 10]  # away from the filter's edge transients
    assert abs(dominant_frequency(middle, rate_out) - freq) < 1.0
    assert abs(np.max(np.abs(middle)) - amplitude) < 0.005
    assert abs(np.sqrt(np.mean(middle**2)) - amplitude / np.sqrt(2)) < 0.003


def test_matches_an_exact_band_limited_reference():
    """A sine resampled must equal the same sine sampled at the new rate (away from the edges)."""
    x = sine(440.0, 44100, 1.0, 0.8)
    y = resample(x, 44100, 16000)
    reference = sine(440.0, 16000, 1.0, 0.8)
    inner = slice(800, 16000 - 800)
    assert np.max(np.abs(y[inner] - reference[inner])) < 1e-3


def test_content_above_the_new_nyquist_is_removed():
    x = sine(7000.0, 16000, 1.0, 0.5)  # above 4 kHz, the Nyquist frequency of 8 kHz
    y = resample(x, 16000, 8000)
    assert np.sqrt(np.mean(y[800:-800] ** 2)) < 1e-3


def test_length_rule_rounds_half_up_and_same_rate_is_identity():
    assert resampled_length(48001, 48000, 16000) == 16000  # 16000.33
    assert resampled_length(48002, 48000, 16000) == 16001  # 16000.67
    assert resampled_length(3, 2, 1) == 2  # 1.5 -> 2
    x = sine(100, 16000, 0.1)
    assert resample(x, 16000, 16000) is x


@pytest.mark.parametrize("rate_in", [22050, 44100, 48000])
def test_torchaudio_method_is_the_transform_with_its_defaults(rate_in):
    """Step-Audio and S3Tokenizer resample with torchaudio.transforms.Resample(orig, new): equal to
    the bit, length included (ceil, not rounded); functional.resample differs (kernel in float32)."""
    import torch
    import torchaudio

    x = np.random.default_rng(rate_in).standard_normal(int(rate_in * 1.37)).astype(np.float32)
    ours = resample(x, rate_in, 16000, method="torchaudio")
    theirs = torchaudio.transforms.Resample(orig_freq=rate_in, new_freq=16000)(torch.from_numpy(x)[None])[0].numpy()
    assert ours.dtype == np.float32 and np.array_equal(ours, theirs)
    assert len(ours) == -(-len(x) * 16000 // rate_in)


def test_unknown_resampler_is_refused():
    with pytest.raises(ValueError, match="unknown resampler 'sinc'"):
        resample(np.zeros(100, np.float32), 8000, 16000, method="sinc")
