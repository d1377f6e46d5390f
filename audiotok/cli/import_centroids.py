"""Make a tokenizer bundle from centroids trained elsewhere: CENTROIDS -> BUNDLE_DIR.

CENTROIDS is a [k, dim] matrix: a .npy file (no pickles), or a text file
with one centroid a line. The bundle also needs the recipe of the features
the centroids were trained on, so quantize and tokenize can check and
rebuild them: give the same feature options as extract-feats (the encoder
is loaded once to record its weights' hash and its dimension) and the audio
front end the training audio went through (--front-end), or --recipe-from a
feature file that extract-feats wrote. Step-Audio's
linguistic tokenizer is its Paraformer encoder plus linguistic_tokenizer.npy
(1024 x 512, nearest by Euclidean distance, as audiotok's quantize does).

\b
Example:
  audiotok import-centroids Step-Audio-Tokenizer/linguistic_tokenizer.npy exp/vq02 \\
      --model Step-Audio-Tokenizer/dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online
  audiotok import-centroids km500.npy exp/km500_hubert_l6 --model hubert-base-ls960 --layer 6
  audiotok import-centroids km100.txt exp/km100 --recipe-from dump/mfcc/train/feats.scp
  audiotok import-centroids km512.npy exp/km512_seed004 --model mhubert-147 --layer 9 --front-end seed004

See also: fit-kmeans, tokenize, quantize.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "import-centroids"


def command(
    centroids: Annotated[str, typer.Argument(metavar="CENTROIDS", help="A [k, dim] matrix: .npy, or text with one centroid a line.", show_default=False)],
    bundle_dir: Annotated[str, typer.Argument(metavar="BUNDLE_DIR", help="Directory for centroids.npy and config.json.", show_default=False)],
    recipe_from: Annotated[str | None, typer.Option("--recipe-from", help="Take the recipe of this feature file (scp:FILE, ark:FILE) instead.")] = None,
    backend: Annotated[str, typer.Option("--backend", help="fbank, mfcc, logmel, or model (implied by --model).")] = "model",
    model: Annotated[
        str | None, typer.Option("--model", help="Encoder: a model directory (transformers, FunASR Paraformer), a hub id, or a .onnx file.")
    ] = None,
    layer: Annotated[int | None, typer.Option("--layer", min=0, help="Hidden state the centroids were trained on.")] = None,
    num_mels: Annotated[int | None, typer.Option("--num-mels", min=1, help="Mel bins of fbank/logmel/mfcc features.")] = None,
    num_ceps: Annotated[int, typer.Option("--num-ceps", min=1, help="mfcc: cepstra kept.")] = 13,
    deltas: Annotated[bool, typer.Option("--deltas", help="fbank/mfcc with deltas and delta-deltas.")] = False,
    onnx_output: Annotated[str | None, typer.Option("--onnx-output", help="ONNX encoders: the output the centroids were trained on.")] = None,
    front_end: Annotated[
        str | None, typer.Option("--front-end", help="Audio front end of the training audio: none (default) or seed004 (as extract-feats).")
    ] = None,
    force: common.Force = False,
) -> None:
    from pathlib import Path

    from audiotok.dsp.front_end import preset
    from audiotok.errors import AlreadyDone, AudiotokError, UsageError
    from audiotok.io.digests import file_digest
    from audiotok.io.markers import DoneMarker
    from audiotok.io.outputs import make_signature
    from audiotok.io.recipes import read_recipe_for
    from audiotok.log import command_line
    from audiotok.units.bundle import Bundle, read_centroid_matrix

    if Path(bundle_dir).is_file():
        raise UsageError(f"BUNDLE_DIR {bundle_dir!r} is a file", "a bundle is a directory")
    if recipe_from and (model or front_end):
        raise UsageError("give either --recipe-from or the feature options (--model, --front-end ...), not both", "the recipe file records its audio front end")
    chosen_front_end = preset(front_end or "none")
    if not recipe_from and backend == "model" and model is None:
        raise UsageError("say what features the centroids belong to", "give --model (with --layer), --backend mfcc|fbank|logmel, or --recipe-from FEATS")
    matrix = read_centroid_matrix(centroids)
    options = {"backend": backend, "model": model, "layer": layer, "num_mels": num_mels, "num_ceps": num_ceps, "deltas": deltas, "onnx_output": onnx_output}
    signature = make_signature(NAME, centroids=file_digest(Path(centroids)), recipe_from=recipe_from, front_end=front_end, **options)
    marker = DoneMarker(bundle_dir, directory=True)
    if not force and marker.matches(signature):
        raise AlreadyDone(bundle_dir)

    if recipe_from:
        recipe = read_recipe_for(recipe_from)
        if recipe is None:
            raise AudiotokError(f"{recipe_from} has no recorded recipe (FILE.recipe.json)", "give the feature options instead, e.g. --model DIR --layer N")
    else:
        from audiotok.tokenizers.features import open_backend

        recipe = {**open_backend(device="cpu", **options).recipe.as_dict(), "front_end": chosen_front_end.as_dict()}
    if recipe.get("dim") != matrix.shape[1]:
        raise AudiotokError(
            f"{centroids}: centroids have dimension {matrix.shape[1]}, the features are {recipe.get('dim')}-dimensional",
            "give the layer or model the centroids were trained on",
        )
    kmeans = {"imported_from": str(Path(centroids).resolve()), "sha256": file_digest(Path(centroids)), "command": command_line()}
    marker.clear()
    Bundle(matrix, recipe, kmeans).save(bundle_dir)
    marker.write(signature)
    common.log.info(
        "wrote %s: k=%d centroids of dimension %d, %s features at %g Hz",
        bundle_dir,
        matrix.shape[0],
        matrix.shape[1],
        recipe.get("backend"),
        recipe.get("frame_rate"),
    )
