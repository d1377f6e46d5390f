"""`audiotok abx` against ZeroSpeech's libri-light-abx2 (zrc_abx2, installed by `make venv` into
.venv/reference): the same six scores on the shared recordings and their alignments, for
MFCC features and for one-hot units."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from audiotok.abx.score import CONDITION_NAMES
from audiotok.io.archives import read_archive
from tests.conftest import ROOT, assert_no_traceback

REFERENCE = ROOT / ".venv" / "reference"
SCRIPT = ROOT / "tests" / "abx" / "zrc_abx2_reference.py"
# Two speakers: MFA's test speaker (ARPAbet) and SpeechBrain's spk1 (TIMIT-style), folded to one phone set.
SPEAKERS = {"acoustic_corpus": "mfa", "cold_corpus": "mfa", "spk1_snt1": "spk1", "spk1_snt2": "spk1", "spk1_snt3": "spk1", "spk1_snt4": "spk1"}
ALIGNMENTS = ("acoustic_corpus.TextGrid", "cold_corpus.TextGrid", "speechbrain_phone_alignments.tsv")
CODEBOOK = 16


def _reference(features: dict, item_dir, tmp_path) -> dict:
    path = tmp_path / "reference_features.npz"
    np.savez(path, **features)
    environment = {**os.environ, "PYTHONPATH": str(REFERENCE)}
    proc = subprocess.run([sys.executable, str(SCRIPT), str(path), str(item_dir), "100"], capture_output=True, text=True, env=environment, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _assert_equal(ours: dict, reference: dict) -> None:
    assert set(reference) == set(CONDITION_NAMES)
    for name, expected in reference.items():
        found = ours[f"abx_{name}"]
        if expected is None:
            assert found is None, name
        else:
            # zrc_abx2 sums float32 products and averages in float32; audiotok uses float64 products and sums.
            assert found == pytest.approx(expected, abs=2e-6), name


def test_features_and_units_score_as_zrc_abx2(tmp_path, speech_dir, cli):
    if not (REFERENCE / "zrc_abx2").is_dir():
        pytest.skip(f"zrc_abx2 is not installed in {REFERENCE} (make venv installs requirements-reference.txt there)")
    (tmp_path / "utt2spk").write_text("".join(f"{k} {v}\n" for k, v in sorted(SPEAKERS.items())))
    audio = [speech_dir / f"{key}.wav" for key in SPEAKERS]
    made = cli("extract-feats", "--backend", "mfcc", "--deltas", *audio, f"ark:{tmp_path / 'mfcc.ark'}")
    assert made.returncode == 0, made.stderr
    features = {key: value.astype(np.float32) for key, value in read_archive(f"ark:{tmp_path / 'mfcc.ark'}")}

    # Units: the nearest of 16 frames drawn from the features, written as a unit table.
    frames = np.concatenate(list(features.values()))
    centroids = frames[np.random.default_rng(0).choice(len(frames), CODEBOOK, replace=False)]
    units = {key: ((value[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1) for key, value in features.items()}
    (tmp_path / "units.txt").write_text("".join(f"{key} {' '.join(map(str, codes))}\n" for key, codes in units.items()))

    common = [f"--alignments={speech_dir / name}" for name in ALIGNMENTS] + ["--utt2spk", tmp_path / "utt2spk", "--fold-phones", "--format", "json"]
    dense = cli("abx", *common, "--write-items", tmp_path / "items", f"ark:{tmp_path / 'mfcc.ark'}")
    assert dense.returncode == 0, dense.stderr
    assert_no_traceback(dense.stderr)
    coded = cli("abx", *common, "--k", CODEBOOK, "--frame-rate", 100, tmp_path / "units.txt")
    assert coded.returncode == 0, coded.stderr
    ours_dense, ours_units = json.loads(dense.text), json.loads(coded.text)
    assert ours_dense["abx_phone_items"] > 300 and ours_dense["abx_speakers"] == 2

    _assert_equal(ours_dense, _reference(features, tmp_path / "items", tmp_path))
    onehot = {key: np.eye(CODEBOOK, dtype=np.float32)[codes] for key, codes in units.items()}
    _assert_equal(ours_units, _reference(onehot, tmp_path / "items", tmp_path))
    # Not a vacuous equality: real, different scores, with units worse than the features they came from.
    assert 0.1 < ours_dense["abx_phone_any_context_within_speaker"] < ours_units["abx_phone_any_context_within_speaker"] < 0.5
