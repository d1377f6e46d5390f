"""Streaming tokenization: audio arrives in pieces, units leave as soon as they are final.

`StreamingTokenizer` (engine.py) serves several sessions keyed by id; each keeps
a bounded buffer of samples and frames (buffers.py) and a feature stream
(featurizers.py) that reproduces the offline features frame by frame where the
features are local in time, and runs encoders on a sliding window elsewhere.
`ChunkedTokenizer` (chunked.py) serves any other tokenizer of the registry chunk by chunk.
"""
