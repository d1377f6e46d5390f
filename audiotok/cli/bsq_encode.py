"""Turn audio into BSQ tokens with a model trained by bsq-train: one integer a
time x mel patch, in [0, 2**embed_dim) (9 bits: 0..511), whose bits are the
signs of the patch's latent (bit k = dimension k > 0).

Audio is resampled to the model's rate and mixed to mono. Tokens are written
time-major: all mel bands of the first time patch, then the next (with 16-frame
patches of 10 ms hops and 128 mels: 8 tokens every 160 ms, 50 tokens a second).
Text lines are `key t1 t2 ...`; JSONL lines add the grid [time patches, bands]
and the mel frame count, so bsq-decode can trim the padding of the last patch.

\b
Example:
  audiotok bsq-encode --model exp/bsq_small data/test -o tokens.txt
  audiotok bsq-encode --model exp/bsq_small --format jsonl a.wav b.flac > tokens.jsonl

See also: bsq-train, bsq-decode, bsq-eval.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "bsq-encode"


def command(
    inputs: common.Inputs,
    model: Annotated[str, typer.Option("--model", help="Model directory written by bsq-train.", show_default=False)],
    output: common.TextOutputOption = "-",
    output_format: Annotated[str, typer.Option("--format", help="text or jsonl.")] = "text",
    device: common.Device = "auto",
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.errors import UsageError

    if output_format not in ("text", "jsonl"):
        raise UsageError(f"unknown --format {output_format!r}", "text or jsonl")
    import torch

    from audiotok.bsq import modeldir
    from audiotok.bsq.mel import waveform_at
    from audiotok.bsq.tokens import encode_utterance
    from audiotok.device import resolve
    from audiotok.io.tables import format_int_vector, format_jsonl

    device = resolve(device)
    loaded, frontend, _ = modeldir.load(model, device)

    def describe(item) -> str:
        mel = frontend(waveform_at(item.load(channel), frontend.sample_rate)).to(device)
        with torch.no_grad():
            ids = encode_utterance(loaded, mel).cpu()
        flat = ids.reshape(-1).numpy()
        if output_format == "jsonl":
            return format_jsonl(item.key, tokens=flat, grid=list(ids.shape), frames=mel.shape[0])
        return format_int_vector(item.key, flat)

    common.table_report(NAME, inputs, output, describe, {"model": model, "format": output_format, "channel": channel}, min_success=min_success, force=force)
