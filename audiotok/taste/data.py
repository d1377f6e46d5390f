"""Training data: a taste-extract feature store joined by key with an S3 unit table.

Units are Kaldi text integer vectors (`key u1 u2 ...`, what s3-extract writes) or
JSONL (`{"key", "tokens"}`, s3-extract --format jsonl). Keys found on one side only
are counted and a few named; an item whose unit count is far from the unit rate x
its duration (Whisper frames / frame rate) is named in a warning (a mismatched
table) but kept. The unit rate is the one s3-extract records beside the table
(UNITS.recipe.json, "frame_rate"); `data.unit_rate` serves only tables without that
record, and a config rate that contradicts the record is refused: one of the two
describes other units.

Batches are a pure function of (seed, step): the epoch's order is a seeded
permutation, so a resumed run needs no loader state beyond the step.
"""

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiotok.errors import AudiotokError
from audiotok.io.feature_store import FeatureStore
from audiotok.taste.model import Batch

log = logging.getLogger("audiotok")


def unit_table_path(spec: str) -> str:
    """The file a unit-table argument names (`FILE`, `jsonl:FILE`, `ark,t:FILE`; `-` is stdin)."""
    for prefix in ("jsonl:", "ark,t:"):
        if spec.startswith(prefix):
            return spec[len(prefix) :]
    return spec


def read_units(spec: str) -> dict[str, np.ndarray]:
    from audiotok.io.tables import read_int_vectors, read_jsonl_table

    path = unit_table_path(spec)
    if spec != "-" and not Path(path).is_file():
        raise AudiotokError(f"no such unit table: {path}", "make one with audiotok s3-extract")
    if spec.startswith("jsonl:") or path.endswith(".jsonl"):
        table = {}
        for key, tokens in read_jsonl_table(spec, "tokens"):
            if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
                raise AudiotokError(f'{path}: {key}: "tokens" must be a list of integers')
            table[key] = np.asarray(tokens, dtype=np.int64)
        return table
    return dict(read_int_vectors(spec))


def read_units_recipe(spec: str) -> tuple[dict | None, Path | None]:
    """What made a unit table, as s3-extract records it beside the file (UNITS.recipe.json),
    and where that record is; (None, None) for stdin, (None, path) when there is none."""
    from audiotok.io.recipes import recipe_sidecar

    if spec == "-":
        return None, None
    sidecar = recipe_sidecar(unit_table_path(spec))
    if not sidecar.is_file():
        return None, sidecar
    try:
        recipe = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        recipe = None
    if not isinstance(recipe, dict):
        raise AudiotokError(f"{sidecar} is not a JSON object", "rerun s3-extract -o FILE to rewrite it, or delete it")
    return recipe, sidecar


def unit_rate_for(spec: str, config: dict, split: str) -> tuple[float | None, str]:
    """The units a second of a unit table and where that number came from: the table's
    recorded recipe, else data.unit_rate, else nothing (the counts are then not checked).
    Says which in one log line."""
    configured = config["data"]["unit_rate"]
    recipe, sidecar = read_units_recipe(spec)
    recipe = recipe or {}
    codebook, vocab = recipe.get("codebook_size"), config["decoder"]["unit_vocab"]
    if isinstance(codebook, int) and codebook > vocab:
        raise AudiotokError(f"{sidecar} records a codebook of {codebook} units, decoder.unit_vocab is {vocab}", f"set decoder.unit_vocab: {codebook}")
    if recipe.get("dedup"):
        log.info("%s: %s records run-length deduplicated units (--dedup): unit counts are not checked against the audio", split, sidecar)
        return None, f"{sidecar} (dedup)"
    recorded = recipe.get("frame_rate")
    if recorded is not None:
        if isinstance(recorded, bool) or not isinstance(recorded, (int, float)) or recorded <= 0:
            raise AudiotokError(f"{sidecar}: frame_rate must be a positive number, got {recorded!r}", "rerun s3-extract -o FILE to rewrite it")
        if configured is not None and not math.isclose(configured, recorded, rel_tol=1e-3):
            raise AudiotokError(
                f"data.unit_rate is {configured:g} but {sidecar} records {recorded:g} units a second",
                "leave data.unit_rate out of the config: the recorded rate is used",
            )
        log.info("%s: %g units a second, as %s records", split, recorded, sidecar)
        return float(recorded), str(sidecar)
    missing = f"{sidecar} records none" if sidecar else "stdin has no recipe"
    how = "s3-extract -o FILE records it in FILE.recipe.json"
    if configured is None:
        log.warning("%s: unit rate unknown (%s, data.unit_rate is not set): unit counts are not checked against the audio (%s)", split, missing, how)
        return None, "unknown"
    log.info("%s: %g units a second from the config's data.unit_rate (%s; %s)", split, configured, missing, how)
    return float(configured), "data.unit_rate"


def _names(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


@dataclass
class Item:
    key: str
    text: str
    text_ids: np.ndarray
    text_emb: np.ndarray
    whisper: np.ndarray
    units: np.ndarray


class UnitCorpus:
    """The items of one split: feature-store entries with their units, in key order; features cached."""

    def __init__(self, features: str, units: str, config: dict, split: str):
        self.store = FeatureStore(features)
        table = read_units(units)
        d = config["data"]
        in_store, in_units = set(self.store.keys()), set(table)
        only_store, only_units = sorted(in_store - in_units), sorted(in_units - in_store)
        self.keys = sorted(in_store & in_units)
        self.report = {"items": len(self.keys), "features_without_units": len(only_store), "units_without_features": len(only_units), "off_rate": []}
        if only_store:
            log.warning("%s: %d feature items have no units in %s (left out): %s", split, len(only_store), units, _names(only_store))
        if only_units:
            log.warning("%s: %d unit items have no features in %s (left out): %s", split, len(only_units), features, _names(only_units))
        if not self.keys:
            raise AudiotokError(f"{split}: no key is in both {features} and {units}", "the feature store and the unit table must come from the same corpus")
        vocab = config["decoder"]["unit_vocab"]
        self.unit_rate, rate_source = unit_rate_for(units, config, split)
        self.report.update(unit_rate=self.unit_rate, unit_rate_from=rate_source)
        frame_rate = float(self.store.meta.get("frame_rate", 50))
        self.units = {}
        empty, too_long = [], []
        max_text, max_positions = config["model"]["max_text_tokens"], config["decoder"]["max_positions"]
        for key in self.keys:
            units_of = table[key]
            if len(units_of) == 0:
                empty.append(key)
                continue
            tokens = self.store.row(key)["tokens"]
            if tokens > max_text or (config["decoder"]["type"] == "transformer" and tokens + 1 + len(units_of) > max_positions):
                too_long.append(key)
                continue
            if units_of.min() < 0 or units_of.max() >= vocab:
                raise AudiotokError(
                    f"{units}: {key} has unit {int(units_of.max() if units_of.max() >= vocab else units_of.min())} outside [0, {vocab})",
                    "set decoder.unit_vocab to the S3 codebook size (v1 4096, v2 6561)",
                )
            if self.unit_rate is not None:
                expected = self.unit_rate * self.store.row(key)["frames"] / frame_rate
                if abs(len(units_of) - expected) > d["rate_tolerance"] * expected + 2:
                    self.report["off_rate"].append(key)
            self.units[key] = units_of
        if empty:
            log.warning("%s: %d items have no units (left out): %s", split, len(empty), _names(empty))
        if too_long:
            log.warning(
                "%s: %d items are longer than model.max_text_tokens (%d) text tokens or decoder.max_positions (%d) text tokens + units (left out): %s",
                split,
                len(too_long),
                max_text,
                max_positions,
                _names(too_long),
            )
        self.report["too_long"] = len(too_long)
        self.keys = [k for k in self.keys if k in self.units]
        if not self.keys:
            raise AudiotokError(f"{split}: no usable item (empty or too long)", "raise model.max_text_tokens / decoder.max_positions")
        if self.report["off_rate"]:
            off = self.report["off_rate"]
            log.warning("%s: %d items have a unit count far from %g a second of audio (kept): %s", split, len(off), self.unit_rate, _names(off))
        self.meta = self.store.meta
        first = self.store.get(self.keys[0])
        self.text_dim, self.whisper_dim = int(first.text_emb.shape[1]), int(first.whisper.shape[1])
        self._cache: dict[str, Item] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def item(self, index: int) -> Item:
        key = self.keys[index]
        cached = self._cache.get(key)
        if cached is None:
            f = self.store.get(key)
            if f.text_emb.shape[1] != self.text_dim or f.whisper.shape[1] != self.whisper_dim:
                raise AudiotokError(f"{key}: feature sizes {f.text_emb.shape[1]}/{f.whisper.shape[1]} differ from the store's first item's")
            cached = Item(key, f.text, f.text_ids, f.text_emb.astype(np.float32), f.whisper.astype(np.float32), self.units[key])
            self._cache[key] = cached
        return cached

    def all_units(self) -> list[np.ndarray]:
        return [self.units[k] for k in self.keys]


def collate(items: list, units: bool = True) -> Batch:
    """Pad a list of Items (or TasteFeatures, with units=False) into a Batch."""
    b = len(items)
    n = max(len(i.text_ids) for i in items)
    t = max(len(i.whisper) for i in items)
    u = max(len(i.units) for i in items) if units else 0
    text_emb = torch.zeros(b, n, items[0].text_emb.shape[1])
    whisper = torch.zeros(b, t, items[0].whisper.shape[1])
    text_mask = torch.zeros(b, n, dtype=torch.bool)
    whisper_mask = torch.zeros(b, t, dtype=torch.bool)
    unit_tensor = torch.zeros(b, u, dtype=torch.long)
    unit_lengths = torch.zeros(b, dtype=torch.long)
    for i, item in enumerate(items):
        text_emb[i, : len(item.text_ids)] = torch.from_numpy(np.asarray(item.text_emb, dtype=np.float32))
        text_mask[i, : len(item.text_ids)] = True
        whisper[i, : len(item.whisper)] = torch.from_numpy(np.asarray(item.whisper, dtype=np.float32))
        whisper_mask[i, : len(item.whisper)] = True
        if units:
            unit_tensor[i, : len(item.units)] = torch.from_numpy(item.units)
            unit_lengths[i] = len(item.units)
    return Batch([i.key for i in items], text_emb, text_mask, whisper, whisper_mask, unit_tensor, unit_lengths)


def baselines(train_units: list[np.ndarray], eval_sets: dict[str, list[np.ndarray]]) -> dict:
    """Accuracy of two predictors that need no model, fitted on the training units:
    majority (always the most frequent training unit) and copy-previous (unit t-1
    predicts unit t; the first unit of an utterance gets the majority unit)."""
    counts = np.bincount(np.concatenate(train_units))
    majority = int(counts.argmax())
    out = {"majority_unit": majority}
    for name, sequences in eval_sets.items():
        total = sum(len(s) for s in sequences)
        hits_majority = sum(int((s == majority).sum()) for s in sequences)
        hits_copy = sum(int((s[1:] == s[:-1]).sum()) + int(s[0] == majority) for s in sequences)
        out[f"{name}_majority_accuracy"] = hits_majority / total
        out[f"{name}_copy_previous_accuracy"] = hits_copy / total
    return out
