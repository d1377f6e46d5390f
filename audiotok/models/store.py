"""Where presets live on disk, how a `--model` value becomes a local path, and fetching.

A preset NAME is looked for in CACHE/NAME, where CACHE is --cache-dir, else
$AUDIOTOK_MODELS, else $HF_HOME/audiotok, else ~/.cache/audiotok/models;
presets from the Hugging Face hub are also found in the hub's own cache
(HF_HOME), where transformers may already have put them.
"""

import os
from pathlib import Path

from audiotok.errors import AudiotokError
from audiotok.models.registry import Preset, find_preset


def cache_root(cache_dir: str | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("AUDIOTOK_MODELS"):
        return Path(os.environ["AUDIOTOK_MODELS"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "audiotok"
    return Path.home() / ".cache" / "audiotok" / "models"


def missing_files(preset: Preset, directory: Path) -> list[str]:
    """The preset's files absent from directory (weights: one of them is enough)."""
    missing = [f for f in preset.files if not (directory / f).is_file()]
    if preset.weights and not any((directory / w).is_file() for w in preset.weights):
        missing.append(" or ".join(preset.weights))
    return missing


def _hub_cache_snapshot(preset: Preset) -> Path | None:
    if "hub" not in preset.source:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(preset.repo_id, revision=preset.revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the hub cache, whatever the reason
        return None


def local_copy(preset: Preset, cache_dir: str | None = None) -> Path | None:
    """A complete local copy of the preset, or None."""
    for candidate in (cache_root(cache_dir) / preset.name, _hub_cache_snapshot(preset)):
        if candidate is not None and candidate.is_dir() and not missing_files(preset, candidate):
            return candidate
    return None


def resolve_model(spec: str, cache_dir: str | None = None) -> tuple[Path | None, Preset | None]:
    """`--model` -> (local path, preset). An existing path wins; a preset name gives its local
    copy (or one clear error saying how to get it); anything else gives (None, None): a hub id."""
    path = Path(spec)
    if path.exists():
        return path, None
    preset = find_preset(spec)
    if preset is None:
        return None, None
    directory = local_copy(preset, cache_dir)
    if directory is None:
        raise AudiotokError(
            f"model preset {spec!r} is not downloaded (looked in {cache_root(cache_dir) / spec} and the Hugging Face cache)",
            f"audiotok model fetch {spec}, or pass --model a local directory",
        )
    return (directory / preset.file if preset.file else directory), preset


def resolve_model_path(spec: str, cache_dir: str | None = None) -> str:
    """`--model` as a path string: a preset's local copy (its file for single-file models), else spec unchanged."""
    path, _ = resolve_model(spec, cache_dir)
    return str(path) if path is not None else spec


def hub_host() -> str:
    from urllib.parse import urlparse

    return urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").netloc or "huggingface.co"


def fetch(preset: Preset, target: Path) -> Path:
    """Download the preset's files into target (resumes partial downloads); one clear error when it cannot."""
    host = hub_host() if "hub" in preset.source else "modelscope.cn"
    offline_hint = f"download {preset.repo_id} where {host} is reachable and copy it to {target}, or pass --model a local directory"
    if "modelscope" in preset.source:
        try:
            from modelscope import snapshot_download as modelscope_download
        except ImportError:
            raise AudiotokError(
                f"fetching {preset.name} from modelscope.cn needs the modelscope package", f"pip install modelscope, or {offline_hint}"
            ) from None
        try:
            modelscope_download(preset.repo_id, revision=preset.revision, local_dir=str(target))
        except Exception as err:  # noqa: BLE001 - any failure of the host is reported the same way
            raise AudiotokError(f"cannot fetch {preset.name} from modelscope.cn ({type(err).__name__})", offline_hint) from None
        return target
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise AudiotokError(f"cannot fetch {preset.name} from {host}: HF_HUB_OFFLINE is set", offline_hint)
    from huggingface_hub import snapshot_download

    # Only the files audiotok uses: a preset may sit in a repository with much more (Spark-TTS's LLM/).
    patterns = [*preset.files, *preset.weights]
    try:
        snapshot_download(preset.repo_id, revision=preset.revision, local_dir=str(target), allow_patterns=patterns)
    except Exception as err:  # noqa: BLE001 - network, auth, missing repo: one line naming the host
        reason = str(err).splitlines()[0][:160].removeprefix("Got: ") if str(err) else type(err).__name__
        raise AudiotokError(f"cannot fetch {preset.name} from {host}: {reason}", offline_hint) from None
    return target
