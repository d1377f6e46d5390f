import json

import kaldiio
import numpy as np

from audiotok.units.bundle import Bundle
from tests.conftest import assert_no_traceback


def write_feats(directory, feats):
    """kaldiio archive + scp, as extract-feats writes them; returns the scp path."""
    directory.mkdir(parents=True, exist_ok=True)
    kaldiio.save_ark(str(directory / "feats.ark"), feats, scp=str(directory / "feats.scp"))
    return directory / "feats.scp"


def clustered(utterances=12, frames=40, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.uniform(-10, 10, (4, dim)).astype(np.float32)
    return {f"utt{i:02d}": means[rng.integers(4, size=frames)] + rng.standard_normal((frames, dim), dtype=np.float32) * 0.1 for i in range(utterances)}, means


def one_error_line(result, text):
    assert_no_traceback(result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], result.stderr


def test_writes_a_bundle_then_skips_and_force_redoes_it_identically(cli, tmp_path):
    feats, means = clustered()
    scp = write_feats(tmp_path / "dump", feats)
    (tmp_path / "dump" / "feats.scp.recipe.json").write_text(json.dumps({"backend": "hf", "layer": 6, "dim": 6}))
    out = tmp_path / "exp" / "km4"
    result = cli("fit-kmeans", "--k", "4", "--seed", "3", f"scp:{scp}", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert "fit-kmeans --k 4 --seed 3" in result.stderr.splitlines()[0]
    assert "iteration 1: inertia" in result.stderr and "sampled 480 frames of 12 utterances" in result.stderr

    config = json.loads((out / "config.json").read_text())
    assert config["k"] == 4 and config["dim"] == 6
    assert config["recipe"] == {"backend": "hf", "layer": 6, "dim": 6}
    kmeans = config["kmeans"]
    assert (kmeans["algorithm"], kmeans["seed"], kmeans["k"], kmeans["frames"], kmeans["utterances"]) == ("full", 3, 4, 480, 12)
    assert kmeans["iterations"] >= 1 and kmeans["inertia"] > 0 and kmeans["seconds"] >= 0
    assert kmeans["command"].startswith("audiotok fit-kmeans")
    bundle = Bundle.load(out)
    assert np.abs(np.sort(bundle.centroids, axis=0) - np.sort(means, axis=0)).max() < 0.1
    centroids = (out / "centroids.npy").read_bytes()

    again = cli("fit-kmeans", "--k", "4", "--seed", "3", f"scp:{scp}", out)
    assert again.returncode == 0 and "already done" in again.stderr and "iteration" not in again.stderr
    forced = cli("fit-kmeans", "--k", "4", "--seed", "3", "--force", f"ark:{tmp_path / 'dump' / 'feats.ark'}", out)
    assert forced.returncode == 0 and "iteration 1" in forced.stderr
    assert (out / "centroids.npy").read_bytes() == centroids  # another process, the same bytes
    assert json.loads((out / "config.json").read_text())["recipe"] == {"dim": 6}  # no recipe beside the ark


def test_sampling_options_and_minibatch(cli, tmp_path):
    feats, _ = clustered(utterances=30)
    scp = write_feats(tmp_path, feats)
    out = tmp_path / "km"
    args = ("fit-kmeans", "--k", "4", "--percent", "50", "--max-frames", "300", "--algorithm", "minibatch", "--batch-size", "64", f"scp:{scp}", out)
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    kmeans = json.loads((out / "config.json").read_text())["kmeans"]
    assert kmeans["frames"] == 300 and kmeans["algorithm"] == "minibatch" and kmeans["percent"] == 50
    assert "epoch 1: inertia" in result.stderr


def test_bad_inputs_fail_with_one_line(cli, tmp_path):
    feats, _ = clustered(utterances=2, frames=5)
    small = write_feats(tmp_path / "small", feats)
    result = cli("fit-kmeans", "--k", "11", f"scp:{small}", tmp_path / "a")
    assert result.returncode == 1
    one_error_line(result, "k=11 is larger than the 10 sampled frames")
    assert not (tmp_path / "a" / "centroids.npy").exists()

    mixed = write_feats(tmp_path / "mixed", {**feats, "utt09": np.zeros((3, 7), np.float32)})
    result = cli("fit-kmeans", "--k", "2", f"scp:{mixed}", tmp_path / "b")
    assert result.returncode == 1
    one_error_line(result, "utt09: features have dimension 7, earlier utterances 6")

    nan = dict(feats)
    nan["utt01"] = nan["utt01"].copy()
    nan["utt01"][2, 3] = np.nan
    result = cli("fit-kmeans", "--k", "2", f"ark:{write_feats(tmp_path / 'nan', nan).with_suffix('.ark')}", tmp_path / "c")
    assert result.returncode == 1
    one_error_line(result, "utt01: features hold NaN or Inf")

    (tmp_path / "empty.ark").write_bytes(b"")
    result = cli("fit-kmeans", "--k", "2", f"ark:{tmp_path / 'empty.ark'}", tmp_path / "d")
    assert result.returncode == 1
    one_error_line(result, "no frames to fit k-means on")

    result = cli("fit-kmeans", "--k", "2", "--algorithm", "elkan", f"scp:{small}", tmp_path / "e")
    assert result.returncode == 2
    one_error_line(result, "unknown --algorithm 'elkan'")
