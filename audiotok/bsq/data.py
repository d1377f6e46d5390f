"""Training data: utterances from an audio table, deterministic batches by step.

Tables: anything `open_audio_source` reads (a Kaldi data dir, an audio folder such
as a LibriSpeech root, scp:, tar:, jsonl:), plus `commonvoice:CORPUS/train.tsv`
(a Common Voice table; audio in CORPUS/clips/).

Every batch is a pure function of (seed, step): the epoch's order is a seeded
permutation, and the crop offset and SpecAugment masks of the item in slot j of
step s come from a generator seeded with (seed, s, j). A resumed run needs no
loader state beyond the step, and DDP rank r of W takes slots r, r+W, ... of the
same global batch (DistributedSampler's striding), so W processes see exactly
what one process sees.
"""

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiotok.errors import AudiotokError, ItemError
from audiotok.training import batch_order

log = logging.getLogger("audiotok")


@dataclass
class Utterance:
    key: str
    load: object  # () -> Audio


def _commonvoice(spec: str) -> list[Utterance]:
    tsv = Path(spec)
    clips = tsv.parent / "clips"
    if not tsv.is_file():
        raise AudiotokError(f"no such Common Voice table: {tsv}")
    from audiotok.io.audio import decode

    with tsv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or "path" not in rows[0]:
        raise AudiotokError(f"{tsv} has no 'path' column", "a Common Voice release table (train.tsv, dev.tsv, ...)")
    utterances = []
    for row in rows:
        name = os.path.basename(row["path"])  # never follow ../ out of clips/
        utterances.append(Utterance(Path(name).stem, lambda path=clips / name: decode(path)))
    return sorted(utterances, key=lambda u: u.key)


def list_utterances(spec: str) -> list[Utterance]:
    if spec.startswith("commonvoice:"):
        return _commonvoice(spec[len("commonvoice:") :])
    from audiotok.io.audio_table import open_audio_source

    source, _ = open_audio_source(spec)
    return [Utterance(item.key, item.load) for item in source]


class MelCorpus:
    """Utterances as scaled log-mels at the model's rate, decoded once and cached."""

    def __init__(self, utterances: list[Utterance], frontend, cache_mb: float = 2048):
        self.utterances, self.frontend = utterances, frontend
        self._cache: dict[int, torch.Tensor] = {}
        self._cache_bytes, self._limit = 0, cache_mb * 2**20

    def __len__(self) -> int:
        return len(self.utterances)

    def waveform(self, index: int) -> np.ndarray:
        from audiotok.bsq.mel import waveform_at

        return waveform_at(self.utterances[index].load(), self.frontend.sample_rate)

    def mel(self, index: int) -> torch.Tensor:
        if index in self._cache:
            return self._cache[index]
        mel = self.frontend(self.waveform(index)).to(torch.float16)
        if self._cache_bytes + mel.numel() * 2 <= self._limit:
            self._cache[index] = mel
            self._cache_bytes += mel.numel() * 2
        return mel


def split_train_valid(config: dict) -> tuple[list[Utterance], list[Utterance]]:
    d = config["data"]
    if not d["train"]:
        raise AudiotokError("data.train is not set in the config", "an audio table: a data dir, an audio folder, scp:, tar:, jsonl: or commonvoice:TSV")
    train = usable(list_utterances(d["train"]))
    if d["valid"]:
        return train, usable(list_utterances(d["valid"]))
    count = d["valid_count"]
    if count >= len(train):
        raise AudiotokError(f"data.train has {len(train)} utterances; holding out data.valid_count={count} leaves none to train on")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config["optim"]["seed"])).tolist()
    held = set(order[:count])
    return [u for i, u in enumerate(train) if i not in held], [u for i, u in enumerate(train) if i in held]


def usable(utterances: list[Utterance]) -> list[Utterance]:
    """Keep the utterances that decode; warn about the rest by key."""
    kept = []
    for utterance in utterances:
        try:
            audio = utterance.load()
            if len(audio.samples) == 0:
                raise ItemError("no samples")
        except ItemError as err:
            log.warning("%s: %s (left out of training)", utterance.key, err)
            continue
        kept.append(utterance)
    if not kept:
        raise AudiotokError("no usable utterances in the training data")
    return kept


def _slot_generator(seed: int, step: int, slot: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 65_537 + slot)


def spec_augment(mel: torch.Tensor, options: dict, generator: torch.Generator) -> torch.Tensor:
    """Time and frequency masks, filled with the segment's mean (the model input only)."""
    mel = mel.clone()
    frames, bins = mel.shape
    fill = mel.mean()
    for count, width, axis, size in ((options["time_masks"], options["time_width"], 0, frames), (options["freq_masks"], options["freq_width"], 1, bins)):
        for _ in range(count):
            w = int(torch.randint(0, width + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, size - w + 1), (1,), generator=generator))
            if axis == 0:
                mel[start : start + w] = fill
            else:
                mel[:, start : start + w] = fill
    return mel


def training_batch(corpus: MelCorpus, config: dict, step: int, rank: int = 0, world: int = 1):
    """-> (augmented input, clean target, frame mask) for this rank's share of global batch `step`."""
    d, o = config["data"], config["optim"]
    segment = d["segment_frames"] or config["model"]["input_length"]
    indices = batch_order(step, len(corpus), o["batch_size"], o["seed"])
    inputs, targets, masks = [], [], []
    for slot in range(rank, len(indices), world):
        generator = _slot_generator(o["seed"], step, slot)
        mel = corpus.mel(indices[slot]).float()
        start = int(torch.randint(0, max(1, mel.shape[0] - segment + 1), (1,), generator=generator))
        crop = mel[start : start + segment]
        real = crop.shape[0]
        target = torch.cat([crop, crop.new_full((segment - real, crop.shape[1]), -1.0)])
        mask = torch.zeros(segment)
        mask[:real] = 1.0
        inputs.append(spec_augment(target, d["spec_augment"], generator))
        targets.append(target)
        masks.append(mask)
    return torch.stack(inputs), torch.stack(targets), torch.stack(masks)
