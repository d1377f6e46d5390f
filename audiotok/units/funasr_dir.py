"""FunASR model directories: find, check and load the streaming Paraformer encoder.

FunASR reads `configuration.json` (its `file_path_metas` name the config, the weights
`init_param` and `frontend_conf.cmvn_file`, relative to the directory) or else
`config.yaml` + `model.pt`, and takes `am.mvn` as the CMVN file. `model.pt` is a
torch state dict, possibly under a `state_dict` key and with `module.` prefixes.
Only the `encoder.*` weights are used here; they are loaded strictly, after the
configuration, the frontend settings and the CMVN vectors have been checked
against what the Step-Audio computation needs. Every refusal is one line naming
the file and the key.
"""

import json
import logging
from pathlib import Path

from audiotok.errors import AudiotokError

log = logging.getLogger("audiotok")

WEIGHTS = "model.pt"
CONFIG = "config.yaml"
CMVN = "am.mvn"
# Frontend settings the computation in paraformer_frontend.py implements (FunASR's names).
FRONTEND_FIXED = {
    "fs": 16000,
    "window": "hamming",
    "n_mels": 80,
    "frame_length": 25,
    "frame_shift": 10,
    "lfr_m": 7,
    "lfr_n": 6,
    "snip_edges": True,
    "upsacle_samples": True,
}
ENCODER_FIXED = {
    "input_layer": "pe_online",
    "normalize_before": True,
    "selfattention_layer_type": "sanm",
    "concat_after": False,
    "positionwise_layer_type": "linear",
    "sanm_shfit": 0,
    "sanm_shift": 0,
}


def looks_like_funasr(directory: Path) -> bool:
    """A FunASR layout, not a transformers one: configuration.json, or a config.yaml
    with FunASR's `encoder`/`frontend` sections (other tools keep a config.yaml too)."""
    if (directory / "config.json").is_file():
        return False
    if (directory / "configuration.json").is_file():
        return True
    if not (directory / CONFIG).is_file():
        return False
    import yaml

    try:
        config = yaml.safe_load((directory / CONFIG).read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return False
    return isinstance(config, dict) and ("encoder_conf" in config or "frontend_conf" in config)


def _inside(directory: Path, name, what: str) -> Path:
    if not isinstance(name, str) or not name:
        raise AudiotokError(f"{directory / 'configuration.json'}: file_path_metas {what} is not a file name")
    path = (directory / name).resolve()
    if directory.resolve() not in path.parents:
        raise AudiotokError(f"{directory / 'configuration.json'}: {what} {name!r} points outside the model directory")
    return path


def model_files(directory: Path) -> dict[str, Path]:
    """{'config', 'weights', 'cmvn'} paths, from configuration.json where it names them."""
    files = {"config": directory / CONFIG, "weights": directory / WEIGHTS, "cmvn": directory / CMVN}
    meta_path = directory / "configuration.json"
    if meta_path.is_file():
        try:
            metas = json.loads(meta_path.read_text()).get("file_path_metas") or {}
        except (ValueError, AttributeError) as err:
            raise AudiotokError(f"{meta_path} is not a JSON object: {err}") from None
        if "config" in metas:
            files["config"] = _inside(directory, metas["config"], "config")
        if "init_param" in metas:
            files["weights"] = _inside(directory, metas["init_param"], "init_param")
        cmvn = (metas.get("frontend_conf") or {}).get("cmvn_file") if isinstance(metas.get("frontend_conf"), dict) else None
        if cmvn:
            files["cmvn"] = _inside(directory, cmvn, "frontend_conf.cmvn_file")
    for role, path in files.items():
        if not path.is_file():
            hint = "a FunASR model directory holds config.yaml, model.pt and am.mvn"
            raise AudiotokError(f"{directory}: no {path.name} ({'the ' + role + ' file' if role != 'cmvn' else 'the CMVN file'})", hint)
    return files


def read_config(path: Path):
    """(FrontendConfig, EncoderConfig, dither) from config.yaml, refusing what we do not compute."""
    import yaml

    from audiotok.units.paraformer import EncoderConfig
    from audiotok.units.paraformer_frontend import FrontendConfig

    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise AudiotokError(f"{path} is not YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise AudiotokError(f"{path} is not a YAML mapping")
    if config.get("encoder") != "SANMEncoderChunkOpt":
        raise AudiotokError(f"{path}: encoder is {config.get('encoder')!r}; audiotok runs the streaming Paraformer's SANMEncoderChunkOpt")
    encoder_conf = config.get("encoder_conf") or {}
    frontend_conf = config.get("frontend_conf") or {}
    if not isinstance(encoder_conf, dict) or not isinstance(frontend_conf, dict):
        raise AudiotokError(f"{path}: encoder_conf and frontend_conf must be mappings")
    for key, expected in FRONTEND_FIXED.items():
        if key in frontend_conf and frontend_conf[key] != expected:
            raise AudiotokError(f"{path}: frontend_conf.{key} is {frontend_conf[key]!r}; the Step-Audio frontend uses {expected!r}")
    for key in ("lfr_m", "lfr_n"):
        if key not in frontend_conf:
            raise AudiotokError(f"{path}: frontend_conf has no {key}", f"FunASR's default 1 is not the streaming Paraformer's {FRONTEND_FIXED[key]}")
    for key, expected in ENCODER_FIXED.items():
        if key in encoder_conf and encoder_conf[key] != expected:
            raise AudiotokError(f"{path}: encoder_conf.{key} is {encoder_conf[key]!r}; only {expected!r} is supported")
    frontend = FrontendConfig()
    try:
        encoder = EncoderConfig(
            input_size=frontend.dim,
            output_size=int(encoder_conf.get("output_size", 256)),
            attention_heads=int(encoder_conf.get("attention_heads", 4)),
            linear_units=int(encoder_conf.get("linear_units", 2048)),
            num_blocks=int(encoder_conf.get("num_blocks", 6)),
            kernel_size=int(encoder_conf.get("kernel_size", 11)),
        )
    except (TypeError, ValueError) as err:
        raise AudiotokError(f"{path}: encoder_conf holds a size that is not an integer ({err})") from None
    if "input_size" in config and config["input_size"] != frontend.dim:
        raise AudiotokError(f"{path}: input_size is {config['input_size']}, but the frontend makes {frontend.dim} = 80 x 7 dims")
    if encoder.output_size % encoder.attention_heads or encoder.num_blocks < 1 or encoder.output_size < 1:
        raise AudiotokError(
            f"{path}: encoder_conf output_size {encoder.output_size} with {encoder.attention_heads} "
            f"heads and {encoder.num_blocks} blocks is not a valid encoder"
        )
    # FunASR's WavFrontendOnline dithers with 1.0 unless the config says otherwise: random features.
    dither = float(frontend_conf.get("dither", 1.0))
    return frontend, encoder, dither


def read_encoder_weights(path: Path) -> dict:
    """The `encoder.*` tensors of model.pt, prefix removed (also under `state_dict`, with `module.`)."""
    import torch

    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # not a zip checkpoint: mmap is not possible, plain load is
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad or unsafe files
        raise AudiotokError(f"cannot read {path}: {str(err).splitlines()[0][:200]}", "it must be a torch state dict (loaded with weights_only=True)") from None
    for wrapper in ("state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise AudiotokError(f"{path} holds a {type(state).__name__}, not a state dict")
    weights = {}
    for key, value in state.items():
        key = key[len("module.") :] if isinstance(key, str) and key.startswith("module.") else key
        if isinstance(key, str) and key.startswith("encoder."):
            if not isinstance(value, torch.Tensor):
                raise AudiotokError(f"{path}: {key} is not a tensor")
            weights[key[len("encoder.") :]] = value
    if not weights:
        raise AudiotokError(f"{path} holds no encoder.* weights", "is this a FunASR Paraformer model.pt?")
    return weights


def load_paraformer(directory: Path, device: str = "cpu", dtype: str = "float32"):
    """ParaformerModel from a FunASR directory, every file checked. Returns (model, files)."""
    import torch

    from audiotok.units.paraformer import ParaformerModel, SanmEncoder
    from audiotok.units.paraformer_frontend import ParaformerFrontend, read_am_mvn

    files = model_files(directory)
    frontend_config, encoder_config, dither = read_config(files["config"])
    if dither != 0.0:
        log.info("%s: frontend_conf dither %g ignored: features are computed without dither (deterministic)", files["config"], dither)
    try:
        shift, scale = read_am_mvn(files["cmvn"])
    except (OSError, ValueError) as err:
        raise AudiotokError(f"{files['cmvn']}: {err}", "am.mvn is a Kaldi nnet text file with <AddShift> and <Rescale>") from None
    if len(shift) != frontend_config.dim or len(scale) != frontend_config.dim:
        raise AudiotokError(
            f"{files['cmvn']}: <AddShift> has {len(shift)} values and <Rescale> {len(scale)}; expected {frontend_config.dim} (80 mels x 7 frames)"
        )
    weights = read_encoder_weights(files["weights"])
    encoder = SanmEncoder(encoder_config)
    expected = encoder.state_dict()
    missing = [k for k in expected if k not in weights]
    if missing:
        raise AudiotokError(
            f"{files['weights']}: missing encoder.{missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""),
            f"{files['config'].name} says {encoder_config.num_blocks} blocks of {encoder_config.output_size}",
        )
    odd = [k for k in weights if k not in expected]
    if odd:
        raise AudiotokError(
            f"{files['weights']}: unexpected encoder.{odd[0]}" + (f" and {len(odd) - 1} more" if len(odd) > 1 else ""),
            f"does {files['config'].name} give the model's num_blocks and sizes?",
        )
    for key, tensor in expected.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise AudiotokError(f"{files['weights']}: encoder.{key} has shape {list(weights[key].shape)}; {files['config'].name} implies {list(tensor.shape)}")
    encoder.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    encoder = encoder.to(device=device, dtype=getattr(torch, dtype)).eval()
    return ParaformerModel(ParaformerFrontend(shift, scale, frontend_config), encoder), files
