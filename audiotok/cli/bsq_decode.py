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
                raise AudiotokError(f'{where}: a record needs "key" and "tokens"')
            yield str(record["key"]), np.asarray(record["tokens"], dtype=np.int64), record.get("frames"), where
    else:
        for key, values in read_int_vectors(spec):
            yield key, values, None, key


def command(
    tokens: Annotated[
        str, typer.Argument(metavar="TOKENS", help="Token table from bsq-encode: text file, JSONL file, or - (text on stdin).", show_default=False)
    ],
    model: Annotated[str, typer.Option("--model", help="Model directory written by bsq-train.", show_default=False)],
    output_dir: Annotated[str, typer.Option("--output", "-o", help="Directory for KEY.npy (and KEY.wav).", show_default=False)],
    griffin_lim: Annotated[bool, typer.Option("--griffin-lim", help="Also write KEY.wav, resynthesised by Griffin-Lim.")] = False,
    iterations: Annotated[int, typer.Option("--iterations", min=1, help="Griffin-Lim iterations.")] = 32,
    device: common.Device = "auto",
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    import io

    import numpy as np
    import torch

    from audiotok.bsq import modeldir
    from audiotok.bsq.tokens import decode_utterance
    from audiotok.device import resolve
    from audiotok.engine import items as engine
    from audiotok.errors import ItemError
    from audiotok.io.audio import encode
    from audiotok.io.digests import model_digest
    from audiotok.io.outputs import KeyFilesSink, make_signature

    signature = make_signature(NAME, tokens=tokens, model=model, model_content=model_digest(model), griffin_lim=griffin_lim, iterations=iterations)
    sink = KeyFilesSink(output_dir, signature, force)  # a finished output stops here, before the model loads
    device = resolve(device)
    loaded, frontend, _ = modeldir.load(model, device)
    bands = loaded.config["input_size"] // loaded.patch
    limit = 2**loaded.embed_dim

    def decode(key, values, frames):
        sink.path(key, ".npy")  # a key that cannot name a file fails before the model runs
        if len(values) == 0 or len(values) % bands:
            raise ItemError(f"{len(values)} tokens is not a whole number of time patches of {bands} bands")
        if values.min() < 0 or values.max() >= limit:
            raise ItemError(f"tokens must be within [0, {limit}) for a {loaded.embed_dim}-bit model")
        ids = torch.from_numpy(values.reshape(-1, bands)).to(device)
        with torch.no_grad():
            return decode_utterance(loaded, ids, frames).float().cpu()

    def results():
        for key, values, frames, _ in _read_tokens(tokens, bands):
            try:
                yield key, decode(key, values, frames)
            except ItemError as err:
                yield key, err

    def write(key, mel):
        array = io.BytesIO()
        np.save(array, frontend.unscale(mel).numpy().astype(np.float32), allow_pickle=False)
        sink.write_bytes(key, ".npy", array.getvalue())
        if griffin_lim:
            sink.write_bytes(key, ".wav", encode(frontend.griffin_lim(mel, iterations), frontend.sample_rate, "WAV", "FLOAT"))

    engine.run(NAME, sink, results(), write, min_success=min_success)
