"""Loading Spark-TTS-0.5B's tokenizer from its directory, checking everything Spark-TTS does not.

Layout (MODELS.md section 3):
  config.yaml                 sample_rate, ref_segment_duration, latent_hop_length, volume_normalize
  BiCodec/config.yaml         under `audio_tokenizer`: mel_params, encoder, quantizer, speaker_encoder (+ decoder parts)
  BiCodec/model.safetensors   the whole codec
  wav2vec2-large-xlsr-53/     a transformers Wav2Vec2Model directory

Spark-TTS loads the weights with strict=False and only prints mismatches; here the key set
must be exact. Checkpoint tensors only the decoder side uses are left out knowingly
(IGNORED_PREFIXES); any other unknown or missing key, or a wrong shape, is an error naming
the key and the file. Weight-normalised convolutions (legacy `weight_g`/`weight_v`, or
the parametrization's `original0`/`original1`) are folded into one weight, as Spark-TTS's
remove_weight_norm does.
"""

from pathlib import Path

import torch

from audiotok.bicodec.model import BiCodecConfig, BiCodecTokenizerModel
from audiotok.errors import AudiotokError

# Used only to decode tokens back to audio (or for training): never needed to tokenize.
IGNORED_PREFIXES = (
    "decoder.",  # the wave generator
    "prenet.",  # quantized latents + d-vector -> decoder input
    "postnet.",  # feature prediction head (training)
    "mel_transformer.",  # the MelSpectrogram's window and filter bank: rebuilt from mel_params
    "quantizer.out_project.",  # codeword -> latent (detokenize)
    "quantizer.cluster_size",  # codebook usage statistics (training)
    "speaker_encoder.project.",  # global tokens -> d-vector (detokenize)
    "speaker_encoder.quantizer.project_out.",  # FSQ codes -> latent (detokenize)
)
TOP_KEYS = ("sample_rate", "ref_segment_duration", "latent_hop_length", "volume_normalize")
SECTIONS = ("mel_params", "encoder", "quantizer", "speaker_encoder")
WEIGHT_NORM_PAIRS = ((".weight_g", ".weight_v"), (".parametrizations.weight.original0", ".parametrizations.weight.original1"))


def read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise AudiotokError(f"no {path}", "give the Spark-TTS model directory (config.yaml, BiCodec/, wav2vec2-large-xlsr-53/)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise AudiotokError(f"cannot read {path}: {first}") from None
    if not isinstance(data, dict):
        raise AudiotokError(f"{path} is not a YAML mapping")
    return data


def read_top_config(model_dir: Path) -> dict:
    path = model_dir / "config.yaml"
    config = read_yaml(path)
    missing = [key for key in TOP_KEYS if key not in config]
    if missing:
        raise AudiotokError(f"{path} has no {missing[0]}", f"Spark-TTS-0.5B's has {', '.join(TOP_KEYS)}")
    if config["sample_rate"] != 16000:
        raise AudiotokError(f"{path}: sample_rate {config['sample_rate']}; BiCodec's wav2vec2 works at 16000")
    return config


def read_bicodec_config(model_dir: Path) -> BiCodecConfig:
    path = model_dir / "BiCodec" / "config.yaml"
    data = read_yaml(path)
    if not isinstance(data.get("audio_tokenizer"), dict):
        raise AudiotokError(f"{path} has no audio_tokenizer section")
    section = data["audio_tokenizer"]
    for name in SECTIONS:
        if not isinstance(section.get(name), dict):
            raise AudiotokError(f"{path} has no audio_tokenizer.{name}")
    ratios = section["encoder"].get("sample_ratios", [1, 1])
    if any(r != 1 for r in ratios):
        raise AudiotokError(f"{path}: encoder sample_ratios {ratios}", "only ratio 1 (50 Hz semantic tokens, as Spark-TTS-0.5B) is supported")
    return BiCodecConfig(**{name: section[name] for name in SECTIONS})


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise AudiotokError(f"no {path}", "the BiCodec directory needs model.safetensors")
    try:
        return load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises several types for a damaged file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise AudiotokError(f"cannot read {path}: {first}") from None


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """weight = g * v / ||v|| (norm over all dims but the first), the way torch computes it."""
    folded = dict(state)
    for g_suffix, v_suffix in WEIGHT_NORM_PAIRS:
        for key in [k for k in state if k.endswith(g_suffix)]:
            base = key[: -len(g_suffix)]
            if base + v_suffix not in state:
                continue
            g, v = folded.pop(key), folded.pop(base + v_suffix)
            folded[base + ".weight"] = torch._weight_norm(v.float(), g.float(), 0)
    return folded


def check_and_select(state: dict[str, torch.Tensor], expected: dict[str, torch.Size], path: Path) -> dict[str, torch.Tensor]:
    """Exactly the expected tensors, with their shapes; ignored prefixes dropped; errors name one key."""
    used = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    missing = sorted(set(expected) - set(used))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise AudiotokError(f"{path} has no tensor {missing[0]}{more}", "is this Spark-TTS's BiCodec/model.safetensors?")
    unknown = sorted(set(used) - set(expected))
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise AudiotokError(f"{path} has an unknown tensor {unknown[0]}{more}", "a different BiCodec version or config: check BiCodec/config.yaml")
    for key, shape in expected.items():
        if used[key].shape != shape:
            raise AudiotokError(f"{path}: {key} has shape {list(used[key].shape)}, BiCodec/config.yaml gives {list(shape)}")
    return used


def load_bicodec(model_dir: Path) -> tuple[dict, BiCodecConfig, BiCodecTokenizerModel]:
    """(top config, BiCodec config, model in eval mode on the CPU in float32)."""
    top = read_top_config(model_dir)
    config = read_bicodec_config(model_dir)
    try:
        model = BiCodecTokenizerModel(config)
    except (KeyError, TypeError, ValueError) as err:
        raise AudiotokError(f"{model_dir / 'BiCodec' / 'config.yaml'}: cannot build the model: {type(err).__name__} {err}") from None
    path = model_dir / "BiCodec" / "model.safetensors"
    weights = check_and_select(fold_weight_norm(read_weights(path)), model.weight_keys(), path)
    result = model.load_state_dict(weights, strict=False)
    assert not result.unexpected_keys and all(k.startswith("mel.") for k in result.missing_keys), result
    return top, config, model.eval()
