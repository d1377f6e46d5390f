"""Step-Audio's audio front end as the reference for audiotok's: utils.py and tokenizer.py of
stepfun-ai/Step-Audio, function for function, with the real torchaudio and librosa.

Two call paths reach `preprocess_wav`: `StepAudioTokenizer.__call__` (stepaudio.py encoding a
user's speech for the LLM) calls `wav2token(audio, sr, False)`, without trim; tts.py encodes a
voice prompt with `wav2token(prompt_wav, prompt_wav_sr)`, the defaults, with trim.
"""

import math

import numpy as np
import soundfile as sf


def load_audio(path):
    """utils.load_audio: torchaudio.load, then the mean over channels in float32.

    torchaudio.load needs torchcodec, which is not installed; for PCM files both decode
    a sample to the same float32 (integer / 2**(bits-1)), so soundfile stands in for it.
    """
    import torch

    data, sr = sf.read(path, dtype="float32", always_2d=True)
    audio_wav = torch.from_numpy(np.ascontiguousarray(data.T))
    audio_wav = audio_wav.mean(dim=0, keepdim=True)
    return audio_wav, sr


def resample_audio(wav, original_sample_rate, target_sample_rate):
    import torchaudio

    if original_sample_rate != target_sample_rate:
        assert original_sample_rate > target_sample_rate, f"wav sample rate {original_sample_rate} must be greater than {target_sample_rate}"
        wav = torchaudio.transforms.Resample(orig_freq=original_sample_rate, new_freq=target_sample_rate)(wav)
    return wav


def energy_norm_fn(wav):
    import torch

    if type(wav) is np.ndarray:
        max_data = np.max(np.abs(wav))
        wav = wav / max(max_data, 0.01) * 0.999
    else:
        max_data = torch.max(torch.abs(wav))
        wav = wav / max(max_data, 0.01) * 0.999
    return wav


def trim_silence(audio, sr, keep_left_time=0.05, keep_right_time=0.22, hop_size=240):
    import librosa

    _, index = librosa.effects.trim(audio, top_db=20, frame_length=512, hop_length=128)
    num_frames = int(math.ceil((index[1] - index[0]) / hop_size))
    left_sil_samples = int(keep_left_time * sr)
    wav_len = len(audio)
    start_idx = index[0] - left_sil_samples
    trim_wav = audio
    if start_idx > 0:
        trim_wav = trim_wav[start_idx:]
    else:
        trim_wav = np.pad(trim_wav, (abs(start_idx), 0), mode="constant", constant_values=0.0)
    wav_len = len(trim_wav)
    out_len = int(num_frames * hop_size + (keep_left_time + keep_right_time) * sr)
    if out_len < wav_len:
        trim_wav = trim_wav[:out_len]
    else:
        trim_wav = np.pad(trim_wav, (0, (out_len - wav_len)), mode="constant", constant_values=0.0)
    return trim_wav


def preprocess_wav(audio, sample_rate, enable_trim=True, energy_norm=True):
    """StepAudioTokenizer.preprocess_wav: audio is a float32 tensor [1, samples]."""
    import torch

    audio = resample_audio(audio, sample_rate, 16000)
    if energy_norm:
        audio = energy_norm_fn(audio)
    if enable_trim:
        audio = audio.cpu().numpy().squeeze(0)
        audio = trim_silence(audio, 16000)
        audio = torch.from_numpy(audio)
        audio = audio.unsqueeze(0)
    return audio


def llm_input(audio, sample_rate) -> np.ndarray:
    """What __call__ -> wav2token(audio, sr, False) tokenizes."""
    return preprocess_wav(audio, sample_rate, False)[0].numpy()


def tts_prompt(audio, sample_rate) -> np.ndarray:
    """What wav2token(prompt_wav, prompt_wav_sr) tokenizes (tts.py's voice prompt)."""
    return preprocess_wav(audio, sample_rate)[0].numpy()


def resample_only(audio, sample_rate) -> np.ndarray:
    """preprocess_wav with energy_norm=False and enable_trim=False."""
    return preprocess_wav(audio, sample_rate, False, False)[0].numpy()


FRONT_ENDS = {"llm-input": llm_input, "tts-prompt": tts_prompt, "none": resample_only}
