"""Precision layouts: which parts of a wav2vec2-family encoder stay in float32 under
--dtype bfloat16/float16 (extract-feats --precision-layout).

bench/bench_extract.py measures each on a HuBERT-base-size model against the
float32 loop cut at the layer (speed, and identical units at K=500); `uniform`,
everything in the low precision, is the fastest, and its units were > 99.9%
identical there, so it is the default. The others trade speed for fewer
rounding steps: a trained model whose units drift in bf16 can keep its
convolutional front end (fp32-cnn) or its last layer (fp32-last) in float32.
No numpy or torch at module level: the CLI reads the names.
"""

from audiotok.errors import UsageError

# Which parts of a wav2vec2-family encoder stay in float32 under --dtype bfloat16/float16.
PRECISION_LAYOUTS = {
    "uniform": "every part in --dtype (the fastest)",
    "fp32-cnn": "the convolutional feature encoder and its projection in float32",
    "fp32-last": "the layer whose output is read, and any after it, in float32",
    "autocast": "weights in float32; products and convolutions in --dtype, norms, softmax and the residual stream in float32 (torch.autocast)",
}


def apply_precision_layout(model, layout: str, low, layer: int):
    """Put a wav2vec2-family model (loaded in `low` for uniform, else in float32) in its layout.

    Returns the dtype its input takes. Parts in float32 take their input cast up; the
    transformer after a float32 front end takes its input cast down.
    """
    import torch

    if layout == "uniform":
        return low
    if layout == "autocast":  # the weights stay float32; torch.autocast picks each op's precision
        return torch.float32
    if not all(hasattr(model, part) for part in ("feature_extractor", "feature_projection", "encoder")) or not hasattr(model.encoder, "layers"):
        raise UsageError(f"--precision-layout {layout}: {type(model).__name__} has no wav2vec2-style front end and layers", "use uniform or autocast")
    if layout == "fp32-cnn":
        model.to(low)
        model.feature_extractor.float()
        model.feature_projection.float()
        model.feature_projection.register_forward_hook(lambda module, args, output: cast_floats(output, low))
        return torch.float32
    if layout == "fp32-last":
        model.to(low)
        # hidden_states[layer] is the output of layers[layer - 1] (of the encoder's input stage at layer 0);
        # a pre-LN encoder's last state also passes its final LayerNorm.
        start = model.encoder if layer == 0 else model.encoder.layers[layer - 1]
        parts = [model.encoder] if layer == 0 else list(model.encoder.layers[layer - 1 :])
        if getattr(model.config, "do_stable_layer_norm", False):
            parts.append(model.encoder.layer_norm)
        for part in parts:
            part.float()
        start.register_forward_pre_hook(lambda module, args, kwargs: cast_floats((args, kwargs), torch.float32), with_kwargs=True)
        return low
    raise UsageError(f"unknown precision layout {layout!r}", f"choose one of {', '.join(PRECISION_LAYOUTS)}")


def cast_floats(value, dtype):
    """value with every floating-point tensor in it (through tuples, lists, dicts) cast to dtype."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, tuple | list):
        return type(value)(cast_floats(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: cast_floats(v, dtype) for k, v in value.items()}
    return value
