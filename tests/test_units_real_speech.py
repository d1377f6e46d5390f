"""MFCC units of the shared real recordings, scored against their MFA phone alignments."""

import json

import pytest


@pytest.mark.slow
def test_mfcc_units_carry_phone_information(cli, speech_dir, tmp_path):
    assert cli("extract-feats", "--backend", "mfcc", "--deltas", speech_dir, f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp").returncode == 0
    fit = cli("fit-kmeans", "--k", 50, f"scp:{tmp_path}/f.scp", tmp_path / "km")
    assert fit.returncode == 0, fit.stderr
    assert cli("quantize", tmp_path / "km", f"scp:{tmp_path}/f.scp", "-o", tmp_path / "units.txt").returncode == 0
    result = cli("report", tmp_path / "units.txt", "--bundle", tmp_path / "km", "--alignments", speech_dir, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.text)
    assert report["utterances"] == 50 and report["aligned_utterances"] == 3
    assert report["aligned_frames"] > 5000 and report["phones"] > 40
    # Chance PNMI for k=50 on these 5.4k frames is about 0.1 (bench/bench_units_pnmi.py); MFCC units are far above it.
    assert report["pnmi"] > 0.3 and report["phone_purity"] > 0.3
