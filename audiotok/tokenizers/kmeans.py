"""The k-means bundle family (`bundle:DIR`, or a bare bundle directory): features as the
bundle's recipe says, then the nearest of its centroids. `tokenize`, `tokenize-shards` and
`stream` open a bundle here, so their units are those of extract-feats then quantize."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.tokenizers import Family, WaveItem


@dataclass
class OpenedBundle:
    bundle: object  # units.bundle.Bundle
    backend: object  # the feature backend its recipe names
    front_end: object  # dsp.front_end.FrontEnd replayed before the backend
    assigner: object  # nearest centroid: features [frames, dim] -> units


def open_bundle(directory: str, device: str, dtype: str = "float32", model: str | None = None, replay_front_end: bool = True) -> OpenedBundle:
    """Load a bundle, rebuild its feature backend (the encoder at the path its recipe names, or
    at `model`) and check the two agree. replay_front_end=False: for callers that hand over
    audio already at the model's rate (worker pools, streams): a bundle whose recipe has an
    audio front end beyond resampling is refused, since they cannot replay it exactly."""
    from audiotok.device import resolve
    from audiotok.dsp.front_end import NONE, recorded_front_end
    from audiotok.tokenizers.features import backend_from_recipe
    from audiotok.units.assign import open_assigner
    from audiotok.units.bundle import Bundle

    device = resolve(device)
    bundle = Bundle.load(directory)
    front_end = recorded_front_end(bundle.recipe, f"{directory}/config.json") if replay_front_end else NONE
    backend = backend_from_recipe(bundle.recipe, device, dtype, model)
    recipe = backend.recipe.as_dict()
    if replay_front_end:
        recipe["front_end"] = front_end.as_dict()
    bundle.check_features(backend.dim, recipe, f"the recipe of {directory}")
    return OpenedBundle(bundle, backend, front_end, open_assigner(bundle, device))


class BundleTokenizer:
    """Bundle units as a registry tokenizer (field `units`), with `tokenize`'s windows."""

    fields = ("units",)

    def __init__(self, directory: str, device: str, dtype: str = "float32"):
        from audiotok.engine.batching import SignalBackend

        self.opened = open_bundle(directory, device, dtype, replay_front_end=False)
        self.backend = self.opened.backend
        self.sample_rate = self.backend.sample_rate
        self.frame_rate = self.backend.recipe.frame_rate
        self.batch_seconds = 60.0
        # The windows and overlap of `tokenize`'s defaults, so units equal its output.
        self.window_seconds = None if isinstance(self.backend, SignalBackend) else 30.0
        self.overlap_seconds = 1.0

    def __call__(self, waves: list[np.ndarray]) -> list:
        from audiotok.engine.batching import extract_features

        items = [WaveItem(str(i), wave, self.sample_rate) for i, wave in enumerate(waves)]
        features = extract_features(
            items,
            self.backend,
            batch_seconds=self.batch_seconds,
            block=max(1, len(items)),
            window_seconds=self.window_seconds,
            overlap_seconds=self.overlap_seconds,
        )
        return [result if isinstance(result, Exception) else self._units(result) for _, result in features]

    def _units(self, features: np.ndarray):
        from audiotok.errors import ItemError

        try:
            return {"units": self.opened.assigner(features).tolist()}
        except ItemError as err:  # a failed item, not a failed batch
            return err


def check(target: str) -> None:
    if not (Path(target, "config.json").is_file() and Path(target, "centroids.npy").is_file()):
        if not os.path.isdir(target):
            raise AudiotokError(f"no such bundle directory: {target}", "make one with audiotok fit-kmeans or audiotok import-centroids")
        raise AudiotokError(f"{target} is not a units bundle (no config.json + centroids.npy)", "make one with audiotok fit-kmeans")


FAMILY = Family("bundle", check, BundleTokenizer, "bundle:DIR, an audiotok k-means bundle (field units)", native_stream=True)
