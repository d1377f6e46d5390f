"""Model presets: list them, fetch one, verify a local copy.

A preset names a pretrained model (its source, files, family, default
layer, rates, codebook, license, checksums). Every --model option takes a
preset name, a hub id, or a local path. Presets live in CACHE/NAME: CACHE
is --cache-dir, else $AUDIOTOK_MODELS, else $HF_HOME/audiotok, else
~/.cache/audiotok/models; hub presets already in the Hugging Face cache
are found there too. AUDIOTOK_MODEL_REGISTRY names a YAML file of your own
presets (same fields as the built-in audiotok/models/presets.yaml).

\b
Example:
  audiotok model list
  audiotok model fetch hubert-base-ls960
  audiotok model verify hubert-base-ls960 --deep
  audiotok model verify ./my-paraformer-dir --deep

See also: extract-feats, tokenize, s3-extract.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "model"

app = typer.Typer(no_args_is_help=True, add_completion=False)
CacheDir = Annotated[
    str | None, typer.Option("--cache-dir", help="Where presets are kept (default: $AUDIOTOK_MODELS, $HF_HOME/audiotok or ~/.cache/audiotok/models).")
]


@app.command("list", help="A table of the presets: name, family, rate, codebook, size, and whether a local copy is present.")
def list_presets(
    cache_dir: CacheDir = None,
    output_format: Annotated[str, typer.Option("--format", help="table or tsv.")] = "table",
) -> None:
    from audiotok.errors import UsageError
    from audiotok.models.registry import load_registry
    from audiotok.models.store import local_copy

    if output_format not in ("table", "tsv"):
        raise UsageError(f"unknown --format {output_format!r}", "choose table or tsv")
    header = ("name", "family", "rate_hz", "codebook", "layer", "size", "license", "local")
    rows = []
    for preset in load_registry().values():
        copy = local_copy(preset, cache_dir)
        rows.append(
            (
                preset.name,
                preset.family,
                f"{preset.frame_rate:g}",
                str(preset.codebook or "-"),
                "-" if preset.layer is None else str(preset.layer),
                preset.size,
                preset.license,
                str(copy) if copy else "no",
            )
        )
    if output_format == "tsv":
        print("\t".join(header))
        for row in rows:
            print("\t".join(row))
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@app.command("fetch", help="Download a preset's files (Hugging Face hub or ModelScope; partial downloads resume).")
def fetch_preset(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Preset name (audiotok model list).", show_default=False)],
    directory: Annotated[str | None, typer.Option("--dir", help="Download here instead of CACHE/NAME.")] = None,
    cache_dir: CacheDir = None,
) -> None:
    from pathlib import Path

    from audiotok.errors import AudiotokError
    from audiotok.models.registry import find_preset, load_registry
    from audiotok.models.store import cache_root, fetch, missing_files

    preset = find_preset(name)
    if preset is None:
        raise AudiotokError(f"no model preset {name!r}", f"choose one of {', '.join(load_registry())}")
    target = Path(directory) if directory else cache_root(cache_dir) / name
    fetch(preset, target)
    missing = missing_files(preset, target)
    if missing:
        raise AudiotokError(
            f"{preset.repo_id} was fetched into {target} but lacks {', '.join(missing)}", "the preset's file list may be out of date; check the model card"
        )
    print(target)


@app.command("verify", help="Check a model's files and checksums; --deep also loads it and runs one second of audio.")
def verify_model(
    model: Annotated[str, typer.Argument(metavar="NAME|PATH", help="A preset name, or a model directory or file.", show_default=False)],
    deep: Annotated[bool, typer.Option("--deep", help="Load the model and run a forward pass; print shapes and time.")] = False,
    device: common.Device = "cpu",
    cache_dir: CacheDir = None,
) -> None:
    from pathlib import Path

    from audiotok.device import resolve as resolve_device
    from audiotok.errors import AudiotokError
    from audiotok.models.registry import find_preset
    from audiotok.models.store import cache_root, local_copy
    from audiotok.models.verify import verify

    path, preset = Path(model), None
    if not path.exists():
        preset = find_preset(model)
        if preset is None:
            raise AudiotokError(f"{model} is neither a local path nor a model preset", "see audiotok model list")
        # A partial copy is verified too, so the report names what is missing.
        path = local_copy(preset, cache_dir) or cache_root(cache_dir) / preset.name
        if not path.is_dir():
            raise AudiotokError(f"model preset {model!r} is not downloaded (no {path})", f"audiotok model fetch {model}")
    report = verify(path, preset, deep, resolve_device(device))
    for line in report.lines:
        print(line)
    if report.problems:
        more = f" and {len(report.problems) - 1} more problem(s)" if len(report.problems) > 1 else ""
        raise AudiotokError(f"{model}: {report.problems[0]}{more}")
    print("verified")
