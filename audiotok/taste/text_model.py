"""The text side of TASTE: a tokenizer and the input embedding table of a local text model.

TASTE's aggregator takes text tokens as queries, so every utterance needs its
transcript's token ids and their embedding rows. Any transformers model with a
tokenizer works: a decoder LM (the CosyVoice LLM's, a Qwen) or a Whisper
directory, whose input embeddings are its decoder's `embed_tokens`.

Only the embedding table is kept. It is read straight from the safetensors
file (the parameter's name is found on a weightless copy of the model built on
the meta device), so an LLM's other weights are never loaded; checkpoints in
other formats are loaded whole once and everything but the table is freed.

Special tokens are left out by default: Whisper's tokenizer would otherwise put
<|startoftranscript|><|notimestamps|> before and <|endoftext|> after every
transcript, which are not words the speech aligns with.
"""

import logging
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError, ItemError
from audiotok.io.digests import weights_digest
from audiotok.units.encoders import model_directory, quiet_transformers

log = logging.getLogger(__name__)


def local_model_name(model: str) -> str:
    """What a meta file records for `model`: an absolute path for a local directory, else the name as given."""
    path = Path(model)
    return str(path.resolve()) if path.is_dir() else model


def _embedding_parameter(config) -> tuple[str, tuple[int, ...]]:
    """The name and shape of the input embedding weight, from a weightless (meta device) model."""
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(config)
    table = model.get_input_embeddings().weight
    name = next(name for name, parameter in model.named_parameters() if parameter is table)
    return name, tuple(table.shape)


def _read_from_safetensors(directory: Path, name: str, shape: tuple[int, ...]):
    """The tensor stored as `name` or `PREFIX.name` (a ForCausalLM / ForConditionalGeneration checkpoint); None when absent."""
    from safetensors import safe_open

    for path in sorted(directory.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for stored in handle.keys():
                if (stored == name or stored.endswith("." + name)) and tuple(handle.get_slice(stored).get_shape()) == shape:
                    return handle.get_tensor(stored)
    return None


def load_embedding_table(directory: Path) -> np.ndarray:
    """The input embedding table [vocab, dim] of the transformers model in `directory`, as float32."""
    import gc

    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(str(directory))
    except (OSError, ValueError) as err:
        raise AudiotokError(f"{directory} is not a transformers model directory: {str(err).splitlines()[0]}") from None
    try:
        name, shape = _embedding_parameter(config)
    except Exception as err:  # noqa: BLE001 - any model class transformers cannot build here
        raise AudiotokError(f"{directory}: cannot build a {config.model_type!r} model to find its input embeddings ({err})") from None
    table = _read_from_safetensors(directory, name, shape)
    if table is None:
        log.info("%s: no safetensors tensor %s; loading the whole model for its embeddings", directory, name)
        model = AutoModel.from_pretrained(str(directory))
        table = model.get_input_embeddings().weight.detach().clone()
        del model
        gc.collect()
    return table.float().numpy()


class TextEmbedder:
    """Text -> token ids -> embedding rows, for one local text model.

    `model` is a local directory (or a preset name / hub id, through
    model_directory) holding a tokenizer and weights; `digest`, when the caller has
    already hashed the same directory's weights, saves hashing them again.
    """

    def __init__(self, model: str, add_special_tokens: bool = False, digest: str | None = None):
        quiet_transformers()
        from transformers import AutoTokenizer

        self.model = local_model_name(model)
        self.directory = model_directory(model)
        self.add_special_tokens = add_special_tokens
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.directory))
        except (OSError, ValueError, TypeError) as err:
            raise AudiotokError(
                f"{self.directory} has no tokenizer transformers can load: {str(err).splitlines()[0]}",
                "give a directory holding tokenizer.json (or the model's tokenizer files)",
            ) from None
        self.table = load_embedding_table(self.directory)
        self.digest = digest or weights_digest(self.directory)
        self.dim = int(self.table.shape[1])

    def ids(self, text: str) -> np.ndarray:
        """Token ids (int64) of `text`; ItemError for text that gives none or ids past the table."""
        if not text.strip():
            raise ItemError("empty text")
        ids = np.asarray(self.tokenizer(text, add_special_tokens=self.add_special_tokens)["input_ids"], dtype=np.int64)
        if len(ids) == 0:
            raise ItemError(f"the text {text!r} gives no tokens")
        if ids.max() >= len(self.table):
            raise ItemError(f"token id {int(ids.max())} is past the embedding table ({len(self.table)} rows)")
        return ids

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """Embedding rows [len(ids), dim], float32."""
        return self.table[ids]

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = self.ids(text)
        return ids, self.embed(ids)
