"""Train an Audio BSQ-ViT tokenizer from scratch: a Transformer
autoencoder over log-mel patches whose bottleneck keeps only the signs of
`embed_dim` latents (Binary Spherical Quantization), one token a patch.

CONFIG is a YAML file with `model`, `data` and `optim` sections (unknown keys
are errors), optionally starting from `preset: tiny|small|base|large`; or just
a preset name. A file in the seed's layout (`model.target/params.audioconfig`,
`data.n_mels`, `data.target_length`, `optimizer`, ...) is read as the same
settings in these keys; what has no equivalent is refused in one line. OUTPUT_DIR gets checkpoints/, model.safetensors + config.json
(the model directory bsq-encode reads), metrics.jsonl, loss_curve.png,
train_config.yaml and valid_keys.txt. A run finding a checkpoint there resumes
exactly where it stopped.

{ddp}

\b
Example:
  audiotok bsq-train recipes/bsq/conf/small.yaml --output-dir exp/bsq_small
  audiotok bsq-train small --train data/train --output-dir exp/bsq_small --max-steps 2000
  torchrun --nproc_per_node 4 -m audiotok bsq-train base.yaml --output-dir exp/bsq_base
  srun --nodes 2 --ntasks-per-node 1 torchrun --nnodes 2 --nproc_per_node 4 \\
    --rdzv_backend c10d --rdzv_endpoint $MASTER:29500 \\
    -m audiotok bsq-train base.yaml --output-dir exp/bsq_base

See also: bsq-encode, bsq-decode, bsq-eval.
"""

from typing import Annotated

import typer

from audiotok.cli import common

__doc__ = __doc__.replace("{ddp}", common.DDP_HELP)

NAME = "bsq-train"


def command(
    config_file: Annotated[str, typer.Argument(metavar="CONFIG", help="YAML config, or a preset: tiny, small, base, large.", show_default=False)],
    output_dir: Annotated[str, typer.Option("--output-dir", help="Where checkpoints, the model and metrics go.", show_default=False)],
    train: Annotated[str | None, typer.Option("--train", help="Override data.train: an audio table.")] = None,
    valid: Annotated[str | None, typer.Option("--valid", help="Override data.valid: a held-out audio table.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Override optim.max_steps (also the schedule's length).")] = None,
    device: common.Device = "auto",
    stop_after: Annotated[
        int | None, typer.Option("--stop-after", min=1, help="Stop after this step as if killed, leaving a checkpoint; the same command resumes.")
    ] = None,
) -> None:
    from pathlib import Path

    from audiotok.bsq import config as bsq_config
    from audiotok.bsq.train import train as run_training

    config = bsq_config.load(config_file)
    overrides = {"data": {}, "optim": {}}
    if train is not None:
        overrides["data"]["train"] = train
    if valid is not None:
        overrides["data"]["valid"] = valid
    if max_steps is not None:
        overrides["optim"]["max_steps"] = max_steps
    config = bsq_config.resolve({**config, "data": {**config["data"], **overrides["data"]}, "optim": {**config["optim"], **overrides["optim"]}})
    run_training(config, Path(output_dir), device=device, stop_after=stop_after)
