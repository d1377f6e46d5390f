"""Write a BiCodec model directory with random weights in Spark-TTS-0.5B's exact file layout.

For tests ("tiny": small widths, 18 wav2vec2 layers so that 11/14/16 exist and some are
dropped) and benchmarks ("full": the real sizes — wav2vec2-large-xlsr-53's 24 x 1024 layers
and MODELS.md's BiCodec sizes — so the compute equals the trained model's). The
safetensors file holds every key the real one does, decoder side included, with the
quantizer's convolutions stored weight-normalised (`weight_g`/`weight_v`).
"""

import json
from pathlib import Path

import torch

from audiotok.bicodec.model import BiCodecConfig, BiCodecTokenizerModel

MEL_PARAMS = {"sample_rate": 16000, "n_fft": 1024, "win_length": 640, "hop_length": 320, "mel_fmin": 10, "mel_fmax": None, "num_mels": 128}

SIZES = {
    "tiny": {
        "wav2vec2": dict(
            hidden_size=32,
            num_hidden_layers=18,
            num_attention_heads=2,
            intermediate_size=64,
            conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        ),
        "vocos": dict(vocos_dim=16, vocos_intermediate_dim=32, vocos_num_layers=2),
        "latent": 24,
        "speaker_out": 32,
        "speaker_latent": 32,
        "decoder_channels": 16,
    },
    "full": {
        "wav2vec2": dict(
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            conv_dim=(512,) * 7,
            num_conv_pos_embeddings=128,
            num_conv_pos_embedding_groups=16,
        ),
        "vocos": dict(vocos_dim=384, vocos_intermediate_dim=2048, vocos_num_layers=12),
        "latent": 1024,
        "speaker_out": 1024,
        "speaker_latent": 128,
        "decoder_channels": 1536,
    },
}


def bicodec_yaml(size: str) -> dict:
    s = SIZES[size]
    hidden, latent = s["wav2vec2"]["hidden_size"], s["latent"]
    encoder = {"input_channels": hidden, **s["vocos"], "out_channels": latent, "sample_ratios": [1, 1]}
    return {
        "audio_tokenizer": {
            "mel_params": dict(MEL_PARAMS),
            "encoder": encoder,
            "decoder": {"input_channel": latent, "channels": s["decoder_channels"], "rates": [8, 5, 4, 2], "kernel_sizes": [16, 11, 8, 4]},
            "quantizer": {
                "input_dim": latent,
                "codebook_size": 8192,
                "codebook_dim": 8,
                "commitment": 0.25,
                "codebook_loss_weight": 2.0,
                "use_l2_normlize": True,
                "threshold_ema_dead_code": 0.2,
            },
            "speaker_encoder": {
                "input_dim": 128,
                "out_dim": s["speaker_out"],
                "latent_dim": s["speaker_latent"],
                "token_num": 32,
                "fsq_levels": [4, 4, 4, 4, 4, 4],
                "fsq_num_quantizers": 1,
            },
            "prenet": {**encoder, "input_channels": latent, "condition_dim": s["speaker_out"], "use_tanh_at_final": False},
            "postnet": {**encoder, "input_channels": latent, "vocos_num_layers": 6, "use_tanh_at_final": False},
        }
    }


def _vocos_shapes(prefix: str, c_in: int, dim: int, inter: int, layers: int, condition: int | None) -> dict:
    def norm(name):
        if condition:
            return {f"{name}.{part}.{kind}": shape for part in ("scale", "shift") for kind, shape in (("weight", (dim, condition)), ("bias", (dim,)))}
        return {f"{name}.weight": (dim,), f"{name}.bias": (dim,)}

    shapes = {"embed.weight": (dim, c_in, 7), "embed.bias": (dim,), **norm("norm"), "final_layer_norm.weight": (dim,), "final_layer_norm.bias": (dim,)}
    for i in range(layers):
        b = f"convnext.{i}"
        shapes |= {
            f"{b}.dwconv.weight": (dim, 1, 7),
            f"{b}.dwconv.bias": (dim,),
            **norm(f"{b}.norm"),
            f"{b}.pwconv1.weight": (inter, dim),
            f"{b}.pwconv1.bias": (inter,),
            f"{b}.pwconv2.weight": (dim, inter),
            f"{b}.pwconv2.bias": (dim,),
            f"{b}.gamma": (dim,),
        }
    return {f"{prefix}{k}": v for k, v in shapes.items()}


def decoder_side_shapes(section: dict) -> dict:
    """Shapes of the keys the tokenizer ignores: prenet, postnet, wave generator, and the detokenize projections."""
    shapes = {}
    for name in ("prenet", "postnet"):
        p = section[name]
        dim, inter = p["vocos_dim"], p["vocos_intermediate_dim"]
        shapes |= {f"{name}.linear_pre.weight": (dim, p["input_channels"]), f"{name}.linear_pre.bias": (dim,)}
        for i in range(len(p["sample_ratios"])):
            shapes |= _vocos_shapes(f"{name}.downsample.{i}.1.", dim, dim, inter, 2, None)
        shapes |= _vocos_shapes(f"{name}.vocos_backbone.", dim, dim, inter, p["vocos_num_layers"], p.get("condition_dim"))
        shapes |= {f"{name}.linear.weight": (p["out_channels"], dim), f"{name}.linear.bias": (p["out_channels"],)}
    dec = section["decoder"]
    channels = dec["channels"]

    def wn(prefix, c_out, c_in, k, transpose=False):
        first = c_in if transpose else c_out
        weight = (c_in, c_out, k) if transpose else (c_out, c_in, k)
        return {f"{prefix}.weight_g": (first, 1, 1), f"{prefix}.weight_v": weight, f"{prefix}.bias": (c_out,)}

    shapes |= wn("decoder.model.0", channels, dec["input_channel"], 7)
    out = channels
    for i, (kernel, _stride) in enumerate(zip(dec["kernel_sizes"], dec["rates"], strict=True)):
        c_in, out = channels // 2**i, channels // 2 ** (i + 1)
        b = f"decoder.model.{i + 1}.block"
        shapes |= {f"{b}.0.alpha": (1, c_in, 1), **wn(f"{b}.1", out, c_in, kernel, transpose=True)}
        for unit in (2, 3, 4):
            shapes |= {
                f"{b}.{unit}.block.0.alpha": (1, out, 1),
                **wn(f"{b}.{unit}.block.1", out, out, 7),
                f"{b}.{unit}.block.2.alpha": (1, out, 1),
                **wn(f"{b}.{unit}.block.3", out, out, 1),
            }
    n = len(dec["rates"])
    shapes |= {f"decoder.model.{n + 1}.alpha": (1, out, 1), **wn(f"decoder.model.{n + 2}", 1, out, 7)}
    vq, spk = section["quantizer"], section["speaker_encoder"]
    shapes |= wn("quantizer.out_project", vq["input_dim"], vq["codebook_dim"], 1)
    shapes |= {"quantizer.cluster_size": (vq["codebook_size"],)}
    shapes |= {"speaker_encoder.project.weight": (spk["out_dim"], spk["latent_dim"] * spk["token_num"]), "speaker_encoder.project.bias": (spk["out_dim"],)}
    codebook_dim = len(spk["fsq_levels"])
    shapes |= {
        "speaker_encoder.quantizer.project_out.weight": (spk["latent_dim"], codebook_dim),
        "speaker_encoder.quantizer.project_out.bias": (spk["latent_dim"],),
    }
    return shapes


def calibrate_batch_norm(model: BiCodecTokenizerModel, clips: int = 4) -> None:
    """Set the speaker encoder's BatchNorm statistics from synthetic voiced clips, so that
    random weights give activations of unit scale that still depend on the input."""
    generator = torch.Generator().manual_seed(1234)
    t = torch.arange(96000) / 16000
    waves = []
    for i in range(clips):
        pitch = 100 + 60 * i + 20 * torch.sin(2 * torch.pi * 0.5 * t)
        voiced = torch.sin(2 * torch.pi * torch.cumsum(pitch, 0) / 16000) * (0.5 + 0.5 * torch.sin(2 * torch.pi * (2 + i) * t))
        waves.append(0.1 * (i + 1) * voiced + 0.01 * torch.randn(len(t), generator=generator))
    batch_norms = [m for m in model.speaker_encoder.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for bn in batch_norms:
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the calibration pass
        bn.train()
    with torch.no_grad():
        mel = model.mel(torch.stack(waves))
        _, latent = model.speaker_encoder.speaker_encoder(mel.transpose(1, 2))
    for bn in batch_norms:
        bn.momentum = 0.1
        bn.eval()


def random_state(section: dict, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = BiCodecTokenizerModel(BiCodecConfig(**{k: section[k] for k in ("mel_params", "encoder", "quantizer", "speaker_encoder")}))
    calibrate_batch_norm(model)
    state = {}
    for key, tensor in model.state_dict().items():
        if key.startswith("mel."):
            state["mel_transformer." + key[4:]] = tensor.clone()  # Spark-TTS saves its MelSpectrogram's buffers
        elif key.endswith(".latents") or key.endswith("gamma") or key.endswith("bn.weight"):
            state[key] = torch.randn(tensor.shape) * 0.5 + (1.0 if key.endswith(("gamma", "weight")) else 0.0)
        elif key in ("quantizer.codebook.weight", "speaker_encoder.quantizer.project_in.weight"):
            # Unit-scale: spreads random latents over the codebook and the FSQ levels.
            state[key] = torch.randn(tensor.shape)
        elif key == "quantizer.in_project.weight":
            v = torch.randn(tensor.shape) / tensor.shape[1] ** 0.5
            state["quantizer.in_project.weight_v"] = v
            state["quantizer.in_project.weight_g"] = torch.rand(tensor.shape[0], 1, 1) + 0.5
        else:
            state[key] = tensor.clone()
    for key, shape in decoder_side_shapes(section).items():
        state[key] = torch.randn(shape) * 0.02
    return {k: v.contiguous() for k, v in state.items()}


def write_random_bicodec(directory, size: str = "tiny", seed: int = 0) -> Path:
    """Write config.yaml, BiCodec/{config.yaml, model.safetensors}, wav2vec2-large-xlsr-53/ under `directory`."""
    import yaml
    from safetensors.torch import save_file
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    directory = Path(directory)
    (directory / "BiCodec").mkdir(parents=True, exist_ok=True)
    top = {
        "highpass_cutoff_freq": 40,
        "sample_rate": 16000,
        "segment_duration": 2.4,
        "max_val_duration": 12,
        "latent_hop_length": 320,
        "ref_segment_duration": 6,
        "volume_normalize": True,
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(top, sort_keys=False))
    section = bicodec_yaml(size)
    (directory / "BiCodec" / "config.yaml").write_text(yaml.safe_dump(section, sort_keys=False))
    save_file(random_state(section["audio_tokenizer"], seed), str(directory / "BiCodec" / "model.safetensors"))
    torch.manual_seed(seed + 1)
    w2v = directory / "wav2vec2-large-xlsr-53"
    config = Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, feat_extract_activation="gelu", **SIZES[size]["wav2vec2"])
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    Wav2Vec2Model(config).save_pretrained(str(w2v))
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True, feature_size=1, sampling_rate=16000, padding_value=0.0).save_pretrained(str(w2v))
    json.loads((w2v / "config.json").read_text())  # written and readable
    return directory
