"""Audio BSQ-ViT: a spectrogram tokenizer trained from scratch (seed 001).

A Transformer encoder turns time x mel patches of a log-mel spectrogram into
latents; Binary Spherical Quantization keeps only their signs (one token of
`embed_dim` bits per patch); a mirrored Transformer decoder rebuilds the mel.
Modules: config (YAML schema), mel (front end and Griffin-Lim), quantizer,
model, tokens (bits <-> ids, utterances of any length), data, train, evaluate.
"""
