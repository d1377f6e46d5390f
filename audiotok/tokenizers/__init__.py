"""The tokenizer registry: every family of tokenizers behind one protocol.

A tokenizer is any object of this shape:

    class Tokenizer(Protocol):
        sample_rate: int                 # waves are given at this rate, mono float32
        fields: tuple[str, ...]          # the fields each result holds (one: a unit table)
        def __call__(self, waves: list[np.ndarray]) -> list[dict[str, list[int]]]: ...

Rules a tokenizer follows:
- `__call__` returns one result per wave, in the order given; a result is a dict with
  exactly the keys in `fields`, each a list (or 1-D integer array) of token ids.
- A result may instead be an `audiotok.errors.ItemError` for a wave that cannot be
  tokenized (too short, ...): the caller counts it as a named skip. Raising from
  `__call__` fails the whole call; the caller then retries the waves one at a time
  so that only the bad one is lost.
- Optional attributes: `resampler` ("soxr" or "torchaudio", audiotok.dsp.resample), how the
  caller brings waves to `sample_rate` (soxr when absent); `batch_seconds` (float), set by the
  caller to --batch-seconds, the padded audio seconds one model batch may hold; `frame_rate`
  (tokens a second, for timestamps).
- The constructor loads the model once on `device` ("cpu", "cuda", "cuda:N") and writes
  nothing to stdout.

A family is one module holding its tokenizer and its `Family` record, plus one line in
FAMILIES below (or, for a family outside audiotok, a module named in the environment
variable AUDIOTOK_TOKENIZERS that calls `register(Family(...))` when imported). A spec
names a tokenizer: `family:target`, or a bare bundle directory.
"""

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from audiotok.errors import AudiotokError, ItemError, UsageError

if TYPE_CHECKING:
    import numpy as np

PLUGINS_VARIABLE = "AUDIOTOK_TOKENIZERS"


class Tokenizer(Protocol):
    sample_rate: int
    fields: tuple[str, ...]

    def __call__(self, waves: "list[np.ndarray]") -> list[dict[str, list[int]]]: ...


@dataclass(frozen=True)
class Family:
    name: str  # the spec prefix: `name:target`
    check: Callable[[str], None]  # cheap, loads nothing: run in the parent before workers start
    open: Callable[[str, str, str], Tokenizer]  # (target, device, dtype) -> a loaded tokenizer
    what: str  # `name:TARGET, what it is (its fields)`: for --help and messages
    native_stream: bool = False  # `audiotok stream` has an exact incremental path for it


# The families audiotok ships, one line each: (name, the module whose FAMILY is its Family).
# Listed here so that --help names them without importing any model code.
FAMILIES = (
    ("bundle", "audiotok.tokenizers.kmeans"),
    ("s3", "audiotok.tokenizers.s3"),
    ("bicodec", "audiotok.tokenizers.bicodec"),
)
NAMES = tuple(name for name, _ in FAMILIES)
HELP = "bundle:DIR (or a bundle DIR), s3:MODEL[,version=V][,rate=R][,long_audio=M], bicodec:DIR, or a family AUDIOTOK_TOKENIZERS adds"

_registry: dict[str, Family] = {}
_loaded = False  # audiotok's families and AUDIOTOK_TOKENIZERS' modules are imported


def register(family: Family) -> Family:
    """Add a family (a module outside audiotok calls this when imported; see AUDIOTOK_TOKENIZERS)."""
    _registry[family.name] = family
    return family


def families() -> dict[str, Family]:
    """Every family by name: audiotok's, then those the modules named in AUDIOTOK_TOKENIZERS register."""
    global _loaded
    if not _loaded:  # not `if not _registry`: a plug-in imported first has registered itself already
        _loaded = True
        for name, module in FAMILIES:
            family = importlib.import_module(module).FAMILY
            assert family.name == name, f"{module} registers {family.name}, FAMILIES says {name}"
            register(family)
        for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(","))):
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise AudiotokError(f"{PLUGINS_VARIABLE}: cannot import {module}: {err}") from None
    return _registry


def describe() -> str:
    """The families, loaded: `name:TARGET, what` each (for messages)."""
    return "; ".join(f.what for f in families().values())


def parse_spec(spec: str, given_as: str = "--tokenizer") -> tuple[str, str]:
    """`family:target` -> (family, target); a bare bundle directory -> ("bundle", dir). Checks it cheaply.
    given_as: how the user gave the spec, for messages."""
    known = families()
    name, colon, target = spec.partition(":")
    if colon and name in known:
        if not target:
            raise UsageError(f"{given_as} {spec}: nothing after {name}:")
    elif os.path.isdir(spec):
        name, target = "bundle", spec
    else:
        raise UsageError(f"{given_as} {spec!r}: unknown tokenizer", f"one of {describe()}")
    known[name].check(target)
    return name, target


def fingerprint(spec: str) -> str | None:
    """A digest of what the files SPEC names hold (centroids, weights), for run signatures: a
    tokenizer refit or replaced at the same path is another tokenizer. None for a hub id."""
    from audiotok.io.digests import model_digest

    return model_digest(parse_spec(spec)[1])


def open_tokenizer(spec: str, device: str, dtype: str = "float32") -> Tokenizer:
    """Load the tokenizer SPEC names on `device`."""
    name, target = parse_spec(spec)
    tokenizer = families()[name].open(target, device, dtype)
    if not tokenizer.fields or not tokenizer.sample_rate:
        raise AudiotokError(f"the {name} tokenizer declares no fields or no sample rate")
    return tokenizer


def check_results(results, count: int, fields: tuple[str, ...]) -> list:
    """A tokenizer's output as JSON-ready dicts of int lists (or ItemError in place)."""
    import numpy as np

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


class WaveItem:
    """A wave already at the model's rate, shaped like an audio-table item for the engine's loops."""

    def __init__(self, key: str, wave: "np.ndarray", rate: int):
        import numpy as np

        from audiotok.io.audio import Audio, AudioInfo

        self.key = key
        self._audio = Audio(np.ascontiguousarray(wave, dtype=np.float32), rate, AudioInfo(rate, 1, len(wave), "RAW", "FLOAT"))

    def load(self, channel=None):
        return self._audio


def call_tokenizer(tokenizer: Tokenizer, waves: list) -> list:
    """Checked results for every wave; when a group call raises, each wave alone, so only the bad one fails."""
    try:
        return check_results(tokenizer(waves), len(waves), tokenizer.fields)
    except Exception as err:  # noqa: BLE001 - a model error must cost one item, not the run
        if len(waves) == 1:
            return [err if isinstance(err, ItemError) else ItemError(f"tokenizer failed: {type(err).__name__}: {err}")]
    return [result for wave in waves for result in call_tokenizer(tokenizer, [wave])]


def at_tokenizer_rate(tokenizer: Tokenizer, audio) -> "np.ndarray":
    """An item's audio at the tokenizer's rate, by the resampler its reference uses (soxr when it names none)."""
    from audiotok.dsp.resample import resample

    return resample(audio.samples, audio.rate, tokenizer.sample_rate, method=getattr(tokenizer, "resampler", "soxr"))


def tokenize_items(items, tokenizer: Tokenizer, *, channel: int | None = None, batch_seconds: float = 60.0):
    """(key, fields dict or ItemError) for each audio-table item, in input order; the tokenizer
    gets groups of up to `batch_seconds` of audio (it batches within a group as it can)."""
    if hasattr(tokenizer, "batch_seconds"):
        tokenizer.batch_seconds = batch_seconds
    group: list[tuple[str, object]] = []  # (key, wave or ItemError)
    seconds = 0.0

    def flush():
        waves = [wave for _, wave in group if not isinstance(wave, ItemError)]
        results = iter(call_tokenizer(tokenizer, waves) if waves else [])
        done = [(key, wave if isinstance(wave, ItemError) else next(results)) for key, wave in group]
        group.clear()
        return done

    for item in items:
        try:
            wave = at_tokenizer_rate(tokenizer, item.load(channel))
        except ItemError as err:
            wave = err
        group.append((item.key, wave))
        seconds += 0 if isinstance(wave, ItemError) else len(wave) / tokenizer.sample_rate
        if seconds >= batch_seconds:
            yield from flush()
            seconds = 0.0
    yield from flush()
