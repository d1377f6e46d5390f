"""Copy a feature or unit table between forms: binary ark, text ark, scp, KEY.npy files, text integer tables.

IN is ark:FILE, ark:- (or -), ark,t:FILE, scp:FILE, text:FILE (`key 1 2 3`
lines, what tokenize and quantize write) or npy:DIR. OUT is ark:FILE, ark:-,
ark,t:FILE, ark,scp:A.ark,A.scp (the scp points at offsets, as Kaldi writes
it), text:FILE or text:- (integer vectors only), or npy:DIR (one KEY.npy a
key; a key that cannot name a file is a counted skip). Values keep their
kind: float32 and float64 matrices and vectors stay so in binary archives
and .npy files, integer vectors stay int32. A text archive carries no dtype:
floats are written with enough digits to read back exactly (float32 12,
float64 17) and read as float32, as Kaldi reads them. Compressed matrices
are written uncompressed. The recipe recorded beside an input archive
(FILE.recipe.json) is recorded beside the output archive too. Outputs are
atomic; a killed ark:FILE output resumes.

\b
Example:
  audiotok copy-feats ark:dump/feats.ark ark,t:- | head
  audiotok copy-feats scp:dump/feats.scp ark,scp:feats.ark,feats.scp
  audiotok copy-feats text:units.txt ark:units.ark
  audiotok copy-feats --keys dev.list ark:feats.ark npy:feats_npy

See also: feat-info, extract-feats, quantize.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "copy-feats"


def command(
    source: Annotated[str, typer.Argument(metavar="IN", help="ark:FILE, ark:- (or -), ark,t:FILE, scp:FILE, text:FILE or npy:DIR.", show_default=False)],
    target: Annotated[
        str, typer.Argument(metavar="OUT", help="ark:FILE, ark:-, ark,t:FILE, ark,scp:A.ark,A.scp, text:FILE, text:- or npy:DIR.", show_default=False)
    ],
    keys: Annotated[
        str | None, typer.Option("--keys", metavar="FILE", help="Copy only the keys this file lists (the first field of each line), in IN's order.")
    ] = None,
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    import itertools
    import logging

    from audiotok.engine import items as engine
    from audiotok.errors import AudiotokError
    from audiotok.io.archives import open_archive_output, read_archive
    from audiotok.io.outputs import check_not_same, make_signature
    from audiotok.io.recipes import read_recipe_for
    from audiotok.io.specifiers import looks_like_specifier, parse_specifier

    wanted = _read_keys(keys) if keys else None
    if looks_like_specifier(source) and looks_like_specifier(target) and "-" not in (source, target):
        out = parse_specifier(target, writing=True)
        check_not_same([parse_specifier(source).scp or parse_specifier(source).ark], out.ark)
    entries = read_archive(source)
    if wanted is not None:
        entries = ((key, value) for key, value in entries if key in wanted)
    first = next(entries, None)
    if first is None:
        raise AudiotokError(f"{source} holds no entries" + (f" listed in {keys}" if keys else ""), "nothing to copy")
    sink = open_archive_output(target, make_signature(NAME, input=source, keys=keys), force, read_recipe_for(source))
    copied = set()

    def results():
        for key, value in itertools.chain([first], entries):
            copied.add(key)
            yield key, engine.ALREADY_DONE if sink.already_done(key) else value

    def missing_keys():
        if wanted is not None and len(copied) < len(wanted):
            logging.getLogger("audiotok").warning("%d key(s) of %s are not in %s", len(wanted - copied), keys, source)

    engine.run(NAME, sink, results(), sink.write, min_success=min_success, what="entries", before_finish=missing_keys)


def _read_keys(path: str) -> set[str]:
    from pathlib import Path

    from audiotok.errors import AudiotokError

    try:
        return {line.split()[0] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()}
    except FileNotFoundError:
        raise AudiotokError(f"no such keys file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise AudiotokError(f"cannot read the keys file {path}: {err}") from None
