"""A trained tokenizer on disk: `config.json` (model, front end, training provenance)
and `model.safetensors` (weights only, so loading a stranger's model runs no code)."""

import json
from pathlib import Path

from audiotok.errors import AudiotokError

FORMAT = "audiotok-bsq-1"


def save(directory: Path, model, config: dict, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    from audiotok.bsq.config import frontend_options
    from audiotok.io.atomic import atomic_write_text, tmp_path_for

    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / "model.safetensors"
    tmp = tmp_path_for(weights)
    save_file({k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(weights)
    meta = {"format": FORMAT, "model": model.config, "frontend": frontend_options(config), **(extra or {})}
    atomic_write_text(directory / "config.json", json.dumps(meta, indent=2) + "\n")


def load(directory: str | Path, device: str = "cpu"):
    """-> (model in eval mode, front end, metadata)."""
    import torch
    from safetensors.torch import load_file

    from audiotok.bsq.mel import frontend_from_options
    from audiotok.bsq.model import AudioBSQModel
    from audiotok.training import read_model_dir

    meta, weights = read_model_dir(directory, FORMAT, "BSQ", "bsq-train")
    config_path = weights.with_name("config.json")
    model = AudioBSQModel(meta["model"])
    try:
        model.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError) as err:
        raise AudiotokError(f"{weights} does not match {config_path}: {str(err).splitlines()[0]}") from None
    model.eval().to(torch.device(device))
    return model, frontend_from_options(meta["frontend"]), meta
