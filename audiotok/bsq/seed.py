"""The seed's names for audiotok's BSQ model and training config (seed 001).

The seed builds its model as `AudioBSQModel(audioconfig={...}, embed_dim=18, ...)`
and trains from a YAML file laid out as `model.target/params`, `data` (with
`n_mels`, `target_length`, dataset `target/params`), `optimizer`, `loss` and
`wandb`. Both are mapped here onto audiotok's keys where a setting means the
same thing. The network itself is audiotok's (model.py): the seed's sizes carry
over, its checkpoints and exact layer layout do not. A setting with no
equivalent is refused, all of them named in one line with what to use instead;
nothing is silently dropped.
"""

import copy
import math

from audiotok.errors import UsageError

SEED_MODEL_CLASS = "transcoder.models.audiobsq.AudioBSQModel"
SEED_DATASETS = ("AudioFolderDataset", "LibriSpeechSpectrogramDataset", "CommonVoiceSpectrogramDataset", "AudioSpectrogramDataset")

# AudioTransformerEncoder's defaults for the keys audiotok's model also has (same names).
SEED_AUDIOCONFIG = {
    "input_size": 128,
    "input_length": 1024,
    "patch_size": 16,
    "width": 768,
    "layers": 12,
    "heads": 12,
    "mlp_ratio": 4.0,
    "use_conv_module": False,
    "conv_kernel_size": 31,
}

# audioconfig keys for parts audiotok's encoder does not have: accepted at the value that leaves
# them out (or at the seed's default layout, which audiotok's blocks stand for).
SEED_LAYOUT = {
    "drop_rate": (0, "audiotok's model has no dropout"),
    "attn_drop_rate": (0, "audiotok's model has no dropout"),
    "drop_path_rate": (0, "audiotok's model has no stochastic depth"),
    "ls_init_value": (None, "audiotok's blocks have no LayerScale"),
    "ln_pre": (True, "audiotok's encoder layout is fixed"),
    "ln_post": (True, "audiotok's encoder layout is fixed (a final LayerNorm)"),
    "act_layer": ("gelu", "audiotok's MLP uses GELU"),
    "norm_layer": ("layer_norm", "audiotok's blocks use LayerNorm"),
    "mask_type": ("none", "audiotok's attention is unmasked"),
    "mask_block_size": (-1, "audiotok's attention is unmasked"),
}

# The seed constructor's keyword arguments and their defaults.
SEED_ARGUMENTS = {
    "embed_group_size": 9,
    "l2_norm": False,
    "logit_laplace": False,
    "ckpt_path": None,
    "ignore_keys": (),
    "grad_checkpointing": False,
    "selective_checkpointing": False,
    "clamp_range": None,  # the seed's is (-80, 0): the dB range, which audiotok's front end owns
    "daudioconfig": None,
    "beta": 0.0,
    "gamma0": 1.0,
    "gamma": 1.0,
    "zeta": 1.0,
    "persample_entropy_compute": "group",
    "cb_entropy_compute": "group",
    "post_q_l2_norm": False,
    "inv_temperature": 1.0,
}


def model_config(audioconfig: dict | None, embed_dim: int | None, **arguments) -> dict:
    """audiotok's model section for the seed's `AudioBSQModel(audioconfig, embed_dim, **arguments)`."""
    problems: list[str] = []
    model = _model_config(audioconfig, embed_dim, arguments, problems, where="")
    _refuse(problems, "AudioBSQModel arguments")
    return model


def translate_config(raw: dict) -> dict:
    """A bsq-train YAML mapping in the seed's layout -> the same settings in audiotok's keys.

    audiotok's own keys pass through unchanged; a seed key that means what an audiotok key means
    is renamed; the rest are refused together, in one line. What is not a mapping where one is
    expected is left for the config loader to name.
    """
    raw = copy.deepcopy(raw)
    problems: list[str] = []
    out = {}
    model = raw.pop("model", None)
    if isinstance(model, dict) and ("target" in model or "params" in model):
        model = _seed_model_section(model, problems)
    data = raw.pop("data", None)
    if isinstance(data, dict):
        data, data_model, sources = _seed_data_section(data, problems)
        if data_model and (model is None or isinstance(model, dict)):
            model = model if model is not None else {}
            for key, value in data_model.items():
                _put(model, key, value, "model", problems, sources.get(key))
    optim = raw.pop("optim", None)
    if "optimizer" in raw:
        from_seed = _seed_optimizer_section(raw.pop("optimizer"), problems)
        if optim is None or isinstance(optim, dict):
            optim = optim if optim is not None else {}
            _put_all(optim, from_seed, "optim", problems)
    for key, instead in SEED_SECTIONS_REFUSED.items():
        if key in raw:
            raw.pop(key)
            problems.append(f"{key} ({instead})")
    _refuse(problems, "seed config keys")
    for key, value in (("model", model), ("data", data), ("optim", optim)):
        if value is not None:
            out[key] = value
    return {**out, **raw}  # the preset, and unknown keys for the loader to name


SEED_SECTIONS_REFUSED = {
    "loss": "audiotok trains on the mel MSE plus the quantizer loss, with no discriminator: "
    "model.commit_weight, model.entropy_weight, model.codebook_entropy_weight",
    "wandb": "metrics go to OUTPUT_DIR/metrics.jsonl and loss_curve.png",
    "evaluation": "bsq-eval reports mel MSE and MAE",
}


def _refuse(problems: list[str], what: str) -> None:
    if problems:
        raise UsageError(f"{what} refused: {'; '.join(problems)}", "remove them, or use the audiotok keys named (README: BSQ tokenizer, the seed's names)")


def _put(section: dict, key: str, value, where: str, problems: list[str], source: str | None = None) -> None:
    """section[key] = value, unless the file already gave that key another value (`source`: the seed key it comes from)."""
    if key in section and section[key] != value:
        problems.append(f"{source or where + '.' + key}={value!r} disagrees with {where}.{key}={section[key]!r} set by another key")
    section[key] = value


def _put_all(section: dict, values: dict, where: str, problems: list[str]) -> None:
    for key, value in values.items():
        _put(section, key, value, where, problems)


def _model_config(audioconfig, embed_dim, arguments: dict, problems: list[str], where: str) -> dict:
    unknown = sorted(set(arguments) - set(SEED_ARGUMENTS))
    if unknown:
        raise UsageError(f"AudioBSQModel got unexpected arguments: {', '.join(unknown)}", f"the seed's are audioconfig, embed_dim, {', '.join(SEED_ARGUMENTS)}")
    if not isinstance(audioconfig, dict):
        raise UsageError(f"{where}audioconfig is required: a mapping of the encoder's sizes", f"keys: {', '.join(SEED_AUDIOCONFIG)}")
    if embed_dim is None:
        raise UsageError(f"{where}embed_dim is required: the bits a token has", "e.g. embed_dim=18")
    a = {**SEED_AUDIOCONFIG, **audioconfig}
    s = {**SEED_ARGUMENTS, **arguments}
    for key in sorted(set(a) - set(SEED_AUDIOCONFIG)):
        if key in ("time_patch_size", "freq_patch_size"):
            if a[key] not in (None, a["patch_size"]):
                problems.append(f"{where}audioconfig.{key}={a[key]} (audiotok's patches are square: model.patch_size)")
        elif key in SEED_LAYOUT:
            value, why = SEED_LAYOUT[key]
            if a[key] != value:
                problems.append(f"{where}audioconfig.{key}={a[key]!r} ({why})")
        else:
            problems.append(f"{where}audioconfig.{key} (not an encoder setting; model.* holds audiotok's)")
    if s["daudioconfig"] is not None and s["daudioconfig"] != audioconfig:
        problems.append(f"{where}daudioconfig (audiotok's decoder mirrors the encoder: the audioconfig sizes set both)")
    if s["logit_laplace"]:
        problems.append(f"{where}logit_laplace=True (audiotok's reconstruction loss is the mel MSE)")
    if s["ckpt_path"] is not None:
        problems.append(
            f"{where}ckpt_path (load a model bsq-train wrote with audiotok.bsq.modeldir.load(DIR); the seed's checkpoints hold another layer layout)"
        )
    if s["ignore_keys"]:
        problems.append(f"{where}ignore_keys (only with ckpt_path)")
    if s["selective_checkpointing"]:
        problems.append(f"{where}selective_checkpointing=True (model.grad_checkpointing recomputes whole blocks)")
    if s["clamp_range"] is not None:
        problems.append(
            f"{where}clamp_range (the model takes and returns the log-mel scaled to [-1, 1]; the dB range "
            "mapped there is the front end's: data.min_db, data.max_db, or MelFrontend(min_db=, max_db=))"
        )
    if s["persample_entropy_compute"] not in ("group", "analytical"):
        problems.append(
            f"{where}persample_entropy_compute={s['persample_entropy_compute']!r} (the seed takes "
            "group or analytical; both give the exact per-sample entropy audiotok computes)"
        )
    if s["cb_entropy_compute"] not in ("group", "nce"):
        problems.append(f"{where}cb_entropy_compute={s['cb_entropy_compute']!r} (the seed takes group or nce)")
    for key in ("beta", "gamma0", "gamma", "zeta", "inv_temperature"):
        s[key] = _number(s[key])
        if isinstance(s[key], bool) or not isinstance(s[key], (int, float)) or not math.isfinite(s[key]) or (key == "inv_temperature" and s[key] <= 0):
            problems.append(f"{where}{key}={s[key]!r} (a number{', above 0' if key == 'inv_temperature' else ''})")
    if problems:
        return {}
    # The seed's quantizer loss: beta * commitment + zeta * (gamma0 * H_sample - gamma * H_codebook) / inv_temperature.
    entropy_weight = s["zeta"] * s["gamma0"] / s["inv_temperature"]
    if s["gamma0"] == 0 and s["gamma"] != 0 and s["zeta"] != 0:
        problems.append(
            f"{where}gamma0=0 with gamma={s['gamma']} (audiotok weighs the codebook entropy "
            "relative to the per-sample one: model.entropy_weight x model.codebook_entropy_weight)"
        )
    model = {key: a[key] for key in SEED_AUDIOCONFIG}
    model.update(
        embed_dim=embed_dim,
        l2_norm=bool(s["l2_norm"]),
        unit_codes=bool(s["post_q_l2_norm"]),
        inv_temperature=float(s["inv_temperature"]),
        entropy_group_size=s["embed_group_size"],
        commit_weight=float(s["beta"]),
        entropy_weight=float(entropy_weight),
        codebook_entropy_weight=float(s["gamma"] / s["gamma0"]) if s["gamma0"] else 1.0,
        grad_checkpointing=bool(s["grad_checkpointing"]),
    )
    return model


def _seed_model_section(model: dict, problems: list[str]) -> dict:
    model = dict(model)
    target = model.pop("target", SEED_MODEL_CLASS)
    if target != SEED_MODEL_CLASS:
        problems.append(f"model.target={target!r} (audiotok trains {SEED_MODEL_CLASS}'s BSQ model only)")
    params = dict(model.pop("params", None) or {})
    checkpointing = model.pop("grad_checkpointing", None)  # the seed README's place for it
    for key in sorted(model):
        problems.append(f"model.{key} (give either the seed's model.target/params or audiotok's model keys, not both)")
    if "clamp_range" in params:
        params.pop("clamp_range")
        problems.append("model.params.clamp_range (the seed's training script replaces it with data.clamp_range: data.min_db, data.max_db)")
    if checkpointing is not None:
        params.setdefault("grad_checkpointing", checkpointing)
    unknown = sorted(set(params) - set(SEED_ARGUMENTS) - {"audioconfig", "embed_dim"})
    for key in unknown:
        problems.append(f"model.params.{key} (not an argument of the seed's AudioBSQModel)")
        params.pop(key)
    before = len(problems)
    try:
        result = _model_config(params.pop("audioconfig", None), params.pop("embed_dim", None), params, problems, where="model.params.")
    except UsageError as err:
        problems.append(err.message)
        return {}
    return result if len(problems) == before else {}


def _seed_data_section(data: dict, problems: list[str]) -> tuple[dict, dict, dict]:
    """-> (audiotok data keys, model keys, the seed key each model key came from) from a data section."""
    data = dict(data)
    out, model, sources = {}, {}, {}
    for seed_key, (section, key) in {"n_mels": ("model", "input_size"), "target_length": ("data", "segment_frames")}.items():
        if seed_key in data:
            _put(model if section == "model" else out, key, data.pop(seed_key), section, problems, f"data.{seed_key}")
            if section == "model":
                sources.setdefault(key, f"data.{seed_key}")
    if "clamp_range" in data:
        low_high = data.pop("clamp_range")
        if isinstance(low_high, (list, tuple)) and len(low_high) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in low_high):
            _put(out, "min_db", float(low_high[0]), "data", problems)
            _put(out, "max_db", float(low_high[1]), "data", problems)
        else:
            problems.append(f"data.clamp_range={low_high!r} (a [low, high] dB pair: data.min_db, data.max_db)")
    if "batch_size" in data:
        data.pop("batch_size")
        problems.append(
            "data.batch_size (the seed's is per process; optim.batch_size is the global "
            "batch, split over torchrun's processes: set it to data.batch_size x processes)"
        )
    if "num_workers" in data:
        data.pop("num_workers")
        problems.append("data.num_workers (audiotok decodes audio in the training process)")
    dataset_type = data.pop("dataset_type", None)
    if dataset_type not in (None, "audio_folder", "librispeech", "common_voice"):
        problems.append(f"data.dataset_type={dataset_type!r} (data.train takes a table: a data dir, an audio folder, scp:, tar:, jsonl:, commonvoice:TSV)")
    for seed_key, key in (("train", "train"), ("val", "valid")):
        if isinstance(data.get(seed_key), dict):
            table, settings = _seed_dataset(data.pop(seed_key), f"data.{seed_key}", problems, training=seed_key == "train")
            _put(out, key, table, "data", problems)
            for name, (section, value, source) in settings.items():
                _put(model if section == "model" else out, name, value, section, problems, source)
                if section == "model":
                    sources.setdefault(name, source)
    _put_all(out, data, "data", problems)  # audiotok's own data keys (sample_rate, n_fft, ...), and unknown ones for the loader
    return out, model, sources


def _seed_dataset(spec: dict, where: str, problems: list[str], training: bool) -> tuple[str | None, dict]:
    """A seed dataset block (target + params) -> (audiotok table, {key: (section, value)})."""
    import os

    target = str(spec.get("target", ""))
    params = dict(spec.get("params") or {})
    if target.rsplit(".", 1)[-1] not in SEED_DATASETS:
        problems.append(f"{where}.target={target!r} (data.{'train' if training else 'valid'} takes an audio table)")
    root = params.pop("root", None)
    if root is None:
        problems.append(f"{where}.params.root is required")
        return None, {}
    table = str(root)
    if target.endswith("LibriSpeechSpectrogramDataset"):
        table = os.path.join(table, params.pop("split", "train-clean-100"))
    elif target.endswith("CommonVoiceSpectrogramDataset"):
        params.pop("split", None)
        table = os.path.join(table, "clips") if os.path.isdir(os.path.join(table, "clips")) else table  # as the seed looks for clips/
    settings = {}
    for key, (section, name) in {
        "sample_rate": ("data", "sample_rate"),
        "n_fft": ("data", "n_fft"),
        "hop_length": ("data", "hop_length"),
        "n_mels": ("model", "input_size"),
        "target_length": ("data", "segment_frames"),
    }.items():
        if key in params:
            settings[name] = (section, params.pop(key), f"{where}.params.{key}")
    if not params.pop("normalize", True):
        problems.append(f"{where}.params.normalize=False (audiotok's front end is always dB scaled to [-1, 1]: data.min_db, data.max_db)")
    augment = params.pop("augment", training)
    if augment and not training:
        problems.append(f"{where}.params.augment=True (audiotok never augments validation)")
    if training and not augment:
        settings["spec_augment"] = ("data", {"time_masks": 0, "time_width": 0, "freq_masks": 0, "freq_width": 0}, f"{where}.params.augment")
    params.pop("audio_extensions", None)  # audiotok reads every audio format it knows
    for key in sorted(params):
        problems.append(f"{where}.params.{key} (not a setting of the seed's datasets)")
    return table, settings


def _number(value):
    """The seed's files are read by OmegaConf, which takes 1e-4 for a float (PyYAML: a string)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value


def _seed_optimizer_section(optimizer, problems: list[str]) -> dict:
    if not isinstance(optimizer, dict):
        problems.append("optimizer (a mapping: optim.* in audiotok)")
        return {}
    optimizer = dict(optimizer)
    out = {}
    target = optimizer.pop("target", "torch.optim.AdamW")
    if target != "torch.optim.AdamW":
        problems.append(f"optimizer.target={target!r} (audiotok trains with AdamW)")
    params = dict(optimizer.pop("params", None) or {})
    for key in ("weight_decay", "betas", "eps"):
        if key in params:
            out[key] = _number(params.pop(key))
    for key in sorted(params):
        problems.append(f"optimizer.params.{key} (optim.* holds AdamW's settings: lr, betas, eps, weight_decay)")
    if "max_iter" in optimizer:
        out["max_steps"] = optimizer.pop("max_iter")  # the seed's schedule also runs max_iter steps
    if "disable_amp" in optimizer or "use_bf16" in optimizer:
        disable_amp, bf16 = optimizer.pop("disable_amp", False), optimizer.pop("use_bf16", False)
        if disable_amp or bf16:
            out["mixed_precision"] = not disable_amp
        else:
            problems.append("optimizer.use_bf16=False with AMP (fp16 with a gradient scaler; optim.mixed_precision is bf16 autocast, or false)")
    if "base_lr" in optimizer:
        optimizer.pop("base_lr")
        problems.append("optimizer.base_lr (optim.lr: the peak learning rate)")
    if "lr_scheduler_config" in optimizer:
        optimizer.pop("lr_scheduler_config")
        problems.append("optimizer.lr_scheduler_config (linear warm-up, then cosine: optim.warmup_steps, optim.min_lr)")
    for key in sorted(optimizer):
        problems.append(f"optimizer.{key} (optim.* in audiotok)")
    return out
