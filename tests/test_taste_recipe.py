"""recipes/taste end to end, reduced: the shared transcribed English recordings, the real Whisper
tiny.en encoder and tokenizer, S3 targets from a random S3 model fitted to the audio, the tiny
config for 60 steps; the trained model beats the majority-class baseline on its training items,
and taste-encode gives one group of codes per text token."""

import json
import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_taste_recipe_end_to_end_on_real_speech(tmp_path, speech_dir, whisper_dir):
    recipe = tmp_path / "taste"
    shutil.copytree(ROOT / "recipes" / "taste", recipe, symlinks=True, ignore=shutil.ignore_patterns("data", "dump", "exp"))
    (recipe / "utils").unlink()
    (recipe / "utils").symlink_to(ROOT / "recipes" / "utils")
    (recipe / "path.sh").write_text((recipe / "path.sh").read_text().replace('"$recipe_root/../../bin', f'"{ROOT}/bin'))
    env = {**os.environ, "AUDIOTOK_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    args = [
        "./run.sh",
        "--corpus",
        str(speech_dir),
        "--language",
        "en",
        "--whisper",
        str(whisper_dir),
        "--config",
        "tiny",
        "--s3-codebook",
        "64",
        "--s3-fitted",
        "32",
        "--ablation",
        "false",
        "--device",
        "cpu",
    ]
    run = subprocess.run(args, cwd=recipe, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    # taste-train takes the unit rate from the recipe s3-extract wrote beside the units.
    assert "train: 25 units a second, as dump/s3/all.txt.recipe.json records" in run.stderr and "far from" not in run.stderr
    texts = dict(line.split(" ", 1) for line in (recipe / "data" / "all" / "text").read_text().splitlines())
    assert len(texts) == 15 and texts["LJ002-0020"] == "In 1813"  # the (normalized: ...) note is dropped
    exp = recipe / "exp" / "taste_tiny"
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["steps"] == 60
    assert summary["train_accuracy"] > summary["train_majority_accuracy"] + 0.05, summary
    assert (exp / "loss_curve.png").stat().st_size > 0 and "teacher-forced" in (exp / "examples.txt").read_text()
    tokens = [json.loads(line) for line in (exp / "tokens.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in tokens) == sorted(texts)
    for r in tokens:
        assert len(r["codes"]) == len(r["text_ids"]) == len(r["tokens"]) and all(len(c) == 2 for c in r["codes"])
    # A rerun of the data and unit stages finds them done.
    again = subprocess.run([*args, "--stop-stage", "0"], cwd=recipe, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "already done" in again.stderr
