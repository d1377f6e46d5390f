"""BiCodecTokenizer: waves -> {"global_tokens": 32 ints in [0, 4096), "semantic_tokens": 50 a second in [0, 8192)}.

The procedure is Spark-TTS's BiCodecTokenizer.tokenize (MODELS.md section 3) for a list
of recordings at once:
1. volume normalisation (config.yaml `volume_normalize`; audiotok.dsp.normalize.volume_normalize);
2. the reference clip: the first ref_segment_duration x sample_rate samples, rounded down to
   latent_hop_length (96000), the recording tiled first when shorter;
3. semantic tokens: wav2vec2 hidden states 11/14/16 averaged (semantic.py), the Vocos encoder
   and the factorized VQ, all on a padded batch with lengths;
4. global tokens: mel of the reference clips, ECAPA-TDNN latent, Perceiver resampler, residual FSQ.

This is the `bicodec:DIR` tokenizer of the shard pipeline: `sample_rate`, `fields`, and
`__call__(waves) -> list of dicts` in input order. Waves are mono float32 at 16 kHz; one
shorter than a wav2vec2 frame (400 samples) or holding NaN/Inf raises ItemError naming it
(call it on that wave alone to isolate it). The caller chooses the batch (the CLI sorts
by length and fills --batch-seconds).
"""

from pathlib import Path

import numpy as np
import torch

from audiotok.bicodec.loader import load_bicodec
from audiotok.bicodec.semantic import SemanticFeatures
from audiotok.dsp.normalize import volume_normalize
from audiotok.errors import AudiotokError, ItemError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class BiCodecTokenizer:
    sample_rate = 16000
    fields = ("global_tokens", "semantic_tokens")

    def __init__(self, model_dir, device: str = "cpu", dtype: str = "float32"):
        if dtype not in DTYPES:
            raise AudiotokError(f"unknown dtype {dtype!r}", f"choose one of {', '.join(DTYPES)}")
        from audiotok.device import resolve as resolve_device

        device = resolve_device(device)  # "auto" -> cuda when there is one
        from audiotok.models.store import resolve_model

        model_dir = resolve_model(str(model_dir))[0] or Path(model_dir)  # a preset name -> its local copy
        if not model_dir.is_dir():
            hint = "give the Spark-TTS-0.5B directory (config.yaml, BiCodec/, wav2vec2-large-xlsr-53/)"
            raise AudiotokError(f"no such BiCodec model directory: {model_dir}", hint)
        self.device, self.dtype = device, DTYPES[dtype]
        self.config, self.codec_config, model = load_bicodec(model_dir)
        self.model = model.to(device=device, dtype=self.dtype)
        self.model.mel.float()  # the spectrogram stays in fp32 whatever the model dtype
        self.semantic = SemanticFeatures(model_dir / "wav2vec2-large-xlsr-53", device, self.dtype)
        channels = self.codec_config.encoder["input_channels"]
        if self.semantic.hidden_size != channels:
            raise AudiotokError(f"{model_dir}: wav2vec2 hidden size {self.semantic.hidden_size} but the BiCodec encoder takes {channels} channels")
        top = self.config
        hop = int(top["latent_hop_length"])
        self.reference_samples = int(top["sample_rate"] * top["ref_segment_duration"]) // hop * hop
        self.volume_normalize = bool(top["volume_normalize"])
        self.min_samples = 400  # one wav2vec2 frame

    def check(self, index: int, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ItemError(f"wave {index}: expected mono samples, got shape {wave.shape}")
        if len(wave) < self.min_samples:
            raise ItemError(f"too short: {len(wave)} samples at 16 kHz (at least {self.min_samples})")
        if not np.isfinite(wave).all():
            raise ItemError("NaN or Inf samples")
        return wave

    def prepare(self, waves: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """(normalised waves, reference clips [B, reference_samples])."""
        waves = [self.check(i, w) for i, w in enumerate(waves)]
        if self.volume_normalize:
            waves = [volume_normalize(w) for w in waves]
        references = np.stack([self.reference_clip(w) for w in waves])
        return waves, references

    def reference_clip(self, wave: np.ndarray) -> np.ndarray:
        if len(wave) < self.reference_samples:
            wave = np.tile(wave, self.reference_samples // len(wave) + 1)
        return wave[: self.reference_samples]

    def padded_features(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.semantic(waves)
        lengths = torch.tensor([len(f) for f in feats], device=self.device)
        batch = torch.zeros((len(feats), int(lengths.max()), feats[0].shape[-1]), dtype=feats[0].dtype, device=self.device)
        for row, f in enumerate(feats):
            batch[row, : len(f)] = f
        return batch, lengths

    def latents(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Encoder outputs [frames, out_channels] per wave (float32): what the VQ quantizes."""
        waves, _ = self.prepare(waves)
        batch, lengths = self.padded_features(waves)
        with torch.inference_mode():
            out = self.model.latents(batch, lengths).float().cpu().numpy()
        return [row[:, :n].T for row, n in zip(out, lengths.tolist(), strict=True)]

    def __call__(self, waves: list[np.ndarray]) -> list[dict[str, list[int]]]:
        if not waves:
            return []
        waves, references = self.prepare(waves)
        batch, lengths = self.padded_features(waves)
        with torch.inference_mode():
            semantic = self.model.semantic_tokens(batch, lengths).cpu().numpy()
            global_tokens = self.model.global_tokens(torch.from_numpy(references).to(self.device)).cpu().numpy()
        return [
            {"global_tokens": g.reshape(-1).tolist(), "semantic_tokens": s[:n].tolist()}
            for g, s, n in zip(global_tokens, semantic, lengths.tolist(), strict=True)
        ]
