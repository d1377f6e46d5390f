import json

import numpy as np

from audiotok.io.tables import read_matrices
from tests.conftest import make_data_dir, sine, write_audio


def corpus(tmp_path):
    items = {
        f"u{i}": write_audio(
            tmp_path / "in" / f"u{i}.wav", sine(150 + 90 * i, 16000, 0.5 + 0.2 * i) + 0.05 * np.sin(np.arange(int(16000 * (0.5 + 0.2 * i))) / 5), 16000
        )
        for i in range(3)
    }
    return make_data_dir(tmp_path / "data", items)


def nearest(frames, centroids):
    distances = ((frames[:, None, :].astype(np.float64) - centroids[None].astype(np.float64)) ** 2).sum(-1)
    return distances.argmin(1)


def test_imported_text_centroids_tokenize_like_their_nearest_neighbour(cli, tmp_path):
    data = corpus(tmp_path)
    assert cli("extract-feats", "--backend", "mfcc", data, f"ark:{tmp_path}/f.ark").returncode == 0
    feats = dict(read_matrices(f"ark:{tmp_path}/f.ark"))
    centroids = np.concatenate(list(feats.values()))[::7][:6]
    np.savetxt(tmp_path / "km.txt", centroids)
    made = cli("import-centroids", tmp_path / "km.txt", tmp_path / "km", "--backend", "mfcc")
    assert made.returncode == 0, made.stderr
    config = json.loads((tmp_path / "km" / "config.json").read_text())
    assert config["k"] == 6 and config["dim"] == 13 and config["recipe"]["backend"] == "mfcc"
    tokens = cli("tokenize", tmp_path / "km", data)
    assert tokens.returncode == 0, tokens.stderr
    expected = "".join(f"{key} {' '.join(map(str, nearest(m, centroids.astype(np.float32))))}\n" for key, m in sorted(feats.items()))
    assert tokens.text == expected
    # --recipe-from the feature file gives the same bundle recipe.
    again = cli("import-centroids", tmp_path / "km.txt", tmp_path / "km2", "--recipe-from", f"ark:{tmp_path}/f.ark")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "km2" / "config.json").read_text())["recipe"] == config["recipe"]


def test_imported_npy_centroids_record_the_encoder(cli, tmp_path, tiny_hubert):
    data = corpus(tmp_path)
    assert cli("extract-feats", "--model", tiny_hubert, "--layer", 1, data, f"ark:{tmp_path}/h.ark").returncode == 0
    frames = np.concatenate([m for _, m in read_matrices(f"ark:{tmp_path}/h.ark")])
    np.save(tmp_path / "km.npy", frames[:5])
    made = cli("import-centroids", tmp_path / "km.npy", tmp_path / "km", "--model", tiny_hubert, "--layer", 1)
    assert made.returncode == 0, made.stderr
    recipe = json.loads((tmp_path / "h.ark.recipe.json").read_text())
    assert json.loads((tmp_path / "km" / "config.json").read_text())["recipe"]["model_hash"] == recipe["model_hash"]
    assert cli("quantize", tmp_path / "km", f"ark:{tmp_path}/h.ark").returncode == 0
    # Finished: a rerun does nothing; other centroids redo it.
    assert "already done" in cli("import-centroids", tmp_path / "km.npy", tmp_path / "km", "--model", tiny_hubert, "--layer", 1).stderr


def test_import_errors_are_one_line(cli, tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(4, np.float32))
    np.save(tmp_path / "wide.npy", np.zeros((4, 20), np.float32))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "bad.txt").write_text("1 2\n3 x\n")
    cases = [
        (("flat.npy", "--backend", "mfcc"), 1, "must be a [k, dim] matrix"),
        (("wide.npy", "--backend", "mfcc"), 1, "centroids have dimension 20, the features are 13-dimensional"),
        (("objects.npy", "--backend", "mfcc"), 1, "holds Python objects (pickled data), which audiotok never loads"),
        (("bad.txt", "--backend", "mfcc"), 1, "is not a numeric matrix"),
        (("missing.npy", "--backend", "mfcc"), 1, "no such centroids file"),
        (("wide.npy",), 2, "say what features the centroids belong to"),
        (("wide.npy", "--recipe-from", f"ark:{tmp_path}/none.ark"), 1, "has no recorded recipe"),
        (("wide.npy", "--recipe-from", f"ark:{tmp_path}/none.ark", "--front-end", "seed004"), 2, "give either --recipe-from or the feature options"),
    ]
    for (name, *options), code, message in cases:
        result = cli("import-centroids", tmp_path / name, tmp_path / "out", *options)
        assert result.returncode == code and message in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) <= 2 and "Traceback" not in result.stderr
