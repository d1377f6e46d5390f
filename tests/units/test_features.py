import numpy as np
import pytest
import torch
import torchaudio

from audiotok.units.features import KaldiFeatures, WhisperLogMel, deltas


@pytest.fixture
def noise():
    return (np.random.default_rng(0).standard_normal(24000) * 0.1).astype(np.float32)


def test_fbank_and_mfcc_match_kaldi_compliance(noise):
    scaled = torch.from_numpy(noise * 32768)[None]
    fbank = KaldiFeatures("fbank")(noise)
    reference = torchaudio.compliance.kaldi.fbank(scaled, num_mel_bins=80, dither=0.0, energy_floor=0.0).numpy()
    assert fbank.shape == reference.shape == (148, 80)
    np.testing.assert_allclose(fbank, reference, atol=1e-3)
    mfcc = KaldiFeatures("mfcc")(noise)
    reference = torchaudio.compliance.kaldi.mfcc(scaled, dither=0.0, use_energy=False, energy_floor=0.0).numpy()
    np.testing.assert_allclose(mfcc, reference, atol=1e-3)


def test_mfcc_deltas_are_fairseqs(noise):
    features = KaldiFeatures("mfcc", add_deltas=True)(noise)
    base = torch.from_numpy(features[:, :13].T.copy())
    first = torchaudio.functional.compute_deltas(base)
    second = torchaudio.functional.compute_deltas(first)
    assert features.shape == (148, 39)
    np.testing.assert_allclose(features[:, 13:26], first.numpy().T, atol=1e-4)
    np.testing.assert_allclose(features[:, 26:], second.numpy().T, atol=1e-4)
    np.testing.assert_array_equal(deltas(np.ones((5, 2), np.float32)), np.zeros((5, 2)))


@pytest.mark.parametrize("num_mels", [80, 128])
def test_logmel_is_whispers(noise, num_mels):
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=num_mels)
    ours = WhisperLogMel(num_mels)(noise[:16000])
    theirs = extractor(noise[:16000], sampling_rate=16000, return_tensors="np", padding=False).input_features[0].T
    assert ours.shape == (100, num_mels)
    np.testing.assert_allclose(ours, theirs[:100], atol=1e-5)
