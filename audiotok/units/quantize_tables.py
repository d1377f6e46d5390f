"""The quantize run over feature tables: stream feature matrices, label frames in large blocks, write units."""

import logging

import numpy as np

log = logging.getLogger("audiotok")


def check_recipes(bundle, features: str, recipe_file: str | None) -> None:
    """Refuse features whose recipe (recorded beside them, or given by --recipe) differs from the
    bundle's; when neither is there, say once that nothing was checked, and how to check."""
    from audiotok.io.recipes import read_recipe_file, read_recipe_for

    stdin = features == "-" or features.endswith(":-")
    name = "stdin" if stdin else features
    known = [(name, read_recipe_for(features))]
    if recipe_file is not None:
        known.append((f"{name} (--recipe {recipe_file})", read_recipe_file(recipe_file)))
    known = [(where, recipe) for where, recipe in known if recipe is not None]
    for where, recipe in known:
        bundle.check_features(recipe.get("dim", bundle.dim), recipe, where)
    if not known:
        log.warning(
            "%s: the features are not checked against the recipe of %s (%s); "
            "to check them, pass --recipe FILE.recipe.json (extract-feats writes it beside its file outputs)",
            name,
            bundle.path,
            "stdin carries no recipe" if stdin else "no FILE.recipe.json beside it",
        )


def quantize_table(command, bundle_dir, features, output, output_format, dedup, durations, device, screen, min_success, force, recipe_file=None, shard=None):
    from audiotok.engine import items as engine
    from audiotok.errors import ItemError
    from audiotok.io.digests import model_digest
    from audiotok.io.outputs import make_signature
    from audiotok.io.tables import read_matrices
    from audiotok.io.unit_writer import UnitWriter
    from audiotok.units.assign import MISSING, open_assigner
    from audiotok.units.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    check_recipes(bundle, features, recipe_file)
    assigner = open_assigner(bundle, device, screen)
    arguments = {"bundle": str(bundle_dir), "bundle_content": model_digest(str(bundle_dir))}
    arguments |= {"features": features, "format": output_format, "dedup": dedup, "durations": durations}
    signature = make_signature(command, **arguments, **({"shard": shard} if shard else {}))
    select = None if shard is None else (lambda entries: engine.select_shard(entries, shard))
    matrices = read_matrices(features, select)

    def checked():
        for key, matrix in matrices:
            matrix = np.asarray(matrix, dtype=np.float32)
            if matrix.ndim == 1:
                matrix = matrix[None, :]
            bundle.check_features(matrix.shape[1], None, f"{features} entry {key!r}")
            yield key, (matrix if len(matrix) else ItemError("no frames"))

    def results():
        """Units in input order; the assigner labels utterances together in large blocks."""
        for key, units in assigner.label_stream(checked()):
            if isinstance(units, np.ndarray) and len(units) and units.min() == MISSING:
                units = ItemError("features hold NaN or Inf")
            yield key, units

    writer = UnitWriter(output, output_format, dedup, durations, signature, force, bundle.units_recipe(dedup))
    engine.run(command, writer, results(), writer.write, min_success=min_success)
    if assigner.frames:
        log.debug("frames the %s screen left in doubt, scored again in float64: %d of %d", assigner.screen_used, assigner.rescored_rows, assigner.frames)
        log.debug("assignment seconds: %s", ", ".join(f"{name} {seconds:.2f}" for name, seconds in assigner.seconds.items()))
