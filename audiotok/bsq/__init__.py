"""Audio BSQ-ViT: a spectrogram tokenizer trained from scratch (seed 001).

A Transformer encoder turns time x mel patches of a log-mel spectrogram into
latents; Binary Spherical Quantization keeps only their signs (one token of
`embed_dim` bits per patch); a mirrored Transformer decoder rebuilds the mel.
Modules: config (YAML schema), mel (front end and Griffin-Lim), quantizer,
model, tokens (bits <-> ids, utterances of any length), data, train, evaluate,
and seed (the seed's constructor arguments and YAML keys in audiotok's terms).
"""


def __getattr__(name: str):
    """`from audiotok.bsq import AudioBSQModel`, as the seed imports it from its package, without
    importing torch for the other modules of this package."""
    if name == "AudioBSQModel":
        from audiotok.bsq.model import AudioBSQModel

        return AudioBSQModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
