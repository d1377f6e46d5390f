"""recipes/step_audio end to end on stand-ins in Step-Audio-Tokenizer's layout: the tiny
FunASR-made Paraformer (tests/data/paraformer_tiny), 1024 random linguistic centroids and a tiny
S3 v1 ONNX; tokens are checked against the commands run by hand and round-trip through deinterleave."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, make_data_dir, tone_burst, write_audio
from tests.units.test_s3 import save_tiny

PARAFORMER = "dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("Step-Audio-Tokenizer")
    (directory / PARAFORMER).parent.mkdir(parents=True)
    shutil.copytree(ROOT / "tests" / "data" / "paraformer_tiny", directory / PARAFORMER)
    np.save(directory / "linguistic_tokenizer.npy", np.random.default_rng(0).standard_normal((1024, 8)).astype(np.float32))
    shutil.copy(save_tiny(tmp_path_factory.mktemp("s3"), "v1", 25)[1], directory / "speech_tokenizer_v1.onnx")
    return directory


def test_the_step_audio_layout_verifies_deep(cli, tokenizer_dir):
    result = cli("model", "verify", tokenizer_dir, "--deep")
    assert result.returncode == 0, result.stderr
    assert "family step-audio" in result.text and "vq02 tokens [16] (codebook 1024)" in result.text and "vq06 tokens [25]" in result.text


def test_step_audio_recipe_end_to_end(tmp_path, tokenizer_dir, cli):
    items = {f"utt{i}": write_audio(tmp_path / "in" / f"utt{i}.wav", tone_burst(rate, tone=1.2 + 0.4 * i, freq=200 + 80 * i, seed=i), rate) for i, rate in enumerate((16000, 22050, 16000))}
    data = make_data_dir(tmp_path / "corpus", items)
    recipe = tmp_path / "step_audio"
    shutil.copytree(ROOT / "recipes" / "step_audio", recipe, symlinks=True)
    for name in ("utils", "steps"):
        (recipe / name).unlink()
        (recipe / name).symlink_to(ROOT / "recipes" / name)
    (recipe / "path.sh").write_text((recipe / "path.sh").read_text().replace('"$recipe_root/../../bin', f'"{ROOT}/bin'))
    env = {**os.environ, "AUDIOTOK_PYTHON": sys.executable}
    run = subprocess.run(["./run.sh", "--data", str(data), "--tokenizer-dir", str(tokenizer_dir), "--nj", "2"], cwd=recipe, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    out = recipe / "exp" / "step_audio" / "corpus"
    clean = recipe / "data" / "corpus_sa"
    # The same tokens as the commands run by hand on the front end's output.
    by_hand_vq02 = cli("tokenize", recipe / "exp" / "vq02", clean)
    by_hand_vq06 = cli("s3-extract", "--model", tokenizer_dir / "speech_tokenizer_v1.onnx", clean)
    assert (out / "vq02.txt").read_text() == by_hand_vq02.text and (out / "vq06.txt").read_text() == by_hand_vq06.text
    strings = (out / "audio.txt").read_text().splitlines()
    assert [line.split()[0] for line in strings] == ["utt0", "utt1", "utt2"]
    ids = {line.split()[0]: list(map(int, line.split()[1:])) for line in (out / "tokens.txt").read_text().splitlines()}
    for line in strings:
        key, text = line.split(maxsplit=1)
        numbers = [int(n) for n in text.replace("<audio_", " ").replace(">", " ").split()]
        assert [n + 65536 for n in numbers] == ids[key] and all(0 <= n < 1024 + 64 for n in numbers)
    # Back apart: whole 2:3 groups of the original streams.
    split = cli("deinterleave", out / "audio.txt", "--ratio", "2:3", "--offsets", "0,1024", "--format", "string", "-o", tmp_path / "a.txt", "-o", tmp_path / "b.txt")
    assert split.returncode == 0, split.stderr
    for mine, theirs, size in ((tmp_path / "a.txt", out / "vq02.txt", 2), (tmp_path / "b.txt", out / "vq06.txt", 3)):
        for got, full in zip(mine.read_text().splitlines(), theirs.read_text().splitlines(), strict=True):
            got_units, full_units = got.split()[1:], full.split()[1:]
            assert got_units == full_units[: len(got_units)] and len(got_units) % size == 0 and len(got_units) > 0
    # A rerun skips every finished stage.
    again = subprocess.run(["./run.sh", "--data", str(data), "--tokenizer-dir", str(tokenizer_dir), "--nj", "2"], cwd=recipe, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and again.stderr.count("already done") >= 3, again.stderr
