#!/usr/bin/env bash
# How the steps run their jobs (utils/launch.sh --help). On a Slurm cluster use e.g.
#   export cmd="utils/launch.sh --backend slurm --max-jobs 50 --slurm-opts=--partition=cpu --slurm-opts=--mem=4G --slurm-opts=--time=120"
# ($cmd is split on blanks: give --slurm-opts one option at a time.)
# (and for GPU feature extraction add --gres=gpu:1 to --slurm-opts).
# After a failed or killed run, add --rerun failed to run only the jobs that did not succeed
# (stage 6's tokenize-shards tasks resume their shard ranges):
#   export cmd="utils/launch.sh --backend slurm --rerun failed ..."
export cmd="utils/launch.sh --backend local --max-jobs 2"
