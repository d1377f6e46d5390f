"""The feature backends: from command-line choices (extract-feats --backend) or a bundle's
recipe to a backend with .sample_rate, .hop, .dim, .recipe, .padding_safe and a batch call."""

import logging

from audiotok.errors import AudiotokError, UsageError

log = logging.getLogger("audiotok")


def _kaldi(kind: str, model, layer, num_mels, num_ceps, deltas, dtype, onnx_output, device):
    from audiotok.engine.batching import SignalBackend
    from audiotok.units.features import KaldiFeatures

    if model or layer is not None:
        raise UsageError(f"--model and --layer do not apply to --backend {kind}")
    return SignalBackend(KaldiFeatures(kind, num_bins=num_mels, num_ceps=num_ceps, add_deltas=deltas))


def _logmel(kind: str, model, layer, num_mels, num_ceps, deltas, dtype, onnx_output, device):
    from audiotok.engine.batching import SignalBackend
    from audiotok.units.features import WhisperLogMel

    if deltas:
        raise UsageError("--deltas applies to fbank and mfcc")
    try:
        return SignalBackend(WhisperLogMel(num_mels or 80))
    except ValueError as err:
        raise UsageError(f"--num-mels: {err}") from None


def _encoder(kind: str, model, layer, num_mels, num_ceps, deltas, dtype, onnx_output, device):
    from audiotok.units.encoders import load_encoder

    if model is None:
        raise UsageError("--backend model needs --model")
    return load_encoder(model, layer, device, dtype, onnx_output)


# The feature backends extract-feats offers (--backend), one line each; `model` is any encoder
# units/encoders.py loads (transformers SSL and Whisper encoders, FunASR Paraformer, ONNX).
BACKENDS = {"fbank": _kaldi, "mfcc": _kaldi, "logmel": _logmel, "model": _encoder}
# What a recipe's `backend` field names -> the --backend that rebuilds it.
RECIPE_BACKENDS = {"fbank": "fbank", "mfcc": "mfcc", "logmel": "logmel", "hf": "model", "whisper": "model", "onnx": "model", "paraformer": "model"}


def open_backend(backend: str, model=None, layer=None, num_mels=None, num_ceps=13, deltas=False, dtype="float32", onnx_output=None, device="auto"):
    """A backend object with .sample_rate, .hop, .dim, .recipe, .padding_safe and batch __call__."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown --backend {backend!r}", f"choose one of {', '.join(BACKENDS)}")
    return BACKENDS[backend](backend, model, layer, num_mels, num_ceps, deltas, dtype, onnx_output, device)


def backend_from_recipe(recipe: dict, device: str = "auto", dtype: str = "float32", model: str | None = None):
    """Rebuild the backend a bundle's recipe describes (for tokenize)."""
    kind = recipe.get("backend")
    options = recipe.get("options") or {}
    if kind not in RECIPE_BACKENDS:
        raise AudiotokError(f"the bundle's recipe has an unknown backend {kind!r}")
    if RECIPE_BACKENDS[kind] != "model":
        return open_backend(
            kind, num_mels=options.get("num_bins") or options.get("num_mels"), num_ceps=options.get("num_ceps") or 13, deltas=bool(options.get("deltas"))
        )
    path = model or recipe.get("model")
    if not path:
        raise AudiotokError("the bundle's recipe names no model", "pass --model")
    backend = open_backend("model", model=path, layer=recipe.get("layer"), dtype=dtype, onnx_output=options.get("output"), device=device)
    if recipe.get("model_hash") and backend.recipe.model_hash != recipe["model_hash"]:
        raise AudiotokError(
            f"model {path} has weights {backend.recipe.model_hash}, the bundle was made with {recipe['model_hash']}",
            "pass --model with the model the bundle was trained on",
        )
    return backend
