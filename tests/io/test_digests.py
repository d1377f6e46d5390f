"""Content digests: what identifies a bundle or a model in signatures and recipes."""

import numpy as np

from audiotok.io.digests import content_digest, model_digest
from audiotok.units.bundle import Bundle


def test_a_bundle_is_its_config_and_centroids_not_the_units_written_beside_them(tmp_path):
    Bundle(np.eye(3, dtype=np.float32), recipe={"backend": "mfcc"}).save(tmp_path / "km")
    before = model_digest(str(tmp_path / "km"))
    (tmp_path / "km" / "units.txt").write_text("a 1 2\n")  # recipes write units into the bundle's directory
    assert model_digest(str(tmp_path / "km")) == before
    Bundle(np.eye(3, dtype=np.float32) * 2, recipe={"backend": "mfcc"}).save(tmp_path / "km")  # refit at the same path
    assert model_digest(str(tmp_path / "km")) != before


def test_a_model_directory_is_every_file_but_markers_and_temporaries(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"weights")
    before = content_digest(tmp_path / "model")
    (tmp_path / "model" / ".done").write_text("{}")
    (tmp_path / "model" / "config.json.tmp.123").write_text("{}")
    assert content_digest(tmp_path / "model") == before
    (tmp_path / "model" / "config.json").write_text("{}")
    assert content_digest(tmp_path / "model") != before
    assert model_digest(f"{tmp_path / 'model'},version=v2") == content_digest(tmp_path / "model")
    assert model_digest("openai/whisper-tiny") is None
