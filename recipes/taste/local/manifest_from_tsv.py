#!/usr/bin/env python3
"""manifest_from_tsv.py CORPUS_DIR OUT_DIR [--language LANG]: a Kaldi data dir (wav.scp, text)
and manifest.jsonl ({"key", "audio_path", "text"}) for the recordings of CORPUS_DIR/MANIFEST.tsv
that have a transcript (columns `file` and `transcript`; `language` filters with --language).

Transcripts are cleaned of annotations in brackets, as the shared corpus writes them
("In 1813 (normalized: IN EIGHTEEN THIRTEEN)" -> "In 1813"; "[partial; ...]" dropped),
and whitespace is collapsed. Keys are file names without the extension; rows whose
file is missing are named on stderr and left out.
"""

import argparse
import csv
import json
import re
import sys
from pathlib import Path


def clean(text: str) -> str:
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text)
    return " ".join(text.replace("...", " ").split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("out")
    parser.add_argument("--language", default="", help="keep rows of this language only (e.g. en); empty: all")
    args = parser.parse_args()
    corpus, out = Path(args.corpus).resolve(), Path(args.out)
    table = corpus / "MANIFEST.tsv"
    if not table.is_file():
        print(f"error: {table} not found (hint: a folder with MANIFEST.tsv: file and transcript columns)", file=sys.stderr)
        return 1
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or not {"file", "transcript"} <= set(rows[0]):
        print(f"error: {table} has no file and transcript columns", file=sys.stderr)
        return 1
    items = {}
    for row in rows:
        text = clean(row.get("transcript") or "")
        if not text or (args.language and row.get("language") != args.language):
            continue
        path = corpus / Path(row["file"]).name  # never follow ../ out of the corpus
        if not path.is_file():
            print(f"warning: {path} is in MANIFEST.tsv but missing; left out", file=sys.stderr)
            continue
        key = path.name.split(".")[0] if path.name.endswith(".hq.ogg") else path.stem
        if key in items:
            print(f"error: two files give the key {key}", file=sys.stderr)
            return 1
        items[key] = (str(path), text)
    if not items:
        print(f"error: no rows with a transcript in {table}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    keys = sorted(items)  # C order: what Kaldi tables need
    (out / "wav.scp").write_text("".join(f"{k} {items[k][0]}\n" for k in keys))
    (out / "text").write_text("".join(f"{k} {items[k][1]}\n" for k in keys), encoding="utf-8")
    (out / "manifest.jsonl").write_text("".join(json.dumps({"key": k, "audio_path": items[k][0], "text": items[k][1]}, ensure_ascii=False) + "\n" for k in keys), encoding="utf-8")
    print(f"{len(keys)} utterances with transcripts -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
