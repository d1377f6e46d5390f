"""Tiny offline models and a tiny corpus for the TASTE tests.

Everything is built here, in temporary directories, and loaded through the real
loading code: a word-level tokenizer trained on a few sentences (the `tokenizers`
library, no downloads), a random Whisper with that tokenizer (so one directory
serves as `--whisper` and as `--text-model`), a random decoder LM, and a corpus of
speech-like recordings as a JSONL manifest and as a Kaldi data dir.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SENTENCES = (
    "the cat sat on the mat",
    "a quick brown fox jumps over the lazy dog",
    "speech tokens align with text tokens",
    "hello world this is a test",
    "we read the words aloud",
    "one two three four five six",
)

# key -> (seconds, sample rate, text); one recording at 22.05 kHz is resampled on read.
CORPUS = {
    "utt1": (0.5, 16000, "the cat sat on the mat"),
    "utt2": (1.2, 16000, "a quick brown fox"),
    "utt3": (3.0, 16000, "speech tokens align with text tokens"),
    "utt4": (2.1, 22050, "hello world"),
    "utt5": (0.8, 16000, "one two three"),
    "utt6": (1.7, 16000, "we read the words aloud"),
}


def speech_like(seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    """A voiced tone with a wandering pitch, amplitude modulation and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    voiced = np.sin(2 * np.pi * (120 + 40 * seed) * t * (1 + 0.1 * np.sin(2 * t)))
    return (0.3 * voiced * (1 + np.sin(5 * t)) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def save_tiny_tokenizer(directory: Path):
    """A word-level tokenizer (whitespace split, lower-case) with <unk>/<pad>/<s>/</s>; returns it."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["<pad>", "<unk>", "<s>", "</s>"]))
    # Special tokens around every text, as LLM tokenizers add them: what add_special_tokens=False leaves out.
    raw.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(directory)
    return tokenizer


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    """A random WhisperModel (d_model 32, 2 encoder layers, 80 mels) + feature extractor + tiny tokenizer."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    directory = tmp_path_factory.mktemp("tiny-whisper")
    tokenizer = save_tiny_tokenizer(directory)
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    WhisperModel(config).eval().save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_text_model_dir(tmp_path_factory) -> Path:
    """The tiny tokenizer + a random Granite (Llama-like) decoder LM (hidden 24, 1 layer).

    Granite, not Qwen2: transformers 5's AutoTokenizer rebuilds a Qwen2 directory's tokenizer
    as Qwen2's byte-level BPE from the vocabulary, which a word-level tokenizer is not.
    """
    import torch
    from transformers import GraniteConfig, GraniteForCausalLM

    directory = tmp_path_factory.mktemp("tiny-text-model")
    tokenizer = save_tiny_tokenizer(directory)
    torch.manual_seed(1)
    config = GraniteConfig(
        vocab_size=len(tokenizer),
        hidden_size=24,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    GraniteForCausalLM(config).eval().save_pretrained(directory)
    return directory


@dataclass
class TinyCorpus:
    root: Path
    manifest: Path  # manifest.jsonl: {"key", "audio_path", "text"} a line
    data_dir: Path  # Kaldi data dir: wav.scp + text, same keys and audio
    texts: dict  # key -> text
    rates: dict  # key -> sample rate of the file

    @property
    def keys(self) -> list[str]:
        return sorted(self.texts)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> TinyCorpus:
    """Six speech-like wavs (0.5-3 s, one at 22.05 kHz) as manifest.jsonl and as a Kaldi data dir."""
    import json

    root = tmp_path_factory.mktemp("tiny-corpus")
    (root / "wav").mkdir()
    data_dir = root / "data"
    data_dir.mkdir()
    lines, scp, text = [], [], []
    for seed, (key, (seconds, rate, words)) in enumerate(sorted(CORPUS.items())):
        path = root / "wav" / f"{key}.wav"
        sf.write(path, speech_like(seconds, seed, rate), rate, subtype="PCM_16")
        lines.append(json.dumps({"key": key, "audio_path": str(path), "text": words}))
        scp.append(f"{key} {path}\n")
        text.append(f"{key} {words}\n")
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    (data_dir / "wav.scp").write_text("".join(scp))
    (data_dir / "text").write_text("".join(text))
    return TinyCorpus(root, manifest, data_dir, {k: v[2] for k, v in CORPUS.items()}, {k: v[1] for k, v in CORPUS.items()})
