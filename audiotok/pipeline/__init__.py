"""Corpus-scale pipelines: many worker processes turning tar shards into tokens.

shard_worker.py one worker process: its shards, its output file, its messages
shard_run.py    the parent: shard lists, processes and their restarts, progress, signals, the tally

The tokenizers come from audiotok.tokenizers, the per-process JSONL files are
audiotok.io.jsonl_writer's, the memory guard is audiotok.engine.memory.
"""
