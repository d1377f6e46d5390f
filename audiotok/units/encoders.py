"""Neural feature backends: transformers speech encoders (HuBERT, mHuBERT, wav2vec2,
XLS-R, WavLM, data2vec, Whisper's encoder) at any layer, a generic ONNX encoder, and
FunASR's streaming Paraformer encoder (Step-Audio's vq02 features, units/paraformer.py).

Every backend takes a list of equal-rate waveforms and returns one float32
matrix [frames, dim] per waveform. `padding_safe` says whether waveforms of
different lengths may share a batch: group-norm feature extractors were
trained without padding and change their output when padded (measured: up
to 1.47 on values of 5), so those batch only waveforms of equal length.
`batching` is off for fp32 on the CPU: there a batch changes the last bits
of the output (5e-6) and is no faster on few cores, so fp32 stays exactly
equal to one-at-a-time extraction; bf16/fp16 and CUDA batch.

With --dtype bfloat16/float16, a precision layout (units/precision.py) says
which parts of a wav2vec2-family encoder stay in float32.
"""

import json
import logging
import os
from pathlib import Path

import numpy as np

from audiotok.device import resolve
from audiotok.errors import AudiotokError, UsageError
from audiotok.io.digests import file_digest, weights_digest
from audiotok.units.features import Recipe, WhisperLogMel
from audiotok.units.precision import PRECISION_LAYOUTS, apply_precision_layout

log = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")


def model_directory(model: str) -> Path:
    """A local model directory, or a hub id fetched where a hub is reachable; one clear error otherwise."""
    from audiotok.models.store import resolve_model

    resolved, _ = resolve_model(model)  # a preset name becomes its local copy
    path = resolved or Path(model)
    if path.is_dir():
        return path
    if path.exists():
        raise AudiotokError(f"{model} is a file, not a model directory", "give the directory holding config.json and the weights")
    if os.environ.get("HF_HUB_OFFLINE") or os.sep in model.strip("/") and model.count("/") > 1:
        raise AudiotokError(f"no model directory {model}", "give a local directory holding config.json and the weights")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model))
    except Exception as err:  # noqa: BLE001 - any hub failure means: not available here
        raise AudiotokError(
            f"model {model!r} is not a local directory and could not be fetched from the Hugging Face hub ({type(err).__name__})",
            "download it where the hub is reachable and pass the local directory",
        ) from None


class TransformersSSLEncoder:
    """wav2vec2-family encoders (HuBERT, wav2vec2, XLS-R, WavLM, data2vec-audio): hidden_states[layer]."""

    hop = 320  # total stride of the convolutional front end

    def __init__(self, directory: Path, config, layer: int, device: str, dtype: str, layout: str = "uniform"):
        import torch
        from transformers import AutoModel

        self.device, self.torch = device, torch
        layers = config.num_hidden_layers
        if not 0 <= layer <= layers:
            raise AudiotokError(f"--layer {layer} does not exist: {directory} has hidden states 0..{layers}", f"choose --layer within 0..{layers}")
        preprocessor = {}
        if (directory / "preprocessor_config.json").is_file():
            preprocessor = json.loads((directory / "preprocessor_config.json").read_text())
        # Read each setting from its own file; never infer one from another (MODELS.md).
        self.do_normalize = bool(preprocessor.get("do_normalize", True))
        self.padding_safe = getattr(config, "feat_extract_norm", "group") == "layer"
        self.sample_rate = int(preprocessor.get("sampling_rate", 16000))
        stable = bool(getattr(config, "do_stable_layer_norm", False))
        low = getattr(torch, dtype)
        # The weights load in --dtype unless a layout keeps a part of them in float32.
        model = AutoModel.from_pretrained(str(directory), dtype=low if layout == "uniform" else torch.float32)
        # Layers past the one we read cost time for nothing. Pre-LN ("stable") encoders apply
        # their final LayerNorm to the last hidden state only, so keep one layer more there.
        keep = min(layers, max(1, layer + 1 if stable else layer))  # transformers records hidden_states[0] with the first layer
        model.encoder.layers = model.encoder.layers[:keep]
        model.config.num_hidden_layers = keep
        # The model's input dtype: what its first part runs in.
        self.dtype = apply_precision_layout(model, layout, low, layer)
        self.low_dtype, self.autocast = low, layout == "autocast"
        self.model = model.eval().to(device)
        self.batching = not (device == "cpu" and dtype == "float32")
        self.layer = layer
        self.dim = config.hidden_size
        self.recipe = Recipe(
            "hf",
            self.sample_rate,
            self.sample_rate / self.hop,
            self.dim,
            layer=layer,
            options={"do_normalize": self.do_normalize, "model_type": config.model_type},
        )

    def output_frames(self, samples: int) -> int:
        return int(self.model._get_feat_extract_output_lengths(self.torch.tensor([samples]))[0])

    def __call__(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        if self.do_normalize:
            waves = [(w - w.mean()) / np.sqrt(w.var() + 1e-7) for w in waves]
        lengths = [len(w) for w in waves]
        if not self.padding_safe and len(set(lengths)) > 1:
            raise ValueError("group-norm encoders take batches of equal length only")
        batch = np.zeros((len(waves), max(lengths)), np.float32)
        for row, wave in zip(batch, waves, strict=True):
            row[: len(wave)] = wave
        inputs = torch.from_numpy(batch).to(self.device, self.dtype)
        mask = None
        if self.padding_safe:
            mask = (torch.arange(batch.shape[1])[None, :] < torch.tensor(lengths)[:, None]).long().to(self.device)
        device_type = torch.device(self.device).type
        with torch.inference_mode(), torch.autocast(device_type, self.low_dtype, enabled=self.autocast):
            hidden = self.model(inputs, attention_mask=mask, output_hidden_states=True).hidden_states[self.layer]
        hidden = hidden.float().cpu().numpy()
        return [hidden[i, : self.output_frames(n)] for i, n in enumerate(lengths)]


class WhisperEncoder:
    """transformers WhisperModel's encoder: 30 s log-mel windows in, 50 Hz hidden states out."""

    hop = 320
    window_samples = 480000

    def __init__(self, directory: Path, config, layer: int, device: str, dtype: str):
        import torch
        from transformers import WhisperModel

        self.device, self.torch = device, torch
        if not 0 <= layer <= config.encoder_layers:
            raise AudiotokError(
                f"--layer {layer} does not exist: {directory} has encoder hidden states 0..{config.encoder_layers}",
                f"choose --layer within 0..{config.encoder_layers}",
            )
        preprocessor = {}
        if (directory / "preprocessor_config.json").is_file():
            preprocessor = json.loads((directory / "preprocessor_config.json").read_text())
        if preprocessor.get("feature_size", config.num_mel_bins) != config.num_mel_bins:
            raise AudiotokError(f"{directory}: preprocessor feature_size {preprocessor.get('feature_size')} != num_mel_bins {config.num_mel_bins}")
        self.mel = WhisperLogMel(config.num_mel_bins)
        self.sample_rate = 16000
        self.padding_safe = True  # every window is padded to 30 s anyway, as Whisper expects
        self.dtype = getattr(torch, dtype)
        self.model = WhisperModel.from_pretrained(str(directory), dtype=self.dtype).encoder.eval().to(device)
        self.batching = not (device == "cpu" and dtype == "float32")
        self.layer = layer
        self.dim = config.d_model
        self.recipe = Recipe("whisper", 16000, 50.0, self.dim, layer=layer, options={"num_mels": config.num_mel_bins})

    @staticmethod
    def output_frames(samples: int) -> int:
        return (samples // 160 - 1) // 2 + 1

    def __call__(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        if any(len(w) > self.window_samples for w in waves):
            raise ValueError("Whisper windows are at most 30 s")
        mels = []
        for wave in waves:
            padded = np.zeros(self.window_samples, np.float32)
            padded[: len(wave)] = wave
            # The (max - 8) floor is taken over the padded 30 s window, as Whisper's extractor does.
            mels.append(self.mel.log_mel(torch.from_numpy(padded)))
        features = torch.stack(mels).to(self.device, self.dtype)
        with torch.inference_mode():
            hidden = self.model(features, output_hidden_states=True).hidden_states[self.layer]
        hidden = hidden.float().cpu().numpy()
        return [hidden[i, : self.output_frames(len(w))] for i, w in enumerate(waves)]


class OnnxEncoder:
    """Any ONNX encoder with input 0 = waveform [batch, samples] (input 1, when present, = lengths)."""

    def __init__(self, path: Path, device: str, output: str | None = None):
        from audiotok.units.onnx_session import make_session

        self.session = make_session(path, device)
        self.inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if output is not None and output not in outputs:
            raise AudiotokError(f"{path} has no output {output!r}", f"outputs: {', '.join(outputs)}")
        self.output = output or outputs[0]
        self.sample_rate = 16000
        self.padding_safe = False  # nothing says the model ignores padding
        self.batching = True
        probe = self._run([np.zeros(self.sample_rate * 10, np.float32)])[0]
        self.dim = int(probe.shape[1])
        self.frame_rate = float(round(probe.shape[0] / 10))
        self.hop = int(round(self.sample_rate / self.frame_rate))
        self.recipe = Recipe("onnx", self.sample_rate, self.frame_rate, self.dim, options={"output": self.output})

    def _run(self, waves):
        lengths = [len(w) for w in waves]
        feeds = {self.inputs[0].name: np.stack(waves).astype(np.float32)}
        if len(self.inputs) > 1:
            kind = np.int32 if "int32" in self.inputs[1].type else np.int64
            feeds[self.inputs[1].name] = np.array(lengths, dtype=kind)
        out = self.session.run([self.output], feeds)[0]
        if out.ndim != 3:
            raise AudiotokError(f"ONNX output {self.output!r} has shape {out.shape}; expected [batch, frames, dim]")
        return list(out.astype(np.float32))

    def __call__(self, waves):
        if len({len(w) for w in waves}) > 1:
            raise ValueError("ONNX encoders take batches of equal length only")
        return self._run(waves)


# transformers model types -> the encoder class that runs them, one line each.
SSL_TYPES = ("hubert", "wav2vec2", "wavlm", "data2vec-audio", "wav2vec2-conformer", "unispeech", "unispeech-sat", "sew", "sew-d")
ENCODER_TYPES = {"whisper": WhisperEncoder, **dict.fromkeys(SSL_TYPES, TransformersSSLEncoder)}


def quiet_transformers() -> None:
    """Keep transformers' progress bars and advice off stderr: logs there are ours."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def load_encoder(model: str, layer: int | None, device: str, dtype: str, onnx_output: str | None = None, layout: str = "uniform"):
    """The backend for `--model` (a directory or hub id; a .onnx file), with its recipe's model fields filled in.

    layout: the precision layout of a wav2vec2-family encoder under a low --dtype (PRECISION_LAYOUTS).
    """
    if dtype not in DTYPES:
        raise AudiotokError(f"unknown --dtype {dtype!r}", f"choose one of {', '.join(DTYPES)}")
    if layout not in PRECISION_LAYOUTS:
        raise UsageError(f"unknown --precision-layout {layout!r}", f"choose one of {', '.join(PRECISION_LAYOUTS)}")
    if layout != "uniform" and dtype == "float32":
        raise UsageError(f"--precision-layout {layout} applies to --dtype bfloat16 or float16", "add --dtype bfloat16, or leave the layout out")
    if layout != "uniform" and model.endswith(".onnx"):
        raise UsageError(f"--precision-layout {layout} applies to wav2vec2-family encoders, not to ONNX models", "leave the layout out")
    device = resolve(device)
    if model.endswith(".onnx"):
        path = Path(model)
        if not path.is_file():
            raise AudiotokError(f"no such ONNX model: {model}", "give the path of an .onnx encoder file")
        encoder = OnnxEncoder(path, device, onnx_output)
        encoder.recipe.model, encoder.recipe.model_hash = path.name, file_digest(path)[:16]
        return encoder
    directory = model_directory(model)
    from audiotok.units.funasr_dir import looks_like_funasr

    if looks_like_funasr(directory):
        if layout != "uniform":
            raise UsageError(f"--precision-layout {layout} applies to wav2vec2-family encoders, not to a Paraformer", "leave the layout out")
        return load_paraformer_backend(directory, model, layer, device, dtype)
    quiet_transformers()
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(directory))
    except (OSError, ValueError) as err:
        raise AudiotokError(f"{directory} is not a transformers model directory: {str(err).splitlines()[0]}") from None
    if layer is None:
        from audiotok.models.registry import find_preset

        preset = find_preset(model)
        layer = preset.layer if preset is not None else None
    if layer is None:
        raise AudiotokError("--layer is needed for a transformers encoder", "e.g. --layer 6 for HuBERT-base units")
    if config.model_type not in ENCODER_TYPES:
        raise AudiotokError(f"{directory}: model type {config.model_type!r} is not a speech encoder audiotok knows", f"known: {', '.join(ENCODER_TYPES)}")
    if layout != "uniform" and ENCODER_TYPES[config.model_type] is not TransformersSSLEncoder:
        raise UsageError(f"--precision-layout {layout} applies to wav2vec2-family encoders, not to {config.model_type}", "leave the layout out")
    extra = {"layout": layout} if layout != "uniform" else {}
    encoder = ENCODER_TYPES[config.model_type](directory, config, layer, device, dtype, **extra)
    encoder.recipe.model = str(model)
    encoder.recipe.model_hash = weights_digest(directory)
    return encoder


def load_paraformer_backend(directory: Path, model: str, layer: int | None, device: str, dtype: str):
    """A FunASR streaming Paraformer directory: Step-Audio's vq02 encoder (enc_out of the last block)."""
    from audiotok.units.funasr_dir import load_paraformer
    from audiotok.units.paraformer import ParaformerBackend, chunking_options

    paraformer, _ = load_paraformer(directory, device, dtype)
    blocks = paraformer.encoder.config.num_blocks
    if layer is not None and layer != blocks:
        raise AudiotokError(f"--layer {layer}: a Paraformer gives the output of its last block only ({blocks})", "leave --layer out")
    options = {**chunking_options(paraformer.chunking), "frontend": "fbank80-lfr7/6-cmvn"}
    return ParaformerBackend(paraformer, device, dtype, str(model), weights_digest(directory), options)
