"""The engine every table command runs on.

items: the item loop (shard selection, resume skips, sink writes, the `done N/M` tally,
--min-success, progress, commit on failure or signal). batching: the model loop (windows
with overlap and stitching, length-sorted batches within --batch-seconds, results in input
order). Commands give the engine a source, a sink and a function of a batch of waves.
"""
