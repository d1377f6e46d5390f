"""Corpus-scale pipelines: many worker processes turning tar shards into tokens.

tokenizers.py   the ShardTokenizer plug-in interface and the SPEC registry
jsonl_store.py  the per-process JSONL outputs: lines, torn tails, finished keys
memory.py       the memory guard's measurement
shard_worker.py one worker process: its shards, its output file, its messages
shard_run.py    the parent: shard lists, processes and their restarts, progress, signals, the tally
"""
