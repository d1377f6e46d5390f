"""What the training commands (bsq-train, taste-train) share: YAML configs layered over
defaults and a preset, checkpoint files, and the metrics log a resumed run continues.

A config is defaults <- preset file <- the user's file, merged key by key; a key the
defaults do not have is an error naming it (a typo never silently trains with a default).
Checkpoints are `OUTPUT/checkpoints/step-NNNNNNN.pt`, written to a temporary name and
renamed, the newest `keep` kept. A run resumed from step S first drops the metrics lines a
stopped or killed run wrote after S, since it writes them again.
"""

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path

from audiotok.errors import UsageError


def merge_config(base: dict, override: dict, where: str = "") -> dict:
    """`base` with `override`'s values; unknown keys and non-mappings for sections are errors."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        name = f"{where}.{key}" if where else key
        if key not in base:
            raise UsageError(f"unknown config key {name!r}", f"known keys here: {', '.join(sorted(base))}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise UsageError(f"config key {name!r} must be a mapping")
            merged[key] = merge_config(base[key], value, name)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path, sections: str, presets: tuple[str, ...]) -> dict:
    """A YAML mapping from `path` (empty file: {}); `sections` names what it should hold, for messages."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such config file: {path}", f"a YAML file, or a preset: {', '.join(presets)}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"{path} must hold a mapping ({sections})")
    return loaded


def layered_config(raw: dict, defaults: dict, preset_dir: Path, presets: tuple[str, ...], sections: str, check: Callable[[dict], None]) -> dict:
    """Defaults, then the preset `raw` names under `preset`, then raw's own keys; checked."""
    raw = dict(raw)
    preset = raw.pop("preset", None)
    config = defaults
    if preset is not None:
        if preset not in presets:
            raise UsageError(f"unknown preset {preset!r}", f"one of {', '.join(presets)}")
        config = merge_config(defaults, read_yaml(preset_dir / f"{preset}.yaml", sections, presets))
    config = merge_config(config, raw)
    check(config)
    return config


def checkpoint_paths(output: Path) -> list[Path]:
    """The checkpoints in OUTPUT/checkpoints, oldest first."""
    return sorted((output / "checkpoints").glob("step-*.pt"))


def write_checkpoint(output: Path, step: int, model_state: dict, optimizer, scheduler, keep: int) -> Path:
    """Model, optimiser, schedule and RNG states at `step`; older checkpoints beyond `keep` removed."""
    import torch

    state = {
        "step": step,
        "model": model_state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    path = output / "checkpoints" / f"step-{step:07d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp.{os.getpid()}")
    torch.save(state, tmp)
    tmp.replace(path)
    for old in checkpoint_paths(output)[:-keep]:
        old.unlink()
    return path


def truncate_metrics(path: Path, step: int) -> None:
    """Drop the metrics lines after `step` (and a torn last line): the resumed run writes them again."""
    if not path.exists():
        return
    from audiotok.io.atomic import atomic_write_text

    kept = []
    for line in path.read_text().splitlines():
        try:
            if line.strip() and json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError):
            break
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def lr_factor(step: int, optim: dict) -> float:
    """Linear warm-up to `lr` over optim.warmup_steps, then a cosine down to `min_lr` at max_steps."""
    import math

    warmup, total = optim["warmup_steps"], optim["max_steps"]
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = optim["min_lr"] / optim["lr"]
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_order(step: int, count: int, batch_size: int, seed: int) -> list[int]:
    """The item indices of (global) batch `step`: epochs of seeded permutations, wrapping across
    epochs. A pure function of its arguments, so a resumed run needs no loader state."""
    import torch

    indices, position = [], step * batch_size
    while len(indices) < batch_size:
        epoch, offset = divmod(position, count)
        order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        take = min(batch_size - len(indices), count - offset)
        indices.extend(order[offset : offset + take].tolist())
        position += take
    return indices


def resume_from_checkpoint(output: Path, device, load_model: Callable[[dict, Path], None], optimizer, scheduler) -> int:
    """Restore the newest checkpoint in OUTPUT (model through `load_model(state, path)`, optimiser,
    schedule, RNG states); the step it was taken at, or 0 when there is none."""
    import logging

    import torch

    saved = checkpoint_paths(output)
    if not saved:
        return 0
    state = torch.load(saved[-1], map_location=device, weights_only=True)
    load_model(state["model"], saved[-1])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"].cpu())
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng_cuda"]])
    logging.getLogger("audiotok").info("resuming from %s (step %d)", saved[-1], state["step"])
    return state["step"]


def read_model_dir(directory: str | os.PathLike, model_format: str, kind: str, made_by: str) -> tuple[dict, Path]:
    """A trained model directory's config.json (checked against `model_format`) and its weights path.

    kind names the model in messages ("BSQ", "TASTE"); made_by is the command that writes one."""
    from audiotok.errors import AudiotokError

    directory = Path(directory)
    config_path, weights = directory / "config.json", directory / "model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise AudiotokError(f"{directory} is not a {kind} model directory (no config.json or model.safetensors)", f"give the --output-dir of {made_by}")
    try:
        meta = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise AudiotokError(f"{config_path} is not valid JSON: {err}") from None
    if meta.get("format") != model_format:
        raise AudiotokError(f"{config_path} is not a {kind} model config (format {meta.get('format')!r}, expected {model_format!r})")
    return meta, weights


def save_figure(figure, png: Path) -> None:
    """Write a matplotlib figure to `png` atomically (a viewer never sees half a file) and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    tmp = png.with_name(png.stem + f".tmp.{os.getpid()}.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    tmp.replace(png)
