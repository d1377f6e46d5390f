"""taste-train configuration: one YAML file, every key with a default here.

Sections: `model` (the aggregator and the fusion), `rvq` (the text-aligned tokens),
`decoder` (what predicts the S3 units), `data` (feature stores and unit tables),
`optim`; and top-level `eval_every`, `checkpoint_every`, `seed`, `top_k`. A key the
schema does not know is an error that names it (the seed kept its settings as
constants at the top of a script; a typo here must not fall back to a default).
`preset: tiny|small` starts from a shipped config in audiotok/taste/configs/.
"""

from pathlib import Path

from audiotok.errors import UsageError
from audiotok.training import layered_config, read_yaml

CONFIG_DIR = Path(__file__).parent / "configs"
SECTIONS = "model, rvq, decoder, data, optim, ..."
PRESETS = ("tiny", "small")

DEFAULTS = {
    "model": {
        "dim": 256,  # width of the aggregator; the speech embeddings have this size
        "layers": 2,  # blocks of self-attention (text queries) + cross-attention (Whisper frames)
        "heads": 4,
        "ffn_ratio": 4.0,
        "dropout": 0.1,
        "max_text_tokens": 512,  # length of the text-position table
        "zero_speech": False,  # ablation: the decoder sees text embeddings only
    },
    "rvq": {
        "enabled": True,
        "codebooks": 4,  # tokens per text token
        "size": 512,  # codes per codebook
        "commitment": 0.25,  # weight of ||z - sg(q)||^2
        "codebook_weight": 1.0,  # weight of ||sg(z) - q||^2 (unused with EMA codebooks)
        "ema": True,  # codebooks as exponential moving averages of their assigned vectors
        "decay": 0.99,
        "dead_code_threshold": 0.0,  # EMA usage below this: the code restarts at a batch vector (0: never)
    },
    "decoder": {
        "type": "transformer",  # transformer (built here) or hf (a local transformers causal LM via inputs_embeds)
        "path": None,  # hf: the model directory
        "freeze": True,  # hf: keep the LM's weights fixed (the prefix projection, unit embedding and head train)
        "dim": 256,
        "layers": 4,
        "heads": 4,
        "ffn_ratio": 4.0,
        "dropout": 0.1,
        "max_positions": 4096,  # prefix + units: 160 s of S3 at 25 Hz, 80 s at 50 Hz
        "unit_vocab": 4096,  # S3 v1; v2: 6561
    },
    "data": {
        "train": {"features": None, "units": None},  # a taste-extract store and a unit table (text or JSONL)
        "valid": {"features": None, "units": None},  # optional held-out pair
        "unit_rate": None,  # S3 units a second; None: the rate s3-extract records in UNITS.recipe.json
        "rate_tolerance": 0.2,  # share of the expected count allowed off (plus 2 units)
        "eval_train_items": 64,  # train items scored at each evaluation (the first, in key order)
        "examples": 3,  # items whose true and predicted units are printed at the end
    },
    "optim": {
        "batch_size": 8,
        "max_steps": 1000,
        "lr": 5.0e-4,
        "min_lr": 1.0e-5,
        "warmup_steps": 50,
        "weight_decay": 0.01,
        "betas": [0.9, 0.98],
        "grad_clip": 1.0,
        "log_every": 10,
        "keep_checkpoints": 2,
        "mixed_precision": True,  # bf16 autocast on GPU (the RVQ stays fp32); the CPU always runs fp32
        "dtype": "float32",  # float64: for numerical checks (DDP parity), never needed to train
    },
    "eval_every": 100,
    "checkpoint_every": 100,
    "seed": 0,
    "top_k": 5,
}


def resolve(raw: dict) -> dict:
    """Defaults, then the preset named by `preset`, then the file's own keys; checked."""
    return layered_config(raw, DEFAULTS, CONFIG_DIR, PRESETS, SECTIONS, check)


def load(path: str | Path) -> dict:
    """A config file (or a preset name) -> a full, checked config. Relative data paths
    in a file are taken relative to the current directory, as on the command line."""
    if str(path) in PRESETS:
        return resolve({"preset": str(path)})
    return resolve(read_yaml(Path(path), SECTIONS, PRESETS))


def _positive_int(value, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")


def check(config: dict) -> None:
    m, r, dec, o = config["model"], config["rvq"], config["decoder"], config["optim"]
    for section, name in ((m, "model"), (dec, "decoder")):
        _positive_int(section["layers"], f"{name}.layers")
        _positive_int(section["heads"], f"{name}.heads")
    _positive_int(m["dim"], "model.dim")
    if m["dim"] % m["heads"]:
        raise UsageError(f"model.dim ({m['dim']}) must be a multiple of model.heads ({m['heads']})")
    if dec["type"] not in ("transformer", "hf"):
        raise UsageError(f"decoder.type must be transformer or hf, got {dec['type']!r}")
    if dec["type"] == "transformer" and dec["dim"] % dec["heads"]:
        raise UsageError(f"decoder.dim ({dec['dim']}) must be a multiple of decoder.heads ({dec['heads']})")
    if dec["type"] == "hf" and not dec["path"]:
        raise UsageError("decoder.type is hf but decoder.path is not set", "a local transformers causal LM directory")
    _positive_int(dec["unit_vocab"], "decoder.unit_vocab")
    rate = config["data"]["unit_rate"]
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
        raise UsageError(f"data.unit_rate must be a positive number of units a second, got {rate!r}", "leave it out to use the rate recorded beside the units")
    _positive_int(r["codebooks"], "rvq.codebooks")
    _positive_int(r["size"], "rvq.size")
    if not 0.0 < r["decay"] < 1.0:
        raise UsageError(f"rvq.decay must be within (0, 1), got {r['decay']}")
    for key in ("batch_size", "max_steps", "log_every", "keep_checkpoints"):
        _positive_int(o[key], f"optim.{key}")
    if o["dtype"] not in ("float32", "float64"):
        raise UsageError(f"optim.dtype must be float32 or float64, got {o['dtype']!r}")
    for key in ("eval_every", "checkpoint_every", "top_k", "seed"):
        if key == "seed":
            if not isinstance(config[key], int):
                raise UsageError(f"seed must be an integer, got {config[key]!r}")
        else:
            _positive_int(config[key], key)
    for split in ("train", "valid"):
        pair = config["data"][split]
        if bool(pair["features"]) != bool(pair["units"]):
            raise UsageError(f"data.{split} needs both features and units (or neither)")
