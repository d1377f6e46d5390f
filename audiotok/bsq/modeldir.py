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

    directory = Path(directory)
    config_path, weights = directory / "config.json", directory / "model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise AudiotokError(f"{directory} is not a BSQ model directory (no config.json or model.safetensors)", "give the --output-dir of bsq-train")
    try:
        meta = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise AudiotokError(f"{config_path} is not valid JSON: {err}") from None
    if meta.get("format") != FORMAT:
        raise AudiotokError(f"{config_path} is not a BSQ model config (format {meta.get('format')!r}, expected {FORMAT!r})")
    model = AudioBSQModel(meta["model"])
    try:
        model.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError) as err:
        raise AudiotokError(f"{weights} does not match {config_path}: {str(err).splitlines()[0]}") from None
    model.eval().to(torch.device(device))
    return model, frontend_from_options(meta["frontend"]), meta
