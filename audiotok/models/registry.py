"""The preset registry: named models as data (presets.yaml beside this file), plus
the user's own presets from the YAML file that AUDIOTOK_MODEL_REGISTRY names.

A preset says where a model comes from, which files it has, how audiotok uses
it (family, default layer, rates, codebook) and the checksums known for it.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from audiotok.errors import AudiotokError

FAMILIES = ("hf", "whisper", "s3", "paraformer", "step-audio", "bicodec")
REQUIRED = ("family", "source", "files", "sample_rate", "frame_rate", "codebook", "license", "size")
OPTIONAL = ("weights", "file", "layer", "layers", "sha256", "note")
BUILTIN = Path(__file__).with_name("presets.yaml")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    source: dict
    files: tuple[str, ...]
    sample_rate: int
    frame_rate: float
    codebook: int
    license: str
    size: str
    weights: tuple[str, ...] = ()
    file: str | None = None
    layer: int | None = None
    layers: tuple[int, ...] = ()
    sha256: dict = field(default_factory=dict)
    note: str = ""

    @property
    def repo_id(self) -> str:
        return self.source.get("hub") or self.source["modelscope"]

    @property
    def revision(self) -> str | None:
        return self.source.get("revision")


def _problem(where: str, name: str, what: str) -> AudiotokError:
    return AudiotokError(f"{where}: preset {name!r}: {what}")


def parse_preset(name: str, entry, where: str) -> Preset:
    """One registry entry, checked field by field (a bad registry names the preset and the field)."""
    if not isinstance(entry, dict):
        raise _problem(where, name, "is not a mapping")
    unknown = set(entry) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise _problem(where, name, f"unknown field {sorted(unknown)[0]!r}")
    missing = [f for f in REQUIRED if f not in entry]
    if missing:
        raise _problem(where, name, f"missing field {missing[0]!r}")
    if entry["family"] not in FAMILIES:
        raise _problem(where, name, f"family {entry['family']!r} is not one of {', '.join(FAMILIES)}")
    source = entry["source"]
    if not isinstance(source, dict) or len({"hub", "modelscope"} & set(source)) != 1 or set(source) - {"hub", "modelscope", "revision"}:
        raise _problem(where, name, "source must name exactly one of hub: ID or modelscope: ID (and optionally revision)")
    files = entry["files"]
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f and not f.startswith(("/", "..")) for f in files):
        raise _problem(where, name, "files must be a non-empty list of relative paths")
    for number in ("sample_rate", "frame_rate"):
        if not isinstance(entry[number], (int, float)) or entry[number] <= 0:
            raise _problem(where, name, f"{number} must be a positive number")
    if not isinstance(entry["codebook"], int) or entry["codebook"] < 0:
        raise _problem(where, name, "codebook must be a whole number (0: features only)")
    checksums = entry.get("sha256") or {}
    for path, digest in checksums.items():
        if path not in files or not SHA256.fullmatch(str(digest)):
            raise _problem(where, name, f"sha256 of {path!r} must be 64 hex digits of a listed file")
    if entry.get("file") is not None and entry["file"] not in files:
        raise _problem(where, name, f"file {entry['file']!r} is not among its files")
    if entry.get("layer") is not None and (not isinstance(entry["layer"], int) or entry["layer"] < 0):
        raise _problem(where, name, "layer must be a whole number")
    return Preset(
        name=name,
        family=entry["family"],
        source=dict(source),
        files=tuple(files),
        sample_rate=int(entry["sample_rate"]),
        frame_rate=float(entry["frame_rate"]),
        codebook=int(entry["codebook"]),
        license=str(entry["license"]),
        size=str(entry["size"]),
        weights=tuple(entry.get("weights") or ()),
        file=entry.get("file"),
        layer=entry.get("layer"),
        layers=tuple(entry.get("layers") or ()),
        sha256=dict(checksums),
        note=str(entry.get("note") or ""),
    )


def read_registry_file(path: Path) -> dict[str, Preset]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AudiotokError(f"no such model registry: {path}", "AUDIOTOK_MODEL_REGISTRY names a YAML file of presets") from None
    except yaml.YAMLError as err:
        raise AudiotokError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise AudiotokError(f"{path}: a model registry maps preset names to their fields")
    return {str(name): parse_preset(str(name), entry, str(path)) for name, entry in data.items()}


def load_registry() -> dict[str, Preset]:
    """The built-in presets, then the user's (AUDIOTOK_MODEL_REGISTRY), which may add or override."""
    presets = read_registry_file(BUILTIN)
    user = os.environ.get("AUDIOTOK_MODEL_REGISTRY")
    if user:
        presets.update(read_registry_file(Path(user)))
    return presets


def find_preset(name: str) -> Preset | None:
    return load_registry().get(name)
