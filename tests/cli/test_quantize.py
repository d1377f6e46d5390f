import json

import kaldiio
import numpy as np
import pytest

from audiotok.io.recipes import recipe_sidecar
from audiotok.units.bundle import Bundle

RECIPE = {
    "backend": "mfcc",
    "sample_rate": 16000,
    "frame_rate": 100.0,
    "dim": 2,
    "model": None,
    "model_hash": None,
    "layer": None,
    "options": {"deltas": False},
}


@pytest.fixture
def setup(tmp_path):
    centroids = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    Bundle(centroids, RECIPE, {"seed": 0}).save(tmp_path / "km")
    feats = {"a": np.array([[0.1, 0], [0.2, 0.1], [9, 1], [9.5, 0], [0, 8]], np.float32), "b": np.array([[1, 9]], np.float32)}
    ark = tmp_path / "f.ark"
    kaldiio.save_ark(str(ark), feats, scp=str(tmp_path / "f.scp"))
    for table in (ark, tmp_path / "f.scp"):  # as extract-feats records it
        recipe_sidecar(table).write_text(json.dumps(RECIPE))
    return tmp_path


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " WARNING " in line]


def test_stdin_to_text_units(cli, setup):
    result = cli("quantize", setup / "km", input=(setup / "f.ark").read_bytes())
    assert result.returncode == 0, result.stderr
    assert result.text == "a 0 0 1 1 2\nb 2\n"
    # stdin has no recipe beside it: one line says nothing was checked, and how to check.
    (warning,) = warnings(result.stderr)
    assert "stdin: the features are not checked against the recipe of" in warning and "pass --recipe FILE.recipe.json" in warning
    checked = cli("quantize", setup / "km", "--recipe", recipe_sidecar(setup / "f.ark"), input=(setup / "f.ark").read_bytes())
    assert checked.returncode == 0 and checked.text == result.text and warnings(checked.stderr) == []
    by_scp = cli("quantize", setup / "km", f"scp:{setup}/f.scp", "--screen", "fp32")
    assert by_scp.text == result.text and warnings(by_scp.stderr) == []


def test_stdin_with_the_recipe_of_other_features_is_refused(cli, setup):
    from audiotok.dsp.front_end import SEED004

    feats = (setup / "f.ark").read_bytes()
    (setup / "fbank.recipe.json").write_text(json.dumps(dict(RECIPE, backend="fbank")))
    result = cli("quantize", setup / "km", "ark:-", "--recipe", setup / "fbank.recipe.json", input=feats)
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.splitlines()[-1] == (
        f"error: stdin (--recipe {setup}/fbank.recipe.json): features were made with backend='fbank', the bundle {setup}/km with 'mfcc' "
        "(hint: extract features with the bundle's recipe, or use audiotok tokenize)"
    )
    (setup / "seed.recipe.json").write_text(json.dumps(dict(RECIPE, front_end=SEED004.as_dict())))
    result = cli("quantize", setup / "km", "--recipe", setup / "seed.recipe.json", input=feats)
    assert result.returncode == 1 and "features were made with the audio front end seed004" in result.stderr.splitlines()[-1]
    missing = cli("quantize", setup / "km", "--recipe", setup / "none.json", input=feats)
    assert missing.returncode == 1 and missing.stderr.splitlines()[-1].startswith(f"error: no such recipe file: {setup}/none.json (hint:")


def test_dedup_durations_jsonl_and_npy(cli, setup):
    result = cli("quantize", setup / "km", f"ark:{setup}/f.ark", "--dedup", "--durations", setup / "dur.txt", "-o", setup / "u.txt")
    assert result.returncode == 0, result.stderr
    assert (setup / "u.txt").read_text() == "a 0 1 2\nb 2\n"
    assert (setup / "dur.txt").read_text() == "a 2 2 1\nb 1\n"
    lines = cli("quantize", setup / "km", f"ark:{setup}/f.ark", "--dedup", "--format", "jsonl").text.splitlines()
    assert json.loads(lines[0]) == {"key": "a", "tokens": [0, 1, 2], "durations": [2, 2, 1]}
    assert cli("quantize", setup / "km", f"ark:{setup}/f.ark", "--format", "npy", "-o", setup / "npy").returncode == 0
    assert np.load(setup / "npy" / "a.npy").tolist() == [0, 0, 1, 1, 2]
    usage = cli("quantize", setup / "km", f"ark:{setup}/f.ark", "--durations", setup / "d")
    assert usage.returncode == 2 and "--durations goes with --dedup" in usage.stderr


def test_mismatched_features_are_refused(cli, setup):
    kaldiio.save_ark(str(setup / "wide.ark"), {"a": np.zeros((3, 5), np.float32)})
    result = cli("quantize", setup / "km", f"ark:{setup}/wide.ark")
    assert result.returncode == 1
    assert "features have dimension 5, the bundle" in result.stderr and "expects 2" in result.stderr
    recipe_sidecar(setup / "f.ark").write_text(json.dumps(dict(RECIPE, backend="fbank")))
    result = cli("quantize", setup / "km", f"ark:{setup}/f.ark")
    assert result.returncode == 1 and "features were made with backend='fbank'" in result.stderr
    missing = cli("quantize", setup / "nothing", f"ark:{setup}/f.ark")
    assert missing.returncode == 1 and "no such tokenizer bundle" in missing.stderr


def test_nan_features_are_counted(cli, setup):
    kaldiio.save_ark(str(setup / "nan.ark"), {"a": np.zeros((3, 2), np.float32), "b": np.full((2, 2), np.nan, np.float32)})
    result = cli("quantize", setup / "km", f"ark:{setup}/nan.ark", "--min-success", 0.5)
    assert result.returncode == 0 and result.text == "a 0 0 0\n"
    assert "b: features hold NaN or Inf" in result.stderr and "done 1/2" in result.stderr


def test_shards_of_an_scp_join_to_the_whole_table(cli, setup):
    """--shard J/N quantises the J-th contiguous part of the scp; the parts, in order, are the whole."""
    feats = {f"u{i}": np.full((i + 1, 2), [0.0, 10.0] if i % 2 else [10.0, 0.0], np.float32) for i in range(5)}
    kaldiio.save_ark(str(setup / "g.ark"), feats, scp=str(setup / "g.scp"))
    whole = cli("quantize", setup / "km", f"scp:{setup}/g.scp").text
    parts = [cli("quantize", setup / "km", f"scp:{setup}/g.scp", "--shard", f"{j}/3") for j in (1, 2, 3)]
    assert [p.returncode for p in parts] == [0, 0, 0]
    assert [len(p.text.splitlines()) for p in parts] == [1, 2, 2]
    assert "".join(p.text for p in parts) == whole == "u0 1\nu1 2 2\nu2 1 1 1\nu3 2 2 2 2\nu4 1 1 1 1 1\n"
    archive = cli("quantize", setup / "km", f"ark:{setup}/g.ark", "--shard", "1/2")
    assert archive.returncode == 2 and "--shard needs an scp: table" in archive.stderr


def test_a_key_that_cannot_name_a_file_is_a_counted_skip_in_npy_output(cli, tmp_path):
    import kaldiio
    import numpy as np

    from tests.pipeline.shards import make_mfcc_bundle

    bundle = make_mfcc_bundle(tmp_path / "km")
    ark = tmp_path / "f.ark"
    frames = np.random.default_rng(0).normal(size=(5, 13)).astype(np.float32)
    with kaldiio.WriteHelper(f"ark:{ark}") as writer:
        for key in ("a", "b", "../../escape", "z"):  # C order: the bad key in the middle
            writer(key, frames)
    result = cli("quantize", bundle, f"ark:{ark}", "--format", "npy", "-o", tmp_path / "npy", "--min-success", 0.5)
    assert result.returncode == 0, result.stderr
    assert "WARNING audiotok: ../../escape: key '../../escape' cannot name a .npy file (it has a '/' or starts with '.')" in result.stderr
    assert "INFO audiotok: done 3/4\n" in result.stderr and "WARNING audiotok: 1 of 4 items failed: ../../escape" in result.stderr
    assert sorted(p.name for p in (tmp_path / "npy").glob("*.npy")) == ["a.npy", "b.npy", "z.npy"]
    assert not (tmp_path / "escape.npy").exists() and not (tmp_path.parent / "escape.npy").exists()
