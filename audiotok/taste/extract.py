"""TASTE features of an utterance: its transcript's token ids and embeddings, and the
Whisper encoder's hidden states of its audio.

TASTE's aggregator attends from text tokens (queries) to Whisper encoder frames
(keys/values), so both sides are computed here, once, and stored. The audio side
is audiotok's Whisper backend (units.encoders.WhisperEncoder: 30 s log-mel
windows, any layer, 50 frames a second) run by engine.batching.extract_features
(resampling to 16 kHz, windows for recordings over 30 s, batching, per-item
errors), so the frames equal `extract-feats --model WHISPER --layer L`. The text
side is taste.text_model.TextEmbedder; by default the Whisper directory's own
tokenizer and decoder embeddings.

`TasteExtractor.meta` records what the features depend on (models and their
weight digests, layer, dims, dtype, special tokens); taste-encode rebuilds the
same extractor from a store's meta with `TasteExtractor.from_meta`.
"""

import dataclasses
import logging
from collections.abc import Iterable, Iterator

import numpy as np

from audiotok.errors import AudiotokError, ItemError
from audiotok.io.feature_store import FeatureStoreWriter, TasteFeatures

log = logging.getLogger(__name__)

FRAME_RATE = 50  # Whisper encoder frames a second
SAMPLE_RATE = 16000


def _failing_read(error: ItemError):
    def read(channel):
        raise error

    return read


class TasteExtractor:
    """Text ids + embeddings and Whisper encoder features for (audio item, transcript) pairs.

    whisper: a local Whisper directory (transformers format) or a preset name.
    layer: encoder hidden state to take (0 = after the convolutions; default the
        last layer, after the final LayerNorm, i.e. the encoder's output).
    text_model: a local directory with a tokenizer and weights whose input embeddings
        are used; default the Whisper directory (its tokenizer, decoder embeddings).
    device: auto, cpu or cuda; dtype: float32, float16 or bfloat16 (the encoder's).
    add_special_tokens: keep the tokenizer's special tokens (off: only the words).
    """

    def __init__(
        self,
        whisper: str,
        layer: int | None = None,
        text_model: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        add_special_tokens: bool = False,
    ):
        from audiotok.taste.text_model import TextEmbedder, local_model_name
        from audiotok.units.encoders import load_encoder, model_directory, quiet_transformers

        quiet_transformers()
        from transformers import AutoConfig

        directory = model_directory(whisper)
        try:
            config = AutoConfig.from_pretrained(str(directory))
        except (OSError, ValueError) as err:
            raise AudiotokError(f"{directory} is not a transformers model directory: {str(err).splitlines()[0]}") from None
        if config.model_type != "whisper":
            raise AudiotokError(f"--whisper {whisper}: a {config.model_type!r} model, not Whisper", "give a Whisper directory in transformers format")
        self.layer = config.encoder_layers if layer is None else layer
        self.encoder = load_encoder(str(directory), self.layer, device, dtype)
        self.whisper = local_model_name(whisper)
        if text_model is None:  # Whisper's own tokenizer and decoder embeddings; its weights are hashed already
            self.text = TextEmbedder(str(directory), add_special_tokens, digest=self.encoder.recipe.model_hash)
        else:
            self.text = TextEmbedder(text_model, add_special_tokens)
        self.dtype = dtype
        self.add_special_tokens = add_special_tokens
        self.meta = {
            "whisper_model": self.whisper,
            "whisper_digest": self.encoder.recipe.model_hash,
            "layer": self.layer,
            "whisper_dim": self.encoder.dim,
            "num_mels": config.num_mel_bins,
            "text_model": self.text.model,
            "text_digest": self.text.digest,
            "text_dim": self.text.dim,
            "add_special_tokens": add_special_tokens,
            "frame_rate": FRAME_RATE,
            "sample_rate": SAMPLE_RATE,
            "dtype": dtype,
        }
        log.info(
            "Whisper %s: encoder layer %d of %d, %d dims; text model %s: %d dims, %d tokens",
            self.whisper,
            self.layer,
            config.encoder_layers,
            self.encoder.dim,
            self.text.model,
            self.text.dim,
            len(self.text.table),
        )

    @classmethod
    def from_meta(cls, meta: dict, device: str = "auto", whisper: str | None = None, text_model: str | None = None) -> "TasteExtractor":
        """The extractor a store's meta.json describes; `whisper`/`text_model` point at moved copies.

        Raises AudiotokError when the weights found differ from those the meta records.
        """
        try:
            extractor = cls(
                whisper or meta["whisper_model"],
                layer=meta["layer"],
                text_model=text_model or meta["text_model"],
                device=device,
                dtype=meta.get("dtype", "float32"),
                add_special_tokens=bool(meta["add_special_tokens"]),
            )
        except KeyError as err:
            raise AudiotokError(f"the TASTE feature meta lacks {err.args[0]!r}", "remake the features with audiotok taste-extract") from None
        for field, option in (("whisper_digest", "--whisper"), ("text_digest", "--text-model")):
            if extractor.meta[field] != meta.get(field):
                model = extractor.meta[field.replace("digest", "model")]
                raise AudiotokError(
                    f"{model} has other weights ({extractor.meta[field]}) than the features were made with ({meta.get(field)})",
                    f"give {option} the model that made them",
                )
        return extractor

    def extract(self, pairs: Iterable[tuple], *, channel: int | None = None, batch_seconds: float = 60.0) -> Iterator[tuple[str, TasteFeatures | ItemError]]:
        """Yield (key, TasteFeatures) or (key, ItemError) for each (AudioItem, text) pair, in input order.

        A pair whose text is None ("no text"), blank or gives no tokens fails without its audio being read.
        Features are float32; the caller converts them for storage.
        """
        from audiotok.engine.batching import extract_features

        texts: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}

        def audio_items():
            for item, text in pairs:
                try:
                    if not isinstance(text, str):
                        raise ItemError("no text")
                    ids, embeddings = self.text(text)
                except ItemError as err:
                    yield dataclasses.replace(item, _read=_failing_read(err), _probe=None)
                    continue
                texts[item.key] = (text, ids, embeddings)
                yield item

        for key, frames in extract_features(audio_items(), self.encoder, channel=channel, batch_seconds=batch_seconds):
            text = texts.pop(key, None)
            if isinstance(frames, ItemError):
                yield key, frames
                continue
            yield key, TasteFeatures(key, text[0], text[1], text[2], frames)


# ---------------------------------------------------------------- a corpus into a feature store

STORE_DTYPES = ("float32", "float16")


@dataclasses.dataclass
class Corpus:
    """An audio table with a transcript per key: a JSONL manifest's "text" field or a data dir's `text` file."""

    source: object  # audiotok.io.audio_table.AudioSource
    failures: list  # (name, reason) found while reading the source, not items of their own
    texts: dict | None  # key -> transcript from a Kaldi `text` file; None: from each item's metadata

    def text_of(self, item) -> str | None:
        if self.texts is not None:
            return self.texts.get(item.key)
        value = item.metadata.get("text")
        return value if isinstance(value, str) else None


def open_corpus(spec: str) -> Corpus:
    """A JSONL manifest ({"audio_path", "text"} lines; jsonl:FILE or FILE.jsonl), a Kaldi data dir
    with `text`, or any audio table whose items carry a "text" field (WebDataset .json)."""
    from audiotok.io.audio_table import open_audio_source, read_kaldi_lines

    source, failures = open_audio_source(spec)
    texts = None
    if source.data_dir is not None:
        path = source.data_dir / "text"
        if not path.is_file():
            raise AudiotokError(
                f"{source.data_dir} has no text file",
                'taste-extract needs transcripts: add DIR/text with `key transcript` lines, or give a JSONL manifest with a "text" field',
            )
        texts = {parts[0]: parts[1] for _, parts in read_kaldi_lines(path, None, allow_empty=True)}  # an empty transcript is a counted skip
    return Corpus(source, failures, texts)


def prepare_output(output, force: bool) -> None:
    """--force removes a feature store (never a directory that is not one); a foreign non-empty directory is refused."""
    import shutil
    from pathlib import Path

    from audiotok.io.locks import claim_output

    path = Path(output)
    if path.exists() and not path.is_dir():
        raise AudiotokError(f"{path} is a file, not a feature store directory")
    claim_output(path, directory=True)  # before --force removes anything
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not (path / "meta.json").is_file():
        raise AudiotokError(f"{path} is a non-empty directory but not a TASTE feature store", "give a new or empty directory")
    if force:
        log.info("--force: removing %s", path)
        shutil.rmtree(path)


def finished_without_models(corpus: Corpus, output, settings: dict, subset_ratio: float, seed: int) -> bool:
    """True when the store at `output` already holds every kept key of `corpus`, made with the
    same settings as far as they can be told without loading the models (paths, layer when
    given, dtypes, special tokens): a rerun of a finished extraction then skips the model
    loading. Logs `done N/N (N already done)` like a run that found everything done."""
    import json
    from pathlib import Path

    from audiotok.engine import items as engine
    from audiotok.io.feature_store import FeatureStore
    from audiotok.units.kmeans import keep_utterance

    meta_path = Path(output) / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
        done = set(FeatureStore(output).keys())
    except (ValueError, AudiotokError):
        return False  # let the full run report what is wrong
    if any(meta.get(name) != value for name, value in settings.items()):
        return False
    kept = [item.key for item in corpus.source if keep_utterance(item.key, seed, subset_ratio * 100)]
    if not kept or corpus.failures or not set(kept) <= done:
        return False
    log.info("%s already holds all %d kept items: nothing to do", output, len(kept))
    engine.run("taste-extract", engine.NoSink(), (), None, already_done=len(kept))
    return True


def extract_corpus(
    extractor: TasteExtractor,
    corpus: Corpus,
    output,
    *,
    subset_ratio: float = 1.0,
    seed: int = 0,
    memory_limit: float = 0.9,
    memory_check_every: int = 20,
    shard_items: int = 256,
    store_dtype: str = "float32",
    batch_seconds: float = 60.0,
    channel: int | None = None,
    min_success: float = 0.95,
    memory_share=None,
) -> FeatureStoreWriter:
    """Extract every kept, unfinished item of `corpus` into the store at `output`; finish with `done N/M`.

    Keys already in the store are skipped (resume). The subset is decided by key and
    seed alone, so a larger ratio later adds only the new keys. Every
    `memory_check_every` items the memory share is checked: above `memory_limit`
    (after freeing caches) the finished items are written and the run stops with
    an AudiotokError saying how to continue. Whatever stops the run (an error,
    Ctrl-C, SIGTERM), finished items are written first.
    """
    from audiotok.engine import items as engine
    from audiotok.engine import memory
    from audiotok.units.kmeans import keep_utterance

    if store_dtype not in STORE_DTYPES:
        raise AudiotokError(f"unknown --store-dtype {store_dtype!r}", f"choose one of {', '.join(STORE_DTYPES)}")
    if not 0.0 < subset_ratio <= 1.0:
        raise AudiotokError(f"--subset-ratio {subset_ratio:g} must be within (0, 1]")
    memory_share = memory_share or memory.memory_share
    writer = FeatureStoreWriter(output, {**extractor.meta, "store_dtype": store_dtype}, shard_items=shard_items)
    if writer.done:
        log.info("%s already holds %d items: they are skipped", output, len(writer.done))
    counts = {"seen": 0, "kept": 0, "processed": 0}
    cast = np.float16 if store_dtype == "float16" else np.float32
    skipped: list[tuple[str, object]] = []  # resumed keys and unstorable ones, reported after the run

    def pairs():
        for item in corpus.source:
            counts["seen"] += 1
            if not keep_utterance(item.key, seed, subset_ratio * 100):
                continue
            counts["kept"] += 1
            if item.key in writer.done:
                skipped.append((item.key, engine.ALREADY_DONE))
                continue
            if "/" in item.key:  # the store names tensors KEY/FIELD
                skipped.append((item.key, ItemError("the key contains '/', which a TASTE feature store cannot hold")))
                continue
            yield item, corpus.text_of(item)

    def check_memory():
        share = memory_share()
        if share <= memory_limit:
            return
        memory.free_caches()
        share = memory_share()
        if share <= memory_limit:
            return
        writer.flush()
        raise AudiotokError(
            f"memory use {share * 100:.0f}% is above --memory-limit {memory_limit * 100:g}% after {counts['processed']} items; "
            f"the {len(writer.done)} finished items are saved in {output}",
            "run the same command again to continue, or lower --batch-seconds / --subset-ratio",
        )

    def results():
        for key, result in extractor.extract(pairs(), channel=channel, batch_seconds=batch_seconds):
            counts["processed"] += 1
            yield key, result
            if memory_check_every and counts["processed"] % memory_check_every == 0:
                check_memory()
        yield from skipped

    def add(key, result):
        result.text_emb = result.text_emb.astype(cast, copy=False)
        result.whisper = result.whisper.astype(cast, copy=False)
        writer.add(result)

    def summary():
        if subset_ratio < 1.0:
            log.info("--subset-ratio %g (seed %d): %d of %d items kept", subset_ratio, seed, counts["kept"], counts["seen"])
        log.info("%s holds %d items (%d new)", output, len(writer.done), writer.written)

    engine.run("taste-extract", writer, results(), add, failures=corpus.failures, min_success=min_success, before_finish=summary)
    return writer
