"""Text-aligned tokens from a trained TASTE model: one group of RVQ codes per text token.

Only the aggregator and the RVQ run (the decoder is not needed, nor loaded). The
features come either from a feature store (taste-extract's output) or from audio
and transcripts, through the same TasteExtractor the store's meta describes (the
Whisper and text models recorded in the model directory), so both paths give the
same codes. Items are encoded one at a time, as in the store path: no padding, the
same numbers.
"""

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiotok.errors import AudiotokError

log = logging.getLogger("audiotok")

# What must agree between a store and the features a model was trained on.
FEATURE_FIELDS = ("whisper_digest", "layer", "whisper_dim", "text_digest", "text_dim", "add_special_tokens")


class TasteEncoder(nn.Module):
    def __init__(self, model_config: dict):
        super().__init__()
        from audiotok.taste.model import Aggregator
        from audiotok.taste.rvq import ResidualVQ

        m, r = model_config["model"], model_config["rvq"]
        self.aggregator = Aggregator(
            model_config["text_dim"], model_config["whisper_dim"], m["dim"], m["layers"], m["heads"], m["ffn_ratio"], m["dropout"], m["max_text_tokens"]
        )
        self.rvq = ResidualVQ(m["dim"], r["codebooks"], r["size"], r["commitment"], r["codebook_weight"], r["ema"], r["decay"], r["dead_code_threshold"])

    @torch.no_grad()
    def codes(self, text_emb: np.ndarray, whisper: np.ndarray) -> np.ndarray:
        """One utterance: [N, Dt], [T, Dw] -> codes [N, C] (int64)."""
        device = next(self.parameters()).device
        text = torch.from_numpy(np.asarray(text_emb, dtype=np.float32)).unsqueeze(0).to(device)
        frames = torch.from_numpy(np.asarray(whisper, dtype=np.float32)).unsqueeze(0).to(device)
        ones = torch.ones
        speech = self.aggregator(text, ones(text.shape[:2], dtype=torch.bool, device=device), frames, ones(frames.shape[:2], dtype=torch.bool, device=device))
        return self.rvq.encode(speech)[0].cpu().numpy()


def load_encoder(directory: str | Path, device: str = "cpu") -> tuple[TasteEncoder, dict]:
    """-> (encoder in eval mode, the model directory's config.json)."""
    from safetensors.torch import load_file

    from audiotok.taste.train import FORMAT
    from audiotok.training import read_model_dir

    meta, weights = read_model_dir(directory, FORMAT, "TASTE", "taste-train")
    config_path = weights.with_name("config.json")
    if not meta["model"]["rvq"]["enabled"]:
        raise AudiotokError(f"{directory} was trained without RVQ (rvq.enabled: false), so it has no text-aligned tokens", "train with rvq.enabled: true")
    encoder = TasteEncoder(meta["model"])
    state = load_file(str(weights))
    wanted = {k: v for k, v in state.items() if k.startswith(("aggregator.", "rvq."))}
    try:
        encoder.load_state_dict(wanted)
    except RuntimeError as err:
        raise AudiotokError(f"{weights} does not match {config_path}: {str(err).splitlines()[0]}") from None
    return encoder.eval().to(torch.device(device)), meta


def check_store_meta(store_meta: dict, trained_meta: dict, store: str) -> None:
    differ = [f for f in FEATURE_FIELDS if store_meta.get(f) != trained_meta.get(f)]
    if differ:
        raise AudiotokError(
            f"{store} holds features made otherwise than the model's ({', '.join(differ)} differ)",
            "make the features with the Whisper and text models the model was trained with",
        )


def token_strings(tokenizer, ids) -> list[str] | None:
    if tokenizer is None:
        return None
    return [str(t) for t in tokenizer.convert_ids_to_tokens([int(i) for i in ids])]


def record(key: str, text: str, ids, codes: np.ndarray, tokenizer) -> str:
    fields = {"key": key, "text": text, "text_ids": [int(i) for i in ids]}
    strings = token_strings(tokenizer, ids)
    if strings is not None:
        fields["tokens"] = strings
    fields["codes"] = codes.tolist()
    return json.dumps(fields, ensure_ascii=False)


def load_tokenizer(text_model: str | None):
    """The text model's tokenizer, for token strings; None (strings left out) when it is not here."""
    if not text_model:
        return None
    try:
        from transformers import AutoTokenizer

        from audiotok.units.encoders import model_directory, quiet_transformers

        quiet_transformers()
        return AutoTokenizer.from_pretrained(str(model_directory(text_model)))
    except Exception as err:  # noqa: BLE001 - any reason the tokenizer cannot load: strings are optional
        log.warning("no token strings: cannot load the tokenizer of %s (%s)", text_model, str(err).splitlines()[0])
        return None


def stored_precision(array: np.ndarray, store_dtype: str) -> np.ndarray:
    """Features as a store of `store_dtype` would hold them (what the model was trained on)."""
    return array.astype(np.float16).astype(np.float32) if store_dtype == "float16" else array.astype(np.float32)
