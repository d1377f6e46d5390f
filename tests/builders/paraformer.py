"""Write a FunASR Paraformer model directory (config.yaml, model.pt, am.mvn) from an
audiotok encoder: random weights for tests and benchmarks, in the layout load_paraformer reads."""

from pathlib import Path

import numpy as np

from audiotok.units.funasr_dir import CMVN, CONFIG, WEIGHTS


def write_am_mvn(path: Path, shift: np.ndarray, scale: np.ndarray) -> None:
    """Kaldi nnet1 text, as FunASR ships am.mvn (9 significant digits: float32 round-trips)."""
    dim = len(shift)
    lines = ["<Nnet>", f"<Splice> {dim} {dim}", "[ 0 ]", f"<AddShift> {dim} {dim}", "<LearnRateCoef> 0 [ " + " ".join(f"{v:.9g}" for v in shift) + " ]"]
    lines += [f"<Rescale> {dim} {dim}", "<LearnRateCoef> 0 [ " + " ".join(f"{v:.9g}" for v in scale) + " ]", "</Nnet>"]
    path.write_text("\n".join(lines) + "\n")


def save_funasr_dir(directory: Path, encoder, shift: np.ndarray, scale: np.ndarray, dither: float = 0.0) -> Path:
    """Write `encoder` (a SanmEncoder) in FunASR's layout: config.yaml, model.pt, am.mvn."""
    import torch
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    c = encoder.config
    config = {
        "model": "ParaformerStreaming",
        "encoder": "SANMEncoderChunkOpt",
        "encoder_conf": {
            "output_size": c.output_size,
            "attention_heads": c.attention_heads,
            "linear_units": c.linear_units,
            "num_blocks": c.num_blocks,
            "input_layer": "pe_online",
            "normalize_before": True,
            "kernel_size": c.kernel_size,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
        },
        "frontend": "WavFrontendOnline",
        "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10, "lfr_m": 7, "lfr_n": 6, "dither": dither},
        "input_size": c.input_size,
    }
    (directory / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    torch.save({f"encoder.{k}": v.detach().clone() for k, v in encoder.state_dict().items()}, directory / WEIGHTS)
    write_am_mvn(directory / CMVN, shift, scale)
    return directory


def random_encoder(config, seed: int = 0):
    """A SanmEncoder with seeded random weights, LayerNorms and FSMN kernels included."""
    import torch

    from audiotok.units.paraformer import SanmEncoder

    generator = torch.Generator().manual_seed(seed)
    encoder = SanmEncoder(config)
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "norm" in name:
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            elif "fsmn" in name:
                param.copy_(0.3 * noise)
            else:
                fan_in = param.shape[1] if param.dim() > 1 else param.shape[0]
                param.copy_(noise / fan_in**0.5)
    return encoder.eval()
