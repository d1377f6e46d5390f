"""Score a BSQ tokenizer on audio: each utterance goes through encode -> decode
and is compared with its own log-mel. Reports mel MSE and MAE (on the scaled
mel in [-1, 1]; x40 is dB), the baseline of predicting each utterance by its
mean spectrum (and the ratio model MSE / baseline MSE), and SI-SNR (dB) of the
Griffin-Lim resynthesis of the reconstructed mel against the Griffin-Lim
resynthesis of the original mel. Means are weighted by frames. A table on
stdout, or one JSON object with --json (`per_utterance` with --per-utterance).

\b
Example:
  audiotok bsq-eval --model exp/bsq_small data/test
  audiotok bsq-eval --model exp/bsq_small --keys exp/bsq_small/valid_keys.txt /data/speech --json

See also: bsq-train, bsq-encode, bsq-decode.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "bsq-eval"


def command(
    inputs: common.Inputs,
    model: Annotated[str, typer.Option("--model", help="Model directory written by bsq-train.", show_default=False)],
    keys: Annotated[str | None, typer.Option("--keys", help="Only these keys (one a line; e.g. the model's valid_keys.txt).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of a table.")] = False,
    per_utterance: Annotated[bool, typer.Option("--per-utterance", help="With --json: every utterance's scores too.")] = False,
    iterations: Annotated[int, typer.Option("--iterations", min=0, help="Griffin-Lim iterations for SI-SNR (0: skip SI-SNR).")] = 32,
    device: common.Device = "auto",
    channel: common.Channel = None,
    min_success: common.MinSuccess = 0.95,
) -> None:
    import json
    from pathlib import Path

    import torch

    from audiotok.bsq import modeldir
    from audiotok.bsq.evaluate import summarise, utterance_scores
    from audiotok.bsq.mel import waveform_at
    from audiotok.device import resolve
    from audiotok.engine import items as engine
    from audiotok.errors import AudiotokError, ItemError

    device = resolve(device)
    loaded, frontend, meta = modeldir.load(model, device)
    wanted = None
    if keys is not None:
        try:
            wanted = set(Path(keys).read_text().split())
        except FileNotFoundError:
            raise AudiotokError(f"no such file: {keys}") from None
    items, source_failures, _ = engine.audio_items(inputs)
    rows = []

    def results():
        for item in items:
            if wanted is not None and item.key not in wanted:
                continue
            try:
                samples = waveform_at(item.load(channel), frontend.sample_rate)
                with torch.no_grad():
                    yield item.key, utterance_scores(loaded, frontend, samples, iterations)
            except ItemError as err:
                yield item.key, err

    engine.run(NAME, engine.NoSink(), results(), lambda key, scores: rows.append({"key": key, **scores}), failures=source_failures, min_success=min_success)
    summary = {"model": model, "trained_steps": meta.get("trained_steps"), **summarise(rows)}
    if as_json:
        if per_utterance:
            summary["per_utterance"] = rows
        print(json.dumps(summary))
        return
    print(f"{'metric':<22}{'model':>12}{'baseline':>12}")
    print(f"{'mel MSE':<22}{summary['mse']:>12.5f}{summary['baseline_mse']:>12.5f}")
    print(f"{'mel MAE':<22}{summary['mae']:>12.5f}{summary['baseline_mae']:>12.5f}")
    print(f"{'MSE / baseline':<22}{summary['mse_over_baseline']:>12.4f}")
    if "si_snr" in summary:
        print(f"{'SI-SNR (dB, GL vs GL)':<22}{summary['si_snr']:>12.2f}")
    print(f"{'utterances':<22}{summary['utterances']:>12d}")
