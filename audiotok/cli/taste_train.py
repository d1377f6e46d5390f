"""Train the TASTE text-speech aggregator to predict an utterance's S3 units:
text tokens (queries) attend over Whisper encoder frames, giving one speech embedding
per text token; optional residual vector quantisation turns those into the
text-aligned tokens; fused with the text embeddings they are the prefix of a decoder
(a small Transformer, or a local transformers LM, frozen or not) that predicts the
S3 units with teacher forcing.

CONFIG is a YAML file (sections model, rvq, decoder, data, optim; top-level
eval_every, checkpoint_every, seed, top_k; unknown keys are errors), optionally
starting from `preset: tiny|small`; or just a preset name. The data are a
taste-extract feature store and an s3-extract unit table (text or JSONL), joined
by key; unit counts are checked against the audio at the rate s3-extract records
beside the table (UNITS.recipe.json; data.unit_rate only where there is none). OUTPUT_DIR gets checkpoints/, model.safetensors + config.json (what
taste-encode reads), metrics.jsonl (loss, accuracy and top-k accuracy on train and
valid), baselines.json (majority-class and copy-previous-unit accuracy),
loss_curve.png, examples.txt (true vs predicted units, teacher-forced and greedy
free-running) and summary.json. A run finding a checkpoint there resumes exactly.

{ddp}

\b
Example:
  audiotok taste-train small --features dump/taste/train --units dump/s3/train.txt --output-dir exp/taste
  audiotok taste-train conf/taste.yaml --output-dir exp/taste --max-steps 500 --device cuda
  torchrun --nproc_per_node 4 -m audiotok taste-train conf/taste.yaml --output-dir exp/taste
  srun --nodes 2 --ntasks-per-node 1 torchrun --nnodes 2 --nproc_per_node 4 \\
    --rdzv_backend c10d --rdzv_endpoint $MASTER:29500 \\
    -m audiotok taste-train conf/taste.yaml --output-dir exp/taste

See also: taste-extract, taste-encode, s3-extract.
"""

from typing import Annotated

import typer

from audiotok.cli import common

__doc__ = __doc__.replace("{ddp}", common.DDP_HELP)

NAME = "taste-train"


def command(
    config_file: Annotated[str, typer.Argument(metavar="CONFIG", help="YAML config, or a preset: tiny, small.", show_default=False)],
    output_dir: Annotated[str, typer.Option("--output-dir", help="Where checkpoints, the model and metrics go.", show_default=False)],
    features: Annotated[str | None, typer.Option("--features", help="Override data.train.features: a taste-extract feature store.")] = None,
    units: Annotated[str | None, typer.Option("--units", help="Override data.train.units: an S3 unit table (text or .jsonl).")] = None,
    valid_features: Annotated[str | None, typer.Option("--valid-features", help="Override data.valid.features.")] = None,
    valid_units: Annotated[str | None, typer.Option("--valid-units", help="Override data.valid.units.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Override optim.max_steps (also the schedule's length).")] = None,
    zero_speech: Annotated[bool, typer.Option("--zero-speech", help="Ablation: train with the speech embeddings zeroed (text only).")] = False,
    device: common.Device = "auto",
    stop_after: Annotated[
        int | None, typer.Option("--stop-after", min=1, help="Stop after this step as if killed, leaving a checkpoint; the same command resumes.")
    ] = None,
) -> None:
    from pathlib import Path

    from audiotok.errors import AudiotokError
    from audiotok.taste import config as taste_config

    config = taste_config.load(config_file)
    data = config["data"]
    for split, value, field in (
        ("train", features, "features"),
        ("train", units, "units"),
        ("valid", valid_features, "features"),
        ("valid", valid_units, "units"),
    ):
        if value is not None:
            data[split][field] = value
    if max_steps is not None:
        config["optim"]["max_steps"] = max_steps
    if zero_speech:
        config["model"]["zero_speech"] = True
    config = taste_config.resolve(config)
    if not config["data"]["train"]["features"]:  # before torch is imported: a quick answer
        raise AudiotokError(
            "no training data: data.train.features and data.train.units are not set", "set them in the config, or give --features STORE --units FILE"
        )
    from audiotok.taste.train import train

    train(config, Path(output_dir), device=device, stop_after=stop_after)
