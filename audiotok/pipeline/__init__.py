"""Corpus-scale pipelines: many worker processes turning tar shards into tokens.

shard_worker.py one worker process: its shards, its output file, its messages
shard_run.py    the parent: shard lists (a job array task's range), processes and their restarts, progress, signals, the tally
shard_check.py  check-shard-tokens: every sample of the shards exactly once in the outputs, and their merge

The tokenizers come from audiotok.tokenizers, the per-process JSONL files are
audiotok.io.jsonl_writer's, the memory guard is audiotok.engine.memory.
"""
