"""The tokenize half of BiCodec as one module whose state-dict keys are the checkpoint's.

`encoder` + `quantizer` turn the wav2vec2 feature mix into semantic tokens (50 Hz);
`speaker_encoder` turns the mel spectrogram of the reference clip into global tokens.
The mel is torchaudio's MelSpectrogram with Spark-TTS's options: magnitude (power 1),
Slaney mel scale and norm, no log.
"""

from dataclasses import dataclass

import torch
from torch import nn

from audiotok.bicodec.quantizers import FactorizedVQ
from audiotok.bicodec.speaker import SpeakerTokenizer
from audiotok.bicodec.vocos import FeatureEncoder


@dataclass
class BiCodecConfig:
    """The parts of BiCodec/config.yaml (`audio_tokenizer`) that tokenizing reads."""

    mel_params: dict
    encoder: dict
    quantizer: dict
    speaker_encoder: dict

    @property
    def codebook_size(self) -> int:
        return int(self.quantizer["codebook_size"])


class BiCodecTokenizerModel(nn.Module):
    def __init__(self, config: BiCodecConfig):
        super().__init__()
        import torchaudio

        enc, vq, spk, mel = config.encoder, config.quantizer, config.speaker_encoder, config.mel_params
        stages = len(enc.get("sample_ratios", [1, 1]))
        self.encoder = FeatureEncoder(
            enc["input_channels"], enc["vocos_dim"], enc["vocos_intermediate_dim"], enc["vocos_num_layers"], enc["out_channels"], stages=stages
        )
        self.quantizer = FactorizedVQ(vq["input_dim"], vq["codebook_size"], vq["codebook_dim"])
        self.speaker_encoder = SpeakerTokenizer(
            spk["input_dim"], spk["out_dim"], spk["latent_dim"], spk["token_num"], list(spk["fsq_levels"]), spk["fsq_num_quantizers"]
        )
        # Not part of the loaded weights: its window and filter bank are rebuilt from mel_params.
        self.mel = torchaudio.transforms.MelSpectrogram(
            mel["sample_rate"],
            mel["n_fft"],
            mel["win_length"],
            mel["hop_length"],
            mel["mel_fmin"],
            mel.get("mel_fmax"),
            n_mels=mel["num_mels"],
            power=1,
            norm="slaney",
            mel_scale="slaney",
        )

    def weight_keys(self) -> dict[str, torch.Size]:
        """Every checkpoint tensor this module needs, with its shape (the mel is not loaded)."""
        return {k: v.shape for k, v in self.state_dict().items() if not k.startswith("mel.")}

    def semantic_tokens(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats [B, T, input_channels] padded, lengths [B] -> tokens [B, T] (past each length: padding)."""
        return self.quantizer(self.encoder(feats.transpose(1, 2), lengths))

    def latents(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(feats.transpose(1, 2), lengths)

    def global_tokens(self, reference: torch.Tensor) -> torch.Tensor:
        """reference clips [B, samples] (one length) -> tokens [B, num_quantizers, token_num]."""
        mel = self.mel(reference.float()).to(next(self.speaker_encoder.parameters()).dtype)
        return self.speaker_encoder(mel)
