"""Spark-TTS's BiCodec tokenizer (global speaker tokens + 50 Hz semantic tokens) in PyTorch.

Only the tokenizer side: the wav2vec2 feature mix, the Vocos feature encoder with its
factorized VQ (semantic tokens), and the ECAPA-TDNN speaker encoder with its Perceiver
resampler and residual FSQ (global tokens). Padded batches carry lengths, so a batch
gives each recording the tokens it gets alone. See MODELS.md section 3.
"""
