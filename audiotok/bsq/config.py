"""Training configuration: one YAML file with `model`, `data` and `optim` sections.

Every key has a default here; a key the schema does not know is an error that
names it (a typo must not silently fall back to a default). `preset: small`
(tiny, small, base, large) starts from a shipped config in audiotok/bsq/configs/.
A file in the seed's layout (model.params.audioconfig, data.n_mels, optimizer,
...) is read through seed.py: its keys renamed, or refused in one line.
"""

from pathlib import Path

from audiotok.errors import UsageError
from audiotok.training import layered_config, read_yaml

CONFIG_DIR = Path(__file__).parent / "configs"
SECTIONS = "model, data and optim sections"
PRESETS = ("tiny", "small", "base", "large")

DEFAULTS = {
    "model": {
        "input_size": 128,  # mel bins
        "input_length": 1024,  # frames a window holds (10.24 s); the time position table's length
        "patch_size": 16,  # frames x mel bins per patch
        "width": 512,
        "layers": 6,
        "heads": 8,
        "mlp_ratio": 4.0,
        "use_conv_module": True,
        "conv_kernel_size": 31,
        "embed_dim": 9,  # bits per token
        "l2_norm": True,
        "unit_codes": True,  # codes sign(z) / sqrt(embed_dim), unit vectors; false: sign(z)
        "inv_temperature": 100.0,  # sharpness of the soft code assignment in the entropy terms
        "entropy_group_size": 9,  # bits per group in the codebook-entropy approximation
        "commit_weight": 0.25,
        "entropy_weight": 0.1,
        "codebook_entropy_weight": 1.0,  # gamma: how much the batch's code spread is rewarded
        "grad_checkpointing": False,
    },
    "data": {
        "train": None,  # an audio table (data dir, folder, scp:, tar:, jsonl:, commonvoice:TSV)
        "valid": None,  # a separate table; or null to hold out `valid_count` utterances of train
        "valid_count": 8,
        "segment_frames": None,  # training crop in frames; null: input_length
        "sample_rate": 16000,
        "n_fft": 1024,
        "hop_length": 160,
        "min_db": -80.0,
        "max_db": 0.0,
        "spec_augment": {"time_masks": 2, "time_width": 20, "freq_masks": 2, "freq_width": 16},
    },
    "optim": {
        "batch_size": 8,  # global batch: split over DDP ranks
        "max_steps": 1000,
        "lr": 3.0e-4,
        "min_lr": 1.0e-5,
        "warmup_steps": 100,
        "weight_decay": 0.01,
        "betas": [0.9, 0.99],
        "eps": 1.0e-8,  # Adam's epsilon
        "grad_clip": 1.0,
        "seed": 0,
        "log_every": 10,
        "valid_every": 100,
        "checkpoint_every": 100,
        "keep_checkpoints": 2,
        "mixed_precision": True,  # bf16 autocast on GPU; the CPU always runs fp32
        "dtype": "float32",  # float64: for numerical checks (DDP parity), never needed to train
    },
}


def resolve(raw: dict) -> dict:
    """Defaults, then the preset named by `preset`, then the file's own keys (seed-style keys translated); checked."""
    from audiotok.bsq.seed import translate_config

    return layered_config(translate_config(raw), DEFAULTS, CONFIG_DIR, PRESETS, SECTIONS, check)


def load(path: str | Path) -> dict:
    """Read a config file (or a preset name) into a full, checked config."""
    if str(path) in PRESETS:
        return resolve({"preset": str(path)})
    return resolve(read_yaml(Path(path), SECTIONS, PRESETS))


def check(config: dict) -> None:
    m, d, o = config["model"], config["data"], config["optim"]
    p = m["patch_size"]
    if m["input_size"] % p or m["input_length"] % p:
        raise UsageError(f"model.input_size ({m['input_size']}) and model.input_length ({m['input_length']}) must be multiples of model.patch_size ({p})")
    if m["width"] % m["heads"]:
        raise UsageError(f"model.width ({m['width']}) must be a multiple of model.heads ({m['heads']})")
    if not 1 <= m["embed_dim"] <= 62:
        raise UsageError(f"model.embed_dim must be within [1, 62] bits, got {m['embed_dim']}")
    if m["conv_kernel_size"] % 2 == 0:
        raise UsageError(f"model.conv_kernel_size must be odd, got {m['conv_kernel_size']}")
    segment = d["segment_frames"] or m["input_length"]
    if segment % p or segment > m["input_length"]:
        raise UsageError(f"data.segment_frames ({segment}) must be a multiple of the patch size and at most model.input_length ({m['input_length']})")
    if o["dtype"] not in ("float32", "float64"):
        raise UsageError(f"optim.dtype must be float32 or float64, got {o['dtype']!r}")
    for key in ("batch_size", "max_steps", "log_every", "valid_every", "checkpoint_every"):
        if not isinstance(o[key], int) or o[key] < 1:
            raise UsageError(f"optim.{key} must be a positive integer, got {o[key]!r}")


def frontend_options(config: dict) -> dict:
    """What the mel front end needs, as recorded in a model directory."""
    d = config["data"]
    return {
        "sample_rate": d["sample_rate"],
        "n_fft": d["n_fft"],
        "hop_length": d["hop_length"],
        "n_mels": config["model"]["input_size"],
        "min_db": d["min_db"],
        "max_db": d["max_db"],
    }
