"""Fit k-means centroids on features and write a tokenizer bundle: FEATS -> BUNDLE_DIR.

Streams the features once, keeping a seeded sample: --percent keeps each
utterance with that probability (decided by a hash of seed and key, so the
choice does not depend on order) and --max-frames caps the kept frames with
a reservoir sample, so memory holds the sample and never the corpus. Then
k-means++ and Lloyd iterations (full, the default) or mini-batch updates.
BUNDLE_DIR gets centroids.npy and config.json (the feature recipe recorded
beside FEATS, and k, seed, frames, utterances, iterations, inertia, time,
the seconds of each phase, command). The log's last line gives those
phases: the sampling pass, k-means++, the warm-up on its frames, Lloyd, and
the exact inertia. The same arguments give bit-identical centroids; re-running a
finished fit does nothing unless --force.

\b
Example:
  audiotok fit-kmeans --k 500 scp:dump/hubert/train/feats.scp exp/km500_hubert_l6
  audiotok fit-kmeans --k 100 --percent 10 --max-frames 500000 ark:feats.ark exp/km100

See also: extract-feats, quantize, tokenize.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "fit-kmeans"


def command(
    feats: Annotated[str, typer.Argument(metavar="FEATS", help="Features: scp:FILE, ark:FILE, ark,t:FILE or ark:- (or -).", show_default=False)],
    bundle_dir: Annotated[str, typer.Argument(metavar="BUNDLE_DIR", help="Directory for centroids.npy and config.json.", show_default=False)],
    k: Annotated[int, typer.Option("--k", min=1, help="Number of centroids (units).")] = 500,
    percent: Annotated[
        float,
        typer.Option("--percent", min=0.0, max=100.0, help="Keep this share of utterances, in percent: 10 keeps about a tenth (fairseq's --percent 0.1)."),
    ] = 100.0,
    max_frames: Annotated[
        int,
        typer.Option(
            "--max-frames", min=0, help="Keep at most this many frames (a seeded reservoir sample, held in memory: frames x dim x 4 bytes); 0: no cap."
        ),
    ] = 1_000_000,
    algorithm: Annotated[str, typer.Option("--algorithm", help="full (Lloyd, exact assignment of all frames) or minibatch.")] = "full",
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling and k-means++; the same seed gives the same centroids.")] = 0,
    max_iter: Annotated[int, typer.Option("--max-iter", min=1, help="Most Lloyd iterations (full) or epochs (minibatch).")] = 100,
    tol: Annotated[float, typer.Option("--tol", min=0.0, help="Stop when an iteration lowers inertia by less than this share.")] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="minibatch: frames a batch.")] = 10000,
    n_init: Annotated[int, typer.Option("--n-init", min=1, help="Fit this many times from different k-means++ starts; keep the lowest inertia.")] = 1,
    force: common.Force = False,
) -> None:
    import time
    from pathlib import Path

    from audiotok.errors import AlreadyDone, AudiotokError, UsageError
    from audiotok.io.markers import DoneMarker
    from audiotok.io.outputs import make_signature
    from audiotok.io.recipes import read_recipe_for
    from audiotok.io.tables import read_matrices
    from audiotok.log import command_line
    from audiotok.units.bundle import Bundle
    from audiotok.units.kmeans import ALGORITHMS, fit_kmeans, sample_frames

    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown --algorithm {algorithm!r}", f"choose one of {', '.join(ALGORITHMS)}")
    if percent <= 0:
        raise UsageError("--percent must be above 0")
    if Path(bundle_dir).is_file():
        raise UsageError(f"BUNDLE_DIR {bundle_dir!r} is a file", "a bundle is a directory")
    settings = {
        "k": k,
        "percent": percent,
        "max_frames": max_frames,
        "algorithm": algorithm,
        "seed": seed,
        "max_iter": max_iter,
        "tol": tol,
        "batch_size": batch_size,
        "n_init": n_init,
    }
    signature = make_signature(NAME, feats=feats, **settings)
    marker = DoneMarker(bundle_dir, directory=True)
    if not force and marker.matches(signature):
        raise AlreadyDone(bundle_dir)

    started = time.perf_counter()
    sample = sample_frames(read_matrices(feats), percent=percent, max_frames=max_frames or None, seed=seed)
    sampling = time.perf_counter() - started
    common.log.info(
        "sampled %d frames of %d utterances in %.1f s (%d of %d utterances kept by --percent, %d frames before --max-frames)",
        len(sample.frames),
        sample.utterances,
        sampling,
        sample.utterances_kept,
        sample.utterances_seen,
        sample.frames_kept,
    )
    recipe = read_recipe_for(feats) or {}
    if sample.dim and recipe.get("dim", sample.dim) != sample.dim:
        raise AudiotokError(f"{feats}: features have dimension {sample.dim}, their recipe says {recipe['dim']}", "re-extract the features")
    result = fit_kmeans(sample.frames, k, algorithm=algorithm, seed=seed, max_iter=max_iter, batch_size=batch_size, n_init=n_init, tol=tol)
    phases = {"sampling": sampling, **result.phases}
    kmeans = {
        **settings,
        "frames": len(sample.frames),
        "utterances": sample.utterances,
        "iterations": result.iterations,
        "inertia": result.inertia,
        "seconds": round(result.seconds, 3),
        "phase_seconds": {name: round(seconds, 3) for name, seconds in phases.items()},
        "command": command_line(),
    }
    marker.clear()
    Bundle(result.centroids, {**recipe, "dim": sample.dim}, kmeans).save(bundle_dir)
    marker.write(signature)
    common.log.info("wrote %s: k=%d, inertia %.6g over %d frames in %.1f s", bundle_dir, k, result.inertia, len(sample.frames), result.seconds)
    common.log.info("time: %s", ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))
