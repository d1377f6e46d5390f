"""Content digests: what identifies a model or a bundle in recipes, signatures and resume checks.

A resumed run compares digests of what its model files hold, not their paths, so a bundle refit
or a model replaced at the same path is noticed. Digests are cached per process by (path, size,
mtime, inode): a run hashes each file once.
"""

import hashlib
import os
from pathlib import Path

from audiotok.errors import AudiotokError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")
_cache: dict[tuple, str] = {}


def file_digest(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """sha256 of a file's bytes (hex)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
        _cache[key] = digest.hexdigest()
    return _cache[key]


def weights_digest(directory: Path) -> str:
    """sha256 over the weight files of a model directory: what identifies the model in a bundle's recipe."""
    files = sorted(p for p in directory.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files:
        raise AudiotokError(f"{directory} holds no weights (.safetensors or .bin)", "copy the model's weight files into it, or give another directory")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + file_digest(path).encode())
    return digest.hexdigest()[:16]


def content_digest(path: str | os.PathLike) -> str:
    """16 hex digits over what a file, or every file under a directory, holds (names included).
    Hidden files (run markers, locks) and temporaries (`*.tmp.PID`) are left out: they say how
    the directory was made, not what it holds. A k-means bundle is its config and centroids
    only: recipes write unit tables into the bundle's directory while others read it."""
    from audiotok.units.bundle import FILES as BUNDLE_FILES

    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir() and all((path / name).is_file() for name in BUNDLE_FILES):
        for name in BUNDLE_FILES:
            digest.update(name.encode() + b"\0" + file_digest(path / name).encode() + b"\n")
    elif path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                file = Path(root, name)
                if name.startswith(".") or ".tmp." in name or not file.is_file():  # a FIFO or socket holds no content
                    continue
                digest.update(str(file.relative_to(path)).encode() + b"\0" + file_digest(file).encode() + b"\n")
    else:
        digest.update(file_digest(path).encode())
    return digest.hexdigest()[:16]


def model_digest(name: str) -> str | None:
    """content_digest of the files a model or tokenizer argument names: a path, `,option=value`
    suffixes allowed (s3:MODEL,version=v2); None for anything else (a hub id or a preset name,
    whose content its name fixes)."""
    candidate = name
    while not os.path.exists(candidate):
        if "," not in candidate:
            return None
        candidate = candidate.rsplit(",", 1)[0]
    return content_digest(candidate) if os.path.isdir(candidate) or os.path.isfile(candidate) else None
