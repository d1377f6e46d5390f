"""Turn BSQ tokens back into log-mel spectrograms (and, with --griffin-lim,
into audible waveforms) with the model that made them.

TOKENS is a bsq-encode table: text (`key t1 t2 ...`, a file or - for stdin) or
JSONL (a .jsonl file or jsonl:FILE; its frame count trims the padding). OUTDIR
gets KEY.npy per utterance: the mel in dB (frames x mels, float32, within
[-80, 0] against the full-scale reference of bsq-train), and with --griffin-lim
KEY.wav: the power mel inverted to a linear spectrogram (least squares) and then
to audio by Griffin-Lim with the model's STFT (n_fft, hop, Hann window), seeded.

\b
Example:
  audiotok bsq-decode --model exp/bsq_small tokens.txt -o decoded/
  audiotok bsq-encode --model exp/bsq_small a.wav | audiotok bsq-decode --model exp/bsq_small - -o out --griffin-lim

See also: bsq-encode, bsq-eval.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "bsq-decode"


def _read_tokens(spec: str, bands: int):
    """(key, ids (time patches, bands), frames or None) from a text or JSONL table."""
    import numpy as np

    from audiotok.errors import AudiotokError
    from audiotok.io.tables import iter_json_records, read_int_vectors

    if spec.startswith("jsonl:") or spec.endswith(".jsonl"):
        for where, record in iter_json_records(spec):
            if "key" not in record or "tokens" not in record:
                raise AudiotokError(f"{where}: a record needs \"key\" and \"tokens\"")
            yield str(record["key"]), np.asarray(record["tokens"], dtype=np.int64), record.get("frames"), where
    else:
        for key, values in read_int_vectors(spec):
            yield key, values, None, key


def command(
    tokens: Annotated[str, typer.Argument(metavar="TOKENS", help="Token table from bsq-encode: text file, JSONL file, or - (text on stdin).", show_default=False)],
    model: Annotated[str, typer.Option("--model", help="Model directory written by bsq-train.", show_default=False)],
    output_dir: Annotated[str, typer.Option("--output", "-o", help="Directory for KEY.npy (and KEY.wav).", show_default=False)],
    griffin_lim: Annotated[bool, typer.Option("--griffin-lim", help="Also write KEY.wav, resynthesised by Griffin-Lim.")] = False,
    iterations: Annotated[int, typer.Option("--iterations", min=1, help="Griffin-Lim iterations.")] = 32,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from pathlib import Path

    import numpy as np
    import soundfile as sf
    import torch

    from audiotok.bsq import modeldir
    from audiotok.bsq.tokens import decode_utterance
    from audiotok.errors import ItemError
    from audiotok.io.atomic import atomic_open
    from audiotok.io.markers import DoneMarker
    from audiotok.io.keys import safe_file_name
    from audiotok.io.outputs import AlreadyDone, make_signature
    from audiotok.engine.items import Tally, progress

    loaded, frontend, _ = modeldir.load(model, device)
    bands = loaded.config["input_size"] // loaded.patch
    limit = 2**loaded.embed_dim
    out = Path(output_dir)
    signature = make_signature(NAME, tokens=tokens, model=model, griffin_lim=griffin_lim, iterations=iterations)
    marker = DoneMarker(out, directory=True)
    if not force and marker.matches(signature):
        raise AlreadyDone(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    marker.clear()
    tally = Tally(min_success)

    def decode_one(key, values, frames):
        name = safe_file_name(key)
        if name is None:
            raise ItemError(f"key {key!r} cannot name a file")
        if len(values) == 0 or len(values) % bands:
            raise ItemError(f"{len(values)} tokens is not a whole number of time patches of {bands} bands")
        if values.min() < 0 or values.max() >= limit:
            raise ItemError(f"tokens must be within [0, {limit}) for a {loaded.embed_dim}-bit model")
        ids = torch.from_numpy(values.reshape(-1, bands)).to(device)
        with torch.no_grad():
            mel = decode_utterance(loaded, ids, frames).float().cpu()
        with atomic_open(out / f"{name}.npy", "wb") as handle:
            np.save(handle, frontend.unscale(mel).numpy().astype(np.float32), allow_pickle=False)
        if griffin_lim:
            with atomic_open(out / f"{name}.wav", "wb") as handle:
                sf.write(handle, frontend.griffin_lim(mel, iterations), frontend.sample_rate, format="WAV", subtype="FLOAT")

    for key, values, frames, _ in progress(_read_tokens(tokens, bands), NAME):
        try:
            decode_one(key, values, frames)
        except ItemError as err:
            tally.fail(key, str(err))
            continue
        tally.success()
    tally.finish()
    marker.write(signature)
