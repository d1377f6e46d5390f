"""The tokenizer plug-in interface of `tokenize-shards`, and the table of SPEC kinds.

A shard tokenizer is any object of this shape:

    class ShardTokenizer(Protocol):
        sample_rate: int                 # waves are given at this rate, mono float32
        fields: tuple[str, ...]          # the JSON fields each result holds
        def __call__(self, waves: list[np.ndarray]) -> list[dict[str, list[int]]]: ...

    def open_tokenizer(spec: str, device: str, dtype: str = "float32") -> ShardTokenizer

Rules a tokenizer follows:
- `__call__` returns one result per wave, in the order given; a result is a dict with
  exactly the keys in `fields`, each a list (or 1-D integer array) of token ids.
- A result may instead be an `audiotok.errors.ItemError` for a wave that cannot be
  tokenized (too short, ...): the runner counts it as a named skip. Raising from
  `__call__` fails the whole call; the runner then retries the waves one at a time
  so that only the bad one is lost.
- An optional attribute `resampler` ("soxr" or "torchaudio", audiotok.dsp.resample): how the
  runner brings waves to `sample_rate`; soxr when absent.
- An optional attribute `batch_seconds` (float): when present the runner sets it to
  --batch-seconds, the padded audio seconds the tokenizer may put in one model batch.
  The runner hands over groups of about that many seconds.
- The constructor loads the model once (each worker process opens its own tokenizer)
  on `device` ("cpu", "cuda", "cuda:N") and writes nothing to stdout.

SPEC forms: `bundle:DIR` (an audiotok units bundle: field `units`),
`s3:MODEL[,version=V][,rate=R][,long_audio=M][,resampler=R][,attn_ln_eps=E]` (CosyVoice S3, an
.onnx file, S3Tokenizer weights or a preset, as `s3-extract --model --version --rate
--long-audio --resampler --attn-ln-eps`: field `s3_tokens`), `bicodec:DIR` (BiCodec from
audiotok.bicodec.tokenizer: `global_tokens`, `semantic_tokens`), or a bare directory
holding a bundle. A new kind is one entry in KINDS: a check that runs in the parent
without loading anything, and an opener that runs in each worker.
"""

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from audiotok.errors import AudiotokError, ItemError, UsageError


class ShardTokenizer(Protocol):
    sample_rate: int
    fields: tuple[str, ...]

    def __call__(self, waves: list[np.ndarray]) -> list[dict[str, list[int]]]: ...


class _WaveItem:
    """A wave already at the model's rate, shaped like an audio-table item for the extract loops."""

    def __init__(self, key: str, wave: np.ndarray, rate: int):
        from audiotok.io.audio import Audio, AudioInfo

        self.key = key
        self._audio = Audio(np.ascontiguousarray(wave, dtype=np.float32), rate, AudioInfo(rate, 1, len(wave), "RAW", "FLOAT"))

    def load(self, channel=None):
        return self._audio


class BundleTokenizer:
    """Features as the bundle's recipe says, then its nearest-centroid units (what `tokenize` does)."""

    fields = ("units",)

    def __init__(self, directory: str, device: str, dtype: str = "float32"):
        from audiotok.units.bundle import Bundle
        from audiotok.engine.batching import SignalBackend
        from audiotok.units.featurize import backend_from_recipe
        from audiotok.units.quantizing import open_assigner

        bundle = Bundle.load(directory)
        self.backend = backend_from_recipe(bundle.recipe, device, dtype)
        bundle.check_features(self.backend.dim, self.backend.recipe.as_dict(), f"the recipe of {directory}")
        self.assign = open_assigner(bundle, device, exact_fp32=False)
        self.sample_rate = self.backend.sample_rate
        self.batch_seconds = 60.0
        # The windows and overlap of `tokenize`'s defaults, so units equal its output.
        self.window_seconds = None if isinstance(self.backend, SignalBackend) else 30.0
        self.overlap_seconds = 1.0

    def __call__(self, waves: list[np.ndarray]) -> list:
        from audiotok.engine.batching import extract_features

        items = [_WaveItem(str(i), wave, self.sample_rate) for i, wave in enumerate(waves)]
        features = extract_features(
            items,
            self.backend,
            batch_seconds=self.batch_seconds,
            block=max(1, len(items)),
            window_seconds=self.window_seconds,
            overlap_seconds=self.overlap_seconds,
        )
        return [result if isinstance(result, Exception) else {"units": self.assign(result).tolist()} for _, result in features]


class S3Tokenizer:
    """CosyVoice S3 tokens: the official ONNX file or S3Tokenizer PyTorch weights (as `s3-extract`)."""

    fields = ("s3_tokens",)

    def __init__(self, target: str, device: str, dtype: str = "float32"):
        from audiotok.units.s3 import SAMPLE_RATE, open_backend

        self.options = parse_s3_target(target)
        self.backend = open_backend(self.options, device)
        self.sample_rate = SAMPLE_RATE
        self.resampler = self.options.resampler  # how the runner brings waves to sample_rate
        self.batch_seconds = 60.0

    def __call__(self, waves: list[np.ndarray]) -> list:
        from audiotok.units.s3 import s3_tokens

        items = [_WaveItem(str(i), wave, self.sample_rate) for i, wave in enumerate(waves)]
        block = max(1, len(items))
        results = s3_tokens(items, self.backend, batch_seconds=self.batch_seconds, block=block, long_audio=self.options.long_audio)
        return [r.tokens if isinstance(r.tokens, Exception) else {"s3_tokens": r.tokens.tolist()} for r in results]


def _open_bicodec(target: str, device: str, dtype: str):
    module = importlib.import_module("audiotok.bicodec.tokenizer")
    return module.BiCodecTokenizer(target, device, dtype)


def _open_bundle(target: str, device: str, dtype: str):
    return BundleTokenizer(target, device, dtype)


def _open_s3(target: str, device: str, dtype: str):
    return S3Tokenizer(target, device, dtype)


def _check_directory(what: str) -> Callable[[str], None]:
    def check(target: str) -> None:
        if not os.path.isdir(target):
            raise AudiotokError(f"no such {what} directory: {target}")

    return check


def _check_bundle(target: str) -> None:
    if not (Path(target, "config.json").is_file() and Path(target, "centroids.npy").is_file()):
        raise AudiotokError(f"{target} is not a units bundle (no config.json + centroids.npy)", "make one with audiotok fit-kmeans")


S3_SPEC_OPTIONS = ("version", "rate", "long_audio", "resampler", "attn_ln_eps")


def parse_s3_target(target: str):
    """`MODEL[,version=v1][,rate=25][,long_audio=MODE][,resampler=R][,attn_ln_eps=E]` -> S3Options."""
    from audiotok.units.s3 import S3Options

    model, values = target, {}
    while "," in model:
        head, _, option = model.rpartition(",")
        name, equals, value = option.partition("=")
        if not equals or name.replace("-", "_") not in S3_SPEC_OPTIONS:
            break  # a comma that belongs to the path
        values[name.replace("-", "_")] = value
        model = head
    options = S3Options(model, **{k: v for k, v in values.items() if k in ("version", "long_audio", "resampler")})
    try:
        if "rate" in values:
            options.rate = int(values["rate"])
        if "attn_ln_eps" in values:
            options.attn_ln_eps = float(values["attn_ln_eps"])
    except ValueError:
        raise UsageError(f"--tokenizer s3:{target}: rate and attn_ln_eps take numbers") from None
    try:
        options.check()
    except UsageError as err:
        raise UsageError(f"--tokenizer s3:{target}: {err.message}", err.hint) from None
    return options


def _check_s3(target: str) -> None:
    from audiotok.models.registry import find_preset

    model = parse_s3_target(target).model
    if not os.path.exists(model) and find_preset(model) is None:
        hint = "give speech_tokenizer_*.onnx, S3Tokenizer weights or a preset name; options: s3:MODEL,version=v1,rate=25,long_audio=step-audio"
        raise AudiotokError(f"no such S3 tokenizer model: {model}", hint)


def _check_bicodec(target: str) -> None:
    try:
        found = importlib.util.find_spec("audiotok.bicodec.tokenizer") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise AudiotokError("bicodec: tokenizers are not available in this audiotok (audiotok.bicodec.tokenizer is missing)", "use bundle:DIR or s3:MODEL")
    _check_directory("BiCodec model")(target)


@dataclass(frozen=True)
class Kind:
    check: Callable[[str], None]  # in the parent, before any process starts: cheap, loads nothing
    open: Callable[[str, str, str], ShardTokenizer]  # in each worker: (target, device, dtype)
    what: str  # for --help and messages


KINDS: dict[str, Kind] = {
    "bundle": Kind(_check_bundle, _open_bundle, "bundle:DIR, an audiotok units bundle (field units)"),
    "s3": Kind(_check_s3, _open_s3, "s3:MODEL[,version=V][,rate=R][,long_audio=M], CosyVoice S3 .onnx, S3Tokenizer weights or a preset (field s3_tokens)"),
    "bicodec": Kind(_check_bicodec, _open_bicodec, "bicodec:DIR, BiCodec from Spark-TTS (global_tokens, semantic_tokens)"),
}


def parse_spec(spec: str) -> tuple[str, str]:
    """`kind:target` -> (kind, target); a bare bundle directory -> ("bundle", dir). Checks it cheaply."""
    kind, colon, target = spec.partition(":")
    if colon and kind in KINDS:
        if not target:
            raise UsageError(f"--tokenizer {spec}: nothing after {kind}:")
    elif os.path.isdir(spec):
        kind, target = "bundle", spec
    else:
        known = "; ".join(k.what for k in KINDS.values())
        raise UsageError(f"--tokenizer {spec!r}: unknown tokenizer", f"one of {known}")
    KINDS[kind].check(target)
    return kind, target


def open_tokenizer(spec: str, device: str, dtype: str = "float32") -> ShardTokenizer:
    """Load the tokenizer SPEC names on `device`."""
    kind, target = parse_spec(spec)
    tokenizer = KINDS[kind].open(target, device, dtype)
    if not tokenizer.fields or not tokenizer.sample_rate:
        raise AudiotokError(f"the {kind} tokenizer declares no fields or no sample rate")
    return tokenizer


def check_results(results, count: int, fields: tuple[str, ...]) -> list:
    """A tokenizer's output as JSON-ready dicts of int lists (or ItemError in place)."""
    if not isinstance(results, list | tuple) or len(results) != count:
        raise RuntimeError(f"the tokenizer gave {len(results) if hasattr(results, '__len__') else '?'} results for {count} waves")
    checked = []
    for result in results:
        if isinstance(result, ItemError):
            checked.append(result)
            continue
        if not isinstance(result, dict) or set(result) != set(fields):
            raise RuntimeError(f"the tokenizer gave fields {sorted(result) if isinstance(result, dict) else type(result).__name__}, it declares {list(fields)}")
        checked.append({name: np.asarray(result[name]).astype(np.int64, copy=False).reshape(-1).tolist() for name in fields})
    return checked
