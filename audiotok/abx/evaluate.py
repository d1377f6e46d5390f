"""ABX of a keyed table, dense features or units, against phone alignments: what `abx` and `report --abx` print.

Units are scored as vectors: one-hot codes (two frames are at distance 0 or 1/2, the
angle of orthogonal vectors) or the codebook's centroids (the distances k-means saw).
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiotok.abx import items as abx_items
from audiotok.abx import score as abx_score
from audiotok.errors import AudiotokError, UsageError

log = logging.getLogger("audiotok")
VECTORS = ("onehot", "centroids")


@dataclass
class Settings:
    """How items are made and triplets scored; the options `abx` and `report --abx` share."""

    conditions: tuple = abx_score.CONDITION_NAMES
    distance: str = "cosine"
    utt2spk: str | None = None
    speaker_pattern: str | None = None
    phone_map: str | None = None
    fold_phones: bool = False
    exclude_phones: tuple = tuple(sorted(abx_items.SILENCES))
    max_size_group: int = abx_score.MAX_SIZE_GROUP
    max_x_across: int = abx_score.MAX_X_ACROSS
    seed: int = abx_score.SEED
    write_items: str | None = None  # a directory for phone.item and triphone.item

    def signature(self) -> dict:
        """The settings as JSON keeps them (tuples as lists), for a run's signature."""
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.__dict__.items()}

    def check(self) -> None:
        unknown = [name for name in self.conditions if name not in abx_score.CONDITION_NAMES]
        if unknown:
            raise UsageError(f"unknown ABX condition {unknown[0]!r}", f"choose among {', '.join(abx_score.CONDITION_NAMES)}")
        if self.distance not in abx_score.DISTANCES:
            raise UsageError(f"unknown distance {self.distance!r}", f"choose one of {', '.join(abx_score.DISTANCES)}")
        if self.utt2spk and self.speaker_pattern:
            raise UsageError("give --utt2spk or --speaker-pattern, not both")


def parse_conditions(text: str) -> tuple:
    """`all` or a comma-separated list of condition names."""
    return abx_score.CONDITION_NAMES if text == "all" else tuple(name.strip() for name in text.split(",") if name.strip())


def unit_vectors(units: Mapping[str, np.ndarray], k: int, vectors: str, centroids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each code as a vector: a row of the identity (one-hot) or its centroid."""
    if vectors not in VECTORS:
        raise UsageError(f"unknown unit vectors {vectors!r}", f"choose one of {', '.join(VECTORS)}")
    if vectors == "centroids":
        if centroids is None:
            raise UsageError("--abx-vectors centroids needs the codebook", "give --bundle DIR")
        table = np.asarray(centroids, dtype=np.float32)
    else:
        table = np.eye(k, dtype=np.float32)
    out = {}
    for key, codes in units.items():
        if len(codes) and (codes.min() < 0 or codes.max() >= len(table)):
            raise AudiotokError(f"{key}: code {codes.max() if codes.max() >= len(table) else codes.min()} is outside 0..{len(table) - 1}")
        out[key] = table[codes]
    return out


def evaluate(
    table: Mapping[str, np.ndarray], frame_rate: float, alignments, settings: Settings, item_file: str | None = None, item_kind: str = "phone"
) -> dict:
    """`abx_*` statistics: item counts, then the error rate (0..1, None when undefined) of each condition.

    Items come from `alignments` and the settings' speakers, or from a ZeroSpeech item file
    (`item_file`, scored under the conditions of `item_kind`)."""
    settings.check()
    chosen = [c for c in abx_score.CONDITIONS if c.name in settings.conditions]
    if item_file is not None:
        items = abx_items.read_item_file(item_file)
        if not any(item.file in table for item in items):
            raise AudiotokError(f"no key of the table is a file of {item_file}", "the item file's first column names the utterances")
        chosen = [c for c in chosen if c.items == item_kind]
        if not chosen:
            raise UsageError(f"no chosen condition is for {item_kind} items", f"choose {item_kind}_* conditions, or another --item-kind")
        by_kind = {item_kind: items}
        speakers = {item.file: item.speaker for item in items}
    else:
        aligned = {key: alignments[key] for key in table if key in alignments}
        if not aligned:
            raise AudiotokError("no key of the table has an alignment", "alignment keys are utterance ids (TextGrid, .lab: the file name without extension)")
        speakers, how = abx_items.speakers_of(aligned, settings.utt2spk, settings.speaker_pattern)
        log.info("ABX: %s", how)
        phone_map = abx_items.read_two_columns(settings.phone_map, "phone map") if settings.phone_map else None
        by_kind = {
            kind: abx_items.build_items(aligned, speakers, kind, settings.exclude_phones, phone_map, settings.fold_phones)
            for kind in sorted({c.items for c in chosen})
        }
    started = time.perf_counter()
    if settings.write_items:
        Path(settings.write_items).mkdir(parents=True, exist_ok=True)
        for kind, items in by_kind.items():
            abx_items.check_labels(items)
            abx_items.write_item_file(items, Path(settings.write_items, f"{kind}.item"))
    datasets = abx_score.load_datasets(by_kind, table, frame_rate)
    stats = {}
    for kind, dataset in datasets.items():
        stats[f"abx_{kind}_items"] = len(dataset)
        if dataset.dropped:
            log.info("ABX: %d %s items span no frame at %g Hz and are left out", dataset.dropped, kind, frame_rate)
    result = abx_score.score(datasets, chosen, settings.distance, settings.max_size_group, settings.max_x_across, settings.seed)
    for note in result.notes:
        log.warning("ABX %s", note)
    log.info("ABX: %d DTW alignments in %.2f s", result.pairs, time.perf_counter() - started)
    stats["abx_speakers"] = len({speakers[key] for key in table if key in speakers})
    stats["abx_distance"] = settings.distance
    return stats | {f"abx_{name}": value for name, value in result.scores.items()}
