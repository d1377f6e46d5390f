"""The CosyVoice S3 family (`s3:MODEL[,version=V][,rate=R][,long_audio=M][,resampler=R][,attn_ln_eps=E]`):
the official ONNX file, S3Tokenizer weights or a preset, as `s3-extract --model --version --rate
--long-audio --resampler --attn-ln-eps` (field s3_tokens)."""

import os

import numpy as np

from audiotok.errors import AudiotokError, UsageError
from audiotok.tokenizers import Family, WaveItem


def open_backend(options, device: str):
    """The ONNX or PyTorch backend S3Options name, on `device` (a resolved device string):
    the one opener of S3 models, for s3-extract and the s3: tokenizer."""
    from audiotok.models.store import resolve_model_path
    from audiotok.units.s3 import S3Torch, load_torch_model
    from audiotok.units.s3_onnx import S3Onnx

    options.check()
    model = resolve_model_path(options.model)
    if model.endswith(".onnx"):
        if options.attn_ln_eps is not None:
            raise UsageError("the attention LayerNorm epsilon is an option of PyTorch v2 weights", "an ONNX file carries its own")
        return S3Onnx(model, device, options.version, options.rate)
    backend = S3Torch(load_torch_model(model, options.version, options.rate, attn_ln_eps=options.attn_ln_eps), device)
    if options.attn_ln_eps is not None and backend.config.version != "v2":
        raise UsageError("the attention LayerNorm epsilon is an option of S3 v2 weights", f"{model} holds v1 weights")
    return backend


class S3Tokenizer:
    """CosyVoice S3 tokens: the official ONNX file or S3Tokenizer PyTorch weights (as `s3-extract`)."""

    fields = ("s3_tokens",)

    def __init__(self, target: str, device: str, dtype: str = "float32"):
        from audiotok.device import resolve
        from audiotok.units.s3 import SAMPLE_RATE

        self.options = parse_s3_target(target)
        self.backend = open_backend(self.options, resolve(device))
        self.sample_rate = SAMPLE_RATE
        self.frame_rate = self.backend.rate
        self.resampler = self.options.resampler  # how the caller brings waves to sample_rate
        self.batch_seconds = 60.0

    def __call__(self, waves: list[np.ndarray]) -> list:
        from audiotok.units.s3 import s3_tokens

        items = [WaveItem(str(i), wave, self.sample_rate) for i, wave in enumerate(waves)]
        block = max(1, len(items))
        results = s3_tokens(items, self.backend, batch_seconds=self.batch_seconds, block=block, long_audio=self.options.long_audio)
        return [r.tokens if isinstance(r.tokens, Exception) else {"s3_tokens": r.tokens.tolist()} for r in results]


S3_SPEC_OPTIONS = ("version", "rate", "long_audio", "resampler", "attn_ln_eps")


def parse_s3_target(target: str):
    """`MODEL[,version=v1][,rate=25][,long_audio=MODE][,resampler=R][,attn_ln_eps=E]` -> S3Options."""
    from audiotok.units.s3 import S3Options

    model, values = target, {}
    while "," in model:
        head, _, option = model.rpartition(",")
        name, equals, value = option.partition("=")
        if not equals or name.replace("-", "_") not in S3_SPEC_OPTIONS:
            break  # a comma that belongs to the path
        values[name.replace("-", "_")] = value
        model = head
    options = S3Options(model, **{k: v for k, v in values.items() if k in ("version", "long_audio", "resampler")})
    try:
        if "rate" in values:
            options.rate = int(values["rate"])
        if "attn_ln_eps" in values:
            options.attn_ln_eps = float(values["attn_ln_eps"])
    except ValueError:
        raise UsageError(f"--tokenizer s3:{target}: rate and attn_ln_eps take numbers") from None
    try:
        options.check()
    except UsageError as err:
        raise UsageError(f"--tokenizer s3:{target}: {err.message}", err.hint) from None
    return options


def check(target: str) -> None:
    from audiotok.models.registry import find_preset

    model = parse_s3_target(target).model
    if not os.path.exists(model) and find_preset(model) is None:
        hint = "give speech_tokenizer_*.onnx, S3Tokenizer weights or a preset name; options: s3:MODEL,version=v1,rate=25,long_audio=step-audio"
        raise AudiotokError(f"no such S3 tokenizer model: {model}", hint)


FAMILY = Family("s3", check, S3Tokenizer, "s3:MODEL[,version=V][,rate=R][,long_audio=M], CosyVoice S3 .onnx, S3Tokenizer weights or a preset (field s3_tokens)")
