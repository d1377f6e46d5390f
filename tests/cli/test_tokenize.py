import json

import numpy as np

from audiotok.io.tables import read_matrices
from audiotok.units.bundle import Bundle
from tests.conftest import make_data_dir, sine, write_audio


def bundle_from(features_ark, out, k=8):
    feats = np.concatenate([m for _, m in read_matrices(f"ark:{features_ark}")])
    recipe = json.loads((features_ark.parent / (features_ark.name + ".recipe.json")).read_text())
    Bundle(feats[:: max(1, len(feats) // k)][:k].copy(), recipe, {"seed": 0}).save(out)
    return out


def corpus(tmp_path):
    items = {f"u{i}": write_audio(tmp_path / "in" / f"u{i}.wav", sine(150 + 90 * i, 16000, 0.6 + 0.2 * i) + 0.05 * np.sin(np.arange(int(16000 * (0.6 + 0.2 * i))) / 7), 16000) for i in range(3)}
    return make_data_dir(tmp_path / "data", items)


def test_tokenize_equals_extract_then_quantize(cli, tmp_path):
    data = corpus(tmp_path)
    assert cli("extract-feats", "--backend", "mfcc", "--deltas", data, f"ark:{tmp_path}/f.ark").returncode == 0
    bundle = bundle_from(tmp_path / "f.ark", tmp_path / "km")
    two_step = cli("quantize", bundle, f"ark:{tmp_path}/f.ark")
    one_step = cli("tokenize", bundle, data)
    assert one_step.returncode == 0, one_step.stderr
    assert one_step.text == two_step.text and len(one_step.text.splitlines()) == 3


def test_tokenize_with_an_encoder_checks_its_weights(cli, tmp_path, tiny_hubert, tiny_wav2vec2):
    data = corpus(tmp_path)
    assert cli("extract-feats", "--model", tiny_hubert, "--layer", 1, data, f"ark:{tmp_path}/h.ark").returncode == 0
    bundle = bundle_from(tmp_path / "h.ark", tmp_path / "km")
    one_step = cli("tokenize", bundle, data, "--dedup", "--format", "jsonl")
    assert one_step.returncode == 0, one_step.stderr
    two_step = cli("quantize", bundle, f"ark:{tmp_path}/h.ark", "--dedup", "--format", "jsonl")
    assert one_step.text == two_step.text
    wrong = cli("tokenize", bundle, data, "--model", tiny_wav2vec2)
    assert wrong.returncode == 1 and "the bundle was made with" in wrong.stderr
