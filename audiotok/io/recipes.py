"""Recipes recorded beside outputs: `OUT.recipe.json` says how features or units were made
(backend, model hash, rates, front end), so the next command can check what it is given."""

import json
from pathlib import Path

from audiotok.errors import AudiotokError


def recipe_sidecar(path: str | Path) -> Path:
    """Where extract-feats records the recipe of a feature file: `FILE.recipe.json`."""
    path = Path(path)
    return path.with_name(path.name + ".recipe.json")


def read_recipe_file(path: str | Path) -> dict:
    """A recipe named on the command line (quantize --recipe FILE.recipe.json)."""
    try:
        recipe = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AudiotokError(f"no such recipe file: {path}", "extract-feats writes FEATS.recipe.json beside its file outputs") from None
    except (OSError, UnicodeDecodeError) as err:
        raise AudiotokError(f"cannot read the recipe {path}: {err}") from None
    except json.JSONDecodeError as err:
        raise AudiotokError(f"{path} is not valid JSON: {err.msg}") from None
    if not isinstance(recipe, dict) or "backend" not in recipe:
        raise AudiotokError(f"{path} is not a feature recipe (no backend recorded)", "give the FEATS.recipe.json that extract-feats wrote")
    return recipe


def read_recipe_for(spec: str) -> dict | None:
    """The recipe recorded beside the file a feature specifier names (None for stdin or none recorded)."""
    from audiotok.io.specifiers import looks_like_specifier, parse_specifier

    if spec == "-" or not looks_like_specifier(spec):
        return None
    parsed = parse_specifier(spec)
    path = parsed.scp or parsed.ark
    if path in (None, "-"):
        return None
    try:
        return json.loads(recipe_sidecar(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
