#!/usr/bin/env bash
# How the stages run their commands (utils/launch.sh --help). On a Slurm cluster use e.g.
#   export cmd="utils/launch.sh --backend slurm --slurm-opts=--partition=gpu --slurm-opts=--gres=gpu:1 --slurm-opts=--time=120"
# ($cmd is split on blanks: give --slurm-opts one option at a time.)
export cmd="utils/launch.sh --backend local --max-jobs 1"
