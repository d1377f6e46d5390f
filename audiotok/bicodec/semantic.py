"""The wav2vec2 feature mix BiCodec encodes: mean of hidden states 11, 14 and 16 of
wav2vec2-large-xlsr-53 (transformers `Wav2Vec2Model`), 50 frames a second.

hidden_states[k] is the output of transformer layer k (MODELS.md section 4), so layers
past the highest one used are dropped. In a pre-LN ("stable layer norm") encoder the
final LayerNorm is applied only to the last entry; with the layers dropped that entry
would be layer 16 normalised, so the final LayerNorm is replaced by identity: the
kept layers give exactly the full model's hidden states.

Padding: a layer-norm feature extractor ("feat_extract_norm": "layer") sees each frame's
own samples only, so a padded batch with an attention mask gives each recording its own
features. A group-norm extractor normalises over time, padding included: such models run
one recording at a time.
"""

import json
from pathlib import Path

import numpy as np
import torch

from audiotok.errors import AudiotokError

HIDDEN_LAYERS = (11, 14, 16)
SAMPLE_RATE = 16000


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AudiotokError(f"no {path.name} in {path.parent}", "the BiCodec model directory needs wav2vec2-large-xlsr-53/ as Spark-TTS ships it") from None
    except (OSError, ValueError) as err:
        raise AudiotokError(f"cannot read {path}: {err}") from None


def frame_count(samples: int, kernels=(10, 3, 3, 3, 3, 2, 2), strides=(5, 2, 2, 2, 2, 2, 2)) -> int:
    """wav2vec2 frames for `samples`: floor((L - k) / s) + 1 per convolution (0 when too short)."""
    for kernel, stride in zip(kernels, strides, strict=True):
        if samples < kernel:
            return 0
        samples = (samples - kernel) // stride + 1
    return samples


class SemanticFeatures:
    """`__call__(waves) -> list of [frames, hidden] tensors` (on the model's device and dtype)."""

    def __init__(self, directory: Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
        from transformers import Wav2Vec2Model
        from transformers.utils import logging as hf_logging

        config = _read_json(directory / "config.json")
        preprocessor = _read_json(directory / "preprocessor_config.json")
        layers = config.get("num_hidden_layers", 0)
        if layers < max(HIDDEN_LAYERS):
            raise AudiotokError(f"{directory / 'config.json'}: {layers} hidden layers, BiCodec mixes layers {', '.join(map(str, HIDDEN_LAYERS))}")
        if preprocessor.get("sampling_rate", SAMPLE_RATE) != SAMPLE_RATE:
            raise AudiotokError(f"{directory / 'preprocessor_config.json'}: sampling_rate {preprocessor['sampling_rate']}, BiCodec's wav2vec2 takes 16000")
        self.do_normalize = bool(preprocessor.get("do_normalize", True))
        self.padding_safe = config.get("feat_extract_norm", "group") == "layer"
        self.kernels, self.strides = tuple(config.get("conv_kernel", (10, 3, 3, 3, 3, 2, 2))), tuple(config.get("conv_stride", (5, 2, 2, 2, 2, 2, 2)))
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # unused pretraining heads in the checkpoint are expected
        hf_logging.disable_progress_bar()
        try:
            # facebook's file is a Wav2Vec2ForPreTraining pickle (`wav2vec2.` prefix, legacy weight norm):
            # transformers maps it; what it could not fill would be left random, so it is refused.
            model, info = Wav2Vec2Model.from_pretrained(str(directory), output_loading_info=True)
        except Exception as err:  # noqa: BLE001 - transformers raises many types for a bad directory
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise AudiotokError(f"cannot load wav2vec2 from {directory}: {first}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        missing = sorted(info.get("missing_keys", []))
        if missing:
            raise AudiotokError(f"{directory}: the wav2vec2 weights have no {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        model.encoder.layers = model.encoder.layers[: max(HIDDEN_LAYERS)]
        if config.get("do_stable_layer_norm", False):
            model.encoder.layer_norm = torch.nn.Identity()
        model.config.num_hidden_layers = max(HIDDEN_LAYERS)
        self.model = model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = device, dtype
        self.hidden_size = model.config.hidden_size

    def frames(self, samples: int) -> int:
        return frame_count(samples, self.kernels, self.strides)

    def normalize(self, wave: np.ndarray) -> np.ndarray:
        """transformers' zero_mean_unit_var_norm on one unpadded recording (float32)."""
        wave = np.asarray(wave, dtype=np.float32)
        if not self.do_normalize:
            return wave
        return (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)

    def __call__(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        if not self.padding_safe and len({len(w) for w in waves}) > 1:
            return [self([wave])[0] for wave in waves]
        lengths = [len(w) for w in waves]
        batch = np.zeros((len(waves), max(lengths)), np.float32)
        mask = np.zeros(batch.shape, np.int64)
        for row, wave in enumerate(waves):
            batch[row, : len(wave)] = self.normalize(wave)
            mask[row, : len(wave)] = 1
        inputs = torch.from_numpy(batch).to(self.device, self.dtype)
        # One recording, or all of one length: no mask, as Spark-TTS calls it.
        attention = None if len(set(lengths)) == 1 else torch.from_numpy(mask).to(self.device)
        with torch.inference_mode():
            hidden = self.model(inputs, attention_mask=attention, output_hidden_states=True).hidden_states
            mixed = (hidden[HIDDEN_LAYERS[0]] + hidden[HIDDEN_LAYERS[1]] + hidden[HIDDEN_LAYERS[2]]) / 3
        return [mixed[row, : self.frames(n)] for row, n in enumerate(lengths)]
