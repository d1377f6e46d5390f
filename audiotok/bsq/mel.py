"""The log-mel front end and its inverse (Griffin-Lim), one definition for every command.

Power mel spectrogram (torchaudio: Hann window n_fft, hop, centred frames, HTK
mel filters without area normalisation), in dB against a FIXED reference: the
power a full-scale sine reaches in one STFT bin, (sum of the window / 2)^2. A
full-scale tone therefore sits near 0 dB and the level of a recording is kept
(no per-utterance max normalisation, so a window means the same wherever it is
cut from). dB is clamped to [min_db, max_db] = [-80, 0] and scaled linearly to
[-1, 1]: scaled = 2 * (dB - min_db) / (max_db - min_db) - 1, so silence is -1.
"""

import math

import numpy as np
import torch

from audiotok.errors import AudiotokError

# The front end never leaves [-1, 1]; the margin lets an (unclamped) reconstruction be encoded
# again, while a mel in dB (tens of units from 0) or in natural log is refused.
SCALED_MARGIN = 0.5


class NotScaledMelError(AudiotokError, ValueError):
    """A mel the model cannot take: outside [-1, 1] (most likely in dB), or not finite."""

    def __str__(self) -> str:  # Python callers see the hint too, in one line
        return self.one_line().removeprefix("error: ")


def check_scaled(mel: torch.Tensor) -> None:
    """Refuse a mel that is not the front end's scaled log-mel in [-1, 1]."""
    low, high = (float(v) for v in torch.aminmax(mel.detach()))
    if -1.0 - SCALED_MARGIN <= low and high <= 1.0 + SCALED_MARGIN:
        return
    if not (math.isfinite(low) and math.isfinite(high)):
        raise NotScaledMelError("the mel holds NaN or Inf")
    looks_like = ": it looks like dB" if low < -10.0 or high > 10.0 else ""
    raise NotScaledMelError(
        f"the mel spans [{low:.4g}, {high:.4g}], outside the [-1, 1] the model takes{looks_like}",
        "scale dB first: MelFrontend().scale_db(db), 2 * (dB - min_db) / (max_db - min_db) - 1 with dB clamped "
        "to [min_db, max_db] = [-80, 0]; or compute the mel from audio with audiotok.bsq.mel.MelFrontend",
    )


class MelFrontend:
    def __init__(self, sample_rate=16000, n_fft=1024, hop_length=160, n_mels=128, min_db=-80.0, max_db=0.0):
        import torchaudio

        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        self.min_db, self.max_db = float(min_db), float(max_db)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0, center=True, norm=None, mel_scale="htk"
        )
        window_sum = torch.hann_window(n_fft).sum().item()
        self.reference_db = 10.0 * math.log10((window_sum / 2.0) ** 2)

    def frames(self, samples: int) -> int:
        return samples // self.hop_length + 1

    def __call__(self, samples) -> torch.Tensor:
        """Waveform (samples,) at `sample_rate` -> scaled log-mel (frames, n_mels) in [-1, 1]."""
        wave = torch.as_tensor(np.asarray(samples, dtype=np.float32))
        with torch.no_grad():
            power = self.mel(wave).transpose(-1, -2)
        db = 10.0 * torch.log10(power.clamp_min(1e-12)) - self.reference_db
        return self.scale_db(db)

    def scale_db(self, db: torch.Tensor) -> torch.Tensor:
        db = db.clamp(self.min_db, self.max_db)
        return 2.0 * (db - self.min_db) / (self.max_db - self.min_db) - 1.0

    def unscale(self, scaled: torch.Tensor) -> torch.Tensor:
        """Scaled mel -> dB."""
        return (scaled.clamp(-1.0, 1.0) + 1.0) / 2.0 * (self.max_db - self.min_db) + self.min_db

    def griffin_lim(self, scaled: torch.Tensor, iterations: int = 32, seed: int = 0) -> np.ndarray:
        """Scaled mel (frames, n_mels) -> waveform, with the same STFT parameters.

        The mel filter bank is inverted by non-negative least squares (torchaudio's
        InverseMelScale), the phase by Griffin-Lim from a seeded random start, so the
        same mel always gives the same waveform.
        """
        import torchaudio

        power_mel = torch.pow(10.0, (self.unscale(scaled) + self.reference_db) / 10.0).transpose(0, 1)
        inverse = torchaudio.transforms.InverseMelScale(
            n_stft=self.n_fft // 2 + 1, n_mels=self.n_mels, sample_rate=self.sample_rate, norm=None, mel_scale="htk"
        )
        griffin = torchaudio.transforms.GriffinLim(n_fft=self.n_fft, hop_length=self.hop_length, power=2.0, n_iter=iterations, momentum=0.99, rand_init=True)
        state = torch.get_rng_state()
        torch.manual_seed(seed)
        try:
            with torch.no_grad():
                wave = griffin(inverse(power_mel.float()).clamp_min(0.0))
        finally:
            torch.set_rng_state(state)
        return wave.numpy().astype(np.float32)


def waveform_at(audio, rate: int) -> np.ndarray:
    """A decoded item's samples (mono, as decode gives them) at the front end's rate."""
    from audiotok.dsp.resample import resample

    samples = audio.samples if audio.samples.ndim == 1 else audio.samples.mean(axis=1)
    if audio.rate != rate:
        samples = resample(samples, audio.rate, rate)
    return np.asarray(samples, dtype=np.float32)


def frontend_from_options(options: dict) -> MelFrontend:
    return MelFrontend(**options)
