"""recipes/step_audio end to end on stand-ins in Step-Audio-Tokenizer's layout: the tiny
FunASR-made Paraformer (tests/data/paraformer_tiny), 1024 random linguistic centroids and a tiny
S3 v1 ONNX; tokens are checked against the commands run by hand and round-trip through deinterleave.
Each --front-end mode's audio is checked against Step-Audio's own preprocessing
(tests/dsp/step_audio_reference.py) to the bit."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, make_data_dir, tone_burst, write_audio
from tests.dsp import step_audio_reference as step_audio
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


def copy_recipe(directory: Path) -> Path:
    """recipes/step_audio in `directory`, its outputs there too, running this checkout's audiotok."""
    recipe = directory / "step_audio"
    shutil.copytree(ROOT / "recipes" / "step_audio", recipe, symlinks=True)
    for name in ("utils", "steps"):
        (recipe / name).unlink()
        (recipe / name).symlink_to(ROOT / "recipes" / name)
    (recipe / "path.sh").write_text((recipe / "path.sh").read_text().replace('"$recipe_root/../../bin', f'"{ROOT}/bin'))
    return recipe


def run_recipe(recipe: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUDIOTOK_PYTHON": sys.executable}
    return subprocess.run(["./run.sh", *map(str, args)], cwd=recipe, capture_output=True, text=True, env=env, timeout=600)


def test_step_audio_recipe_end_to_end(tmp_path, tokenizer_dir, cli):
    items = {
        f"utt{i}": write_audio(tmp_path / "in" / f"utt{i}.wav", tone_burst(rate, tone=1.2 + 0.4 * i, freq=200 + 80 * i, seed=i), rate)
        for i, rate in enumerate((16000, 22050, 16000))
    }
    data = make_data_dir(tmp_path / "corpus", items)
    recipe = copy_recipe(tmp_path)
    run = run_recipe(recipe, "--data", data, "--tokenizer-dir", tokenizer_dir, "--nj", 2)
    assert run.returncode == 0, run.stderr
    out = recipe / "exp" / "step_audio" / "corpus_llm-input"
    clean = recipe / "data" / "corpus_sa_llm-input"
    # The same tokens as the commands run by hand on the front end's output.
    by_hand_vq02 = cli("tokenize", recipe / "exp" / "vq02", clean)
    by_hand_vq06 = cli("s3-extract", "--model", tokenizer_dir / "speech_tokenizer_v1.onnx", "--long-audio", "step-audio", clean)
    assert (out / "vq02.txt").read_text() == by_hand_vq02.text and (out / "vq06.txt").read_text() == by_hand_vq06.text
    strings = (out / "audio.txt").read_text().splitlines()
    assert [line.split()[0] for line in strings] == ["utt0", "utt1", "utt2"]
    ids = {line.split()[0]: list(map(int, line.split()[1:])) for line in (out / "tokens.txt").read_text().splitlines()}
    for line in strings:
        key, text = line.split(maxsplit=1)
        numbers = [int(n) for n in text.replace("<audio_", " ").replace(">", " ").split()]
        assert [n + 65536 for n in numbers] == ids[key] and all(0 <= n < 1024 + 64 for n in numbers)
    # Back apart: whole 2:3 groups of the original streams.
    split = cli(
        "deinterleave", out / "audio.txt", "--ratio", "2:3", "--offsets", "0,1024", "--format", "string", "-o", tmp_path / "a.txt", "-o", tmp_path / "b.txt"
    )
    assert split.returncode == 0, split.stderr
    for mine, theirs, size in ((tmp_path / "a.txt", out / "vq02.txt", 2), (tmp_path / "b.txt", out / "vq06.txt", 3)):
        for got, full in zip(mine.read_text().splitlines(), theirs.read_text().splitlines(), strict=True):
            got_units, full_units = got.split()[1:], full.split()[1:]
            assert got_units == full_units[: len(got_units)] and len(got_units) % size == 0 and len(got_units) > 0
    # A rerun skips every finished stage.
    again = run_recipe(recipe, "--data", data, "--tokenizer-dir", tokenizer_dir, "--nj", 2)
    assert again.returncode == 0 and again.stderr.count("already done") >= 3, again.stderr


# Real recordings at rates Step-Audio resamples from, and one it takes as it is (AUDIOTOK_TEST_AUDIO).
REAL_SPEECH = ("LJ050-0131.wav", "BASIC5000_0001.wav", "arctic_a0007.wav")


@pytest.fixture(scope="module")
def front_end_corpus(tmp_path_factory):
    """A recipe copy and a corpus: speech-like bursts at 22.05 kHz, 44.1 kHz stereo and 48 kHz
    24-bit, one at 16 kHz, quiet ones (below the norm's 0.01 floor) and silence only at the
    start or end; plus the real recordings when AUDIOTOK_TEST_AUDIO is set."""
    directory = tmp_path_factory.mktemp("front_end")
    audio = directory / "in"
    burst = tone_burst
    items = {
        "a22": write_audio(audio / "a22.wav", burst(22050, lead=0.4, tone=0.9, tail=0.6, freq=310, noise=3e-3, seed=1), 22050),
        "b44": write_audio(audio / "b44.wav", np.stack([burst(44100, tone=0.7, seed=2), 0.3 * burst(44100, tone=0.7, freq=190, seed=3)], axis=1), 44100),
        "c48": write_audio(audio / "c48.flac", burst(48000, lead=0.02, tone=1.1, tail=0.03, freq=520, seed=4), 48000, subtype="PCM_24"),
        "d16": write_audio(audio / "d16.wav", burst(16000, lead=1.0, tone=0.5, tail=0.1, seed=5), 16000),
        "e44": write_audio(audio / "e44.wav", 0.004 * burst(44100, tone=0.6, freq=700, noise=1e-2, seed=6), 44100),
    }
    speech = os.environ.get("AUDIOTOK_TEST_AUDIO")
    if speech and Path(speech).is_dir():
        items.update({f"real-{name.split('.')[0]}": str(Path(speech) / name) for name in REAL_SPEECH})
    return copy_recipe(directory), make_data_dir(directory / "corpus", items), items


@pytest.mark.parametrize("mode", ["llm-input", "tts-prompt", "none"])
def test_each_front_end_equals_step_audios_preprocessing_to_the_bit(front_end_corpus, mode):
    """Stage 1's audio for each --front-end is what Step-Audio's preprocess_wav makes on that call
    path (torchaudio resampling, float32 throughout), sample for sample and bit for bit."""
    recipe, data, items = front_end_corpus
    run = run_recipe(recipe, "--data", data, "--stop-stage", 1, "--front-end", mode)
    assert run.returncode == 0, run.stderr
    clean = recipe / "data" / f"corpus_sa_{mode}"
    rows = dict(line.split(maxsplit=1) for line in (clean / "wav.scp").read_text().splitlines())
    assert sorted(rows) == sorted(items)
    reference = step_audio.FRONT_ENDS[mode]
    for key, path in rows.items():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "FLOAT"), key
        got = sf.read(path, dtype="float32")[0]
        expected = reference(*step_audio.load_audio(items[key]))
        assert expected.dtype == np.float32 and len(got) == len(expected), key
        assert np.array_equal(got, expected), f"{key}: {np.count_nonzero(got != expected)} samples differ"


def test_a_recording_below_16_khz_is_refused_by_key(front_end_corpus):
    """Step-Audio asserts that it only downsamples: the recipe names the key and fails the stage."""
    recipe, _, _ = front_end_corpus
    low = make_data_dir(recipe.parent / "low", {"n8k": write_audio(recipe.parent / "n8k.wav", tone_burst(8000), 8000)})
    run = run_recipe(recipe, "--data", low, "--stop-stage", 1)
    assert run.returncode != 0
    assert "n8k: 8000 Hz is below --rate 16000: not upsampled" in run.stderr and "Traceback" not in run.stderr, run.stderr
    bad = run_recipe(recipe, "--data", low, "--stage", 1, "--stop-stage", 1, "--front-end", "trim")
    assert bad.returncode == 2 and bad.stderr.strip().endswith("error: unknown --front-end 'trim' (hint: llm-input, tts-prompt or none)")
