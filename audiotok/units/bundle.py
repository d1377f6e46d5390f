"""Tokenizer bundles: a directory with `centroids.npy` and `config.json`.

`config.json` records how the features were made (the *feature recipe*:
backend, model and its hash, layer, sample rate, frame rate, options, and
the audio front end, audiotok.dsp.front_end), so `quantize` and `tokenize`
can rebuild them and refuse features that do not match, plus what the
k-means saw (k, dim, seed, frames, inertia, version).

    {"format": "audiotok-bundle/1", "k": 500, "dim": 768,
     "recipe": {"backend": "hf", "model": "...", "model_hash": "...", "layer": 6, "front_end": {...}, ...},
     "kmeans": {"seed": 0, "frames": 200000, "inertia": ..., "algorithm": "minibatch", ...},
     "audiotok": "0.1.0"}
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotok import __version__
from audiotok.errors import AudiotokError
from audiotok.io.atomic import atomic_open, atomic_write_text
from audiotok.io.npy import read_npy

FORMAT = "audiotok-bundle/1"
FILES = ("config.json", "centroids.npy")  # what a bundle is; units a recipe writes beside them are not part of it
# Recipe fields that change the features (the model by its hash, not its path); device, batch size do not.
RECIPE_IDENTITY = ("backend", "model_hash", "layer", "sample_rate", "frame_rate", "dim", "options")


@dataclass
class Bundle:
    centroids: np.ndarray  # [k, dim] float32
    recipe: dict = field(default_factory=dict)
    kmeans: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def config(self) -> dict:
        return {"format": FORMAT, "k": self.k, "dim": self.dim, "recipe": self.recipe, "kmeans": self.kmeans, "audiotok": __version__}

    def units_recipe(self, dedup: bool = False) -> dict:
        """What made a unit table from this bundle: recorded beside it (UNITS.recipe.json) for the tools that read it."""
        from audiotok.io.digests import model_digest

        return {
            "tokenizer": "kmeans",
            "bundle": str(self.path) if self.path else None,
            "bundle_content": model_digest(str(self.path)) if self.path else None,
            "codebook_size": self.k,
            "frame_rate": self.recipe.get("frame_rate"),
            "features": self.recipe,
            "dedup": dedup,  # runs collapsed: frame_rate is the rate before collapsing
            "audiotok": __version__,
        }

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(directory / "centroids.npy", "wb") as handle:
            np.save(handle, np.ascontiguousarray(self.centroids, dtype=np.float32), allow_pickle=False)
        atomic_write_text(directory / "config.json", json.dumps(self.config(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> "Bundle":
        directory = Path(directory)
        if not directory.is_dir():
            raise AudiotokError(f"no such tokenizer bundle: {directory}", "make one with audiotok fit-kmeans")
        try:
            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AudiotokError(
                f"{directory} has no config.json: not a tokenizer bundle", "make one with audiotok fit-kmeans or audiotok import-centroids"
            ) from None
        except json.JSONDecodeError as err:
            raise AudiotokError(f"{directory}/config.json is not valid JSON: {err.msg}") from None
        if config.get("format") != FORMAT:
            raise AudiotokError(f"{directory}/config.json: unknown bundle format {config.get('format')!r}", f"expected {FORMAT}")
        if not (directory / "centroids.npy").exists():
            raise AudiotokError(f"{directory} has no centroids.npy", "fit it again with audiotok fit-kmeans --force")
        centroids = read_npy(directory / "centroids.npy")
        if centroids.ndim != 2 or centroids.shape != (config.get("k"), config.get("dim")):
            raise AudiotokError(f"{directory}: centroids.npy has shape {centroids.shape}, config.json says k={config.get('k')} dim={config.get('dim')}")
        if not np.all(np.isfinite(centroids)):
            raise AudiotokError(f"{directory}/centroids.npy holds NaN or Inf")
        return cls(centroids.astype(np.float32), config.get("recipe", {}), config.get("kmeans", {}), directory)

    def check_features(self, dim: int, recipe: dict | None, where: str) -> None:
        """Refuse features of another dimension, or made by another recipe when theirs is known."""
        if dim != self.dim:
            raise AudiotokError(
                f"{where}: features have dimension {dim}, the bundle {self.path} expects {self.dim}",
                "quantize features made the way the bundle's config.json says",
            )
        if recipe and self.recipe:
            for name in RECIPE_IDENTITY:
                if name in recipe and name in self.recipe and recipe[name] != self.recipe[name]:
                    raise AudiotokError(
                        f"{where}: features were made with {name}={recipe[name]!r}, the bundle {self.path} with {self.recipe[name]!r}",
                        "extract features with the bundle's recipe, or use audiotok tokenize",
                    )
            # A recipe without a front end was made by resampling alone: absence is `none`, not unknown.
            from audiotok.dsp.front_end import recorded_front_end

            theirs, ours = recorded_front_end(recipe, where), recorded_front_end(self.recipe, str(self.path))
            if theirs.steps() != ours.steps():
                raise AudiotokError(
                    f"{where}: features were made with the audio front end {theirs.describe()}, the bundle {self.path} with {ours.describe()}",
                    f"extract features with --front-end {ours.name}, or use audiotok tokenize",
                )


def read_centroid_matrix(path: str | Path) -> np.ndarray:
    """Centroids trained elsewhere: a [k, dim] .npy (no pickles) or a text matrix, one centroid a line."""
    path = Path(path)
    if not path.is_file():
        raise AudiotokError(f"no such centroids file: {path}", "give a [k, dim] .npy array or a text matrix, one centroid a line")
    try:
        if path.suffix == ".npy":
            matrix = read_npy(path)
        else:
            matrix = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise AudiotokError(f"{path} is not a numeric matrix: {str(err).splitlines()[0]}", "give a .npy array or text with one centroid a line") from None
    if matrix.ndim != 2 or min(matrix.shape) == 0:
        raise AudiotokError(f"{path}: centroids must be a [k, dim] matrix, this one has shape {matrix.shape}")
    if not np.issubdtype(matrix.dtype, np.number) or not np.all(np.isfinite(matrix)):
        raise AudiotokError(f"{path}: centroids must be finite numbers")
    return matrix.astype(np.float32)
