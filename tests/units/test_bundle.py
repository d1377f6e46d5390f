import json

import numpy as np
import pytest

from audiotok.errors import AudiotokError
from audiotok.io.recipes import read_recipe_for, recipe_sidecar
from audiotok.units.bundle import Bundle

RECIPE = {"backend": "mfcc", "sample_rate": 16000, "frame_rate": 100.0, "dim": 3, "model_hash": None, "layer": None, "options": {"deltas": False}}


def test_save_load_round_trip(tmp_path):
    centroids = np.arange(12, dtype=np.float32).reshape(4, 3)
    Bundle(centroids, RECIPE, {"seed": 0, "inertia": 1.5}).save(tmp_path / "b")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (config["format"], config["k"], config["dim"], config["recipe"]["backend"]) == ("audiotok-bundle/1", 4, 3, "mfcc")
    loaded = Bundle.load(tmp_path / "b")
    np.testing.assert_array_equal(loaded.centroids, centroids)
    assert loaded.recipe == RECIPE and loaded.kmeans == {"seed": 0, "inertia": 1.5}


def test_broken_bundles_are_refused(tmp_path):
    with pytest.raises(AudiotokError, match="no such tokenizer bundle"):
        Bundle.load(tmp_path / "none")
    Bundle(np.zeros((4, 3), np.float32), RECIPE).save(tmp_path / "b")
    np.save(tmp_path / "b" / "centroids.npy", np.zeros((5, 3), np.float32))
    with pytest.raises(AudiotokError, match=r"shape \(5, 3\), config.json says k=4 dim=3"):
        Bundle.load(tmp_path / "b")
    np.save(tmp_path / "b" / "centroids.npy", np.full((4, 3), np.nan, np.float32))
    with pytest.raises(AudiotokError, match="NaN"):
        Bundle.load(tmp_path / "b")
    (tmp_path / "b" / "config.json").write_text("{}")
    with pytest.raises(AudiotokError, match="unknown bundle format"):
        Bundle.load(tmp_path / "b")


def test_feature_checks_name_the_difference(tmp_path):
    bundle = Bundle(np.zeros((4, 3), np.float32), RECIPE, path=tmp_path)
    bundle.check_features(3, dict(RECIPE, model="elsewhere"), "feats")  # the path is not identity
    with pytest.raises(AudiotokError, match="dimension 39, the bundle .* expects 3"):
        bundle.check_features(39, None, "feats")
    with pytest.raises(AudiotokError, match="options="):
        bundle.check_features(3, dict(RECIPE, options={"deltas": True}), "feats")
    ark = tmp_path / "f.ark"
    recipe_sidecar(ark).write_text(json.dumps(RECIPE))
    assert read_recipe_for(f"ark:{ark}") == RECIPE and read_recipe_for("ark:-") is None


def test_the_audio_front_end_is_part_of_the_recipe(tmp_path):
    from audiotok.dsp.front_end import NONE, SEED004, recorded_front_end

    seed = dict(RECIPE, front_end=SEED004.as_dict())
    Bundle(np.zeros((4, 3), np.float32), seed).save(tmp_path / "seed")
    bundle = Bundle.load(tmp_path / "seed")
    assert recorded_front_end(bundle.recipe) == SEED004
    bundle.check_features(3, dict(seed, front_end=dict(SEED004.as_dict(), name="renamed")), "feats")  # steps count, not names
    with pytest.raises(
        AudiotokError, match=r"feats: features were made with the audio front end none \(soxr VHQ resampling\), the bundle .* with seed004 \(soxr"
    ):
        bundle.check_features(3, RECIPE, "feats")  # recorded before front ends were: resampling alone
    # A bundle written before front ends were recorded loads, means `none`, and takes features that say `none`.
    Bundle(np.zeros((4, 3), np.float32), RECIPE).save(tmp_path / "old")
    assert "front_end" not in json.loads((tmp_path / "old" / "config.json").read_text())["recipe"]
    old = Bundle.load(tmp_path / "old")
    assert recorded_front_end(old.recipe) == NONE
    old.check_features(3, dict(RECIPE, front_end=NONE.as_dict()), "feats")
    with pytest.raises(AudiotokError, match="audio front end seed004"):
        old.check_features(3, seed, "feats")
