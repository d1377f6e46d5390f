"""Check a model on disk: its files, their checksums, and (deep) one forward pass.

Works on a preset's local copy or on any directory or file whose family can be
told from its layout. Each check is a line of the report; problems are
collected, so one run names every missing file and every bad checksum.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.models.registry import Preset

PARAFORMER_DIR = "dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online"
# What a directory of each family must hold when no preset says more.
FAMILY_FILES = {
    "hf": ("config.json",),
    "whisper": ("config.json",),
    "paraformer": ("config.yaml", "model.pt", "am.mvn"),
    "step-audio": (
        "linguistic_tokenizer.npy",
        "speech_tokenizer_v1.onnx",
        f"{PARAFORMER_DIR}/config.yaml",
        f"{PARAFORMER_DIR}/model.pt",
        f"{PARAFORMER_DIR}/am.mvn",
    ),
    "bicodec": ("config.yaml", "BiCodec/config.yaml", "BiCodec/model.safetensors", "wav2vec2-large-xlsr-53/config.json"),
    "s3": (),
}
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, line: str) -> None:
        self.lines.append(f"ok       {line}")

    def bad(self, line: str) -> None:
        self.lines.append(f"FAILED   {line}")
        self.problems.append(line)


def detect_family(path: Path) -> str:
    """The family a plain path holds, from its layout."""
    if path.is_file():
        if path.suffix in (".onnx", ".safetensors", ".pt", ".pth", ".bin"):
            return "s3"
        raise AudiotokError(f"{path}: cannot tell what model this file is", "give a model directory or a preset name")
    if (path / "linguistic_tokenizer.npy").is_file():
        return "step-audio"
    if (path / "BiCodec").is_dir():
        return "bicodec"
    if (path / "am.mvn").is_file() or ((path / "config.yaml").is_file() and (path / "model.pt").is_file()):
        return "paraformer"
    if (path / "config.json").is_file():
        import json

        try:
            model_type = json.loads((path / "config.json").read_text()).get("model_type")
        except (json.JSONDecodeError, AttributeError):
            raise AudiotokError(f"{path}/config.json is not valid JSON") from None
        return "whisper" if model_type == "whisper" else "hf"
    if any(path.glob("speech_tokenizer_v*.onnx")):
        return "s3"
    raise AudiotokError(f"{path}: cannot tell what model this directory holds", "see audiotok model list for the layouts audiotok knows")


def check_files(path: Path, family: str, preset: Preset | None, report: Report) -> None:
    if path.is_file():
        report.ok(f"file {path.name} ({path.stat().st_size} bytes)")
        return
    files = preset.files if preset else FAMILY_FILES[family]
    weights = preset.weights if preset else (HF_WEIGHTS if family in ("hf", "whisper") else ())
    for name in files:
        if (path / name).is_file():
            report.ok(f"file {name} ({(path / name).stat().st_size} bytes)")
        else:
            report.bad(f"missing file {name}")
    if weights:
        present = [w for w in weights if (path / w).is_file()]
        if present:
            report.ok(f"weights {present[0]}")
        else:
            report.bad(f"missing weights: none of {', '.join(weights)}")


def check_checksums(path: Path, preset: Preset | None, report: Report) -> None:
    from audiotok.io.digests import file_digest

    if preset is None or not preset.sha256:
        if path.is_file() and path.suffix == ".onnx":
            from audiotok.units.s3_onnx import OFFICIAL

            known = OFFICIAL.get(file_digest(path))
            report.lines.append(
                f"note     sha256 of {path.name}: "
                + (f"the official S3 {known[0]} {known[1]} Hz file" if known else "not an official S3 file (fine for your own export)")
            )
        else:
            report.lines.append("note     no checksums known for this model")
        return
    for name, expected in preset.sha256.items():
        target = path / name
        if not target.is_file():
            continue  # already reported as missing
        actual = file_digest(target)
        if actual == expected:
            report.ok(f"sha256 {name}")
        else:
            report.bad(f"sha256 mismatch for {name}: {actual[:16]}... expected {expected[:16]}...")


def check_safetensors(path: Path, report: Report) -> None:
    """Every .safetensors file whole: its header parses and its tensors end where the file ends
    (a copy cut short fails here, naming the file, before anything loads it)."""
    import json
    import struct

    files = [path] if path.is_file() else sorted(path.rglob("*.safetensors"))
    for file in (f for f in files if f.suffix == ".safetensors"):
        name = file.name if path.is_file() else str(file.relative_to(path))
        size = file.stat().st_size
        try:
            with open(file, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > size - 8:
                    raise ValueError(f"its header claims {length} bytes, the file holds {size}")
                header = json.loads(handle.read(length))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (struct.error, ValueError, KeyError, TypeError, IndexError) as err:
            report.bad(f"{name} is not a whole safetensors file ({err})")
            continue
        if 8 + length + end != size:
            report.bad(f"{name} is truncated or damaged: its tensors need {8 + length + end} bytes, the file holds {size}")
        else:
            report.ok(f"safetensors {name} whole ({len(header) - ('__metadata__' in header)} tensors)")


def probe_audio(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    """A second of generated audio with speech-like energy: a chirp under noise."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * (120 + 300 * t) * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def forward_pass(path: Path, family: str, preset: Preset | None, device: str) -> list[str]:
    """Load the model through audiotok's own loader and run one second of audio; one line an output."""
    wave = probe_audio()
    if family in ("hf", "whisper", "paraformer"):
        from audiotok.units.encoders import load_encoder

        layer = preset.layer if preset and preset.layer is not None else _last_layer(path, family)
        encoder = load_encoder(str(path), layer, device, "float32")
        features = encoder([wave])[0]
        return [
            f"features {list(features.shape)} ({encoder.recipe.backend}{f', layer {layer}' if layer is not None else ''}, {encoder.recipe.frame_rate:g} Hz)"
        ]
    if family == "s3":
        from audiotok.tokenizers import open_tokenizer

        rate = f",rate={int(preset.frame_rate)}" if preset and path.suffix != ".onnx" else ""
        tokens = open_tokenizer(f"s3:{path}{rate}", device)([wave])[0]["s3_tokens"]
        return [f"s3 tokens [{len(tokens)}]"]
    if family == "step-audio":
        from audiotok.units.encoders import load_encoder

        encoder = load_encoder(str(path / PARAFORMER_DIR), None, device, "float32")
        from audiotok.io.npy import read_npy

        centroids = read_npy(path / "linguistic_tokenizer.npy")
        features = encoder([wave])[0]
        if centroids.ndim != 2 or centroids.shape[1] != features.shape[1]:
            raise AudiotokError(f"{path}/linguistic_tokenizer.npy has shape {centroids.shape}; the encoder gives {features.shape[1]}-dimensional features")
        vq02 = ((features[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
        from audiotok.tokenizers import open_tokenizer

        vq06 = open_tokenizer(f"s3:{path / 'speech_tokenizer_v1.onnx'},long_audio=step-audio", device)([wave])[0]["s3_tokens"]
        return [f"vq02 tokens [{len(vq02)}] (codebook {len(centroids)})", f"vq06 tokens [{len(vq06)}]"]
    if family == "bicodec":
        from audiotok.tokenizers import open_tokenizer

        tokens = open_tokenizer(f"bicodec:{path}", device)([wave])[0]
        return [f"global tokens [{len(tokens['global_tokens'])}], semantic tokens [{len(tokens['semantic_tokens'])}]"]
    raise AudiotokError(f"no forward pass is defined for family {family!r}")


def _last_layer(path: Path, family: str) -> int | None:
    if family == "paraformer":
        return None
    import json

    config = json.loads((path / "config.json").read_text())
    return int(config.get("encoder_layers" if family == "whisper" else "num_hidden_layers", 0))


def verify(path: Path, preset: Preset | None, deep: bool, device: str = "cpu") -> Report:
    """path: the model directory (a preset's copy) or file; a single-file preset's file is inside it."""
    family = preset.family if preset else detect_family(path)
    report = Report([f"model    {path}" + (f" (preset {preset.name})" if preset else "") + f", family {family}"])
    check_files(path, family, preset, report)
    check_checksums(path, preset, report)
    check_safetensors(path, report)
    if deep and not report.problems:
        target = path / preset.file if preset and preset.file else path
        started = time.perf_counter()
        try:
            outputs = forward_pass(target, family, preset, device)
        except AudiotokError as err:
            report.bad(f"forward pass: {err.one_line().removeprefix('error: ')}")
        except Exception as err:  # noqa: BLE001 - a model that fails to load or run is this check's finding
            report.bad(f"forward pass of {target} failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        else:
            seconds = time.perf_counter() - started
            for line in outputs:
                report.ok(f"forward 1.0 s of audio -> {line}")
            report.lines.append(f"time     load + forward {seconds:.2f} s on {device}")
    return report
