import numpy as np
import pytest

from audiotok.io.unit_writer import run_lengths
from audiotok.units.assign import NearestCentroid


def reference_labels(x, c):
    """fairseq's ApplyKmeans: argmin of squared distances in float64 (no rounding doubts)."""
    x, c = x.astype(np.float64), c.astype(np.float64)
    return np.argmin((x**2).sum(1, keepdims=True) - 2 * x @ c.T + (c**2).sum(1), axis=1)


@pytest.mark.parametrize("dim,k", [(39, 50), (768, 500), (1280, 1024)])
def test_screened_labels_equal_the_exact_argmin(dim, k):
    rng = np.random.default_rng(dim)
    centroids = rng.standard_normal((k, dim)).astype(np.float32)
    # Frames near centroids, and frames exactly between two centroids (near ties).
    near = centroids[rng.integers(0, k, 3000)] + 0.3 * rng.standard_normal((3000, dim)).astype(np.float32)
    pairs = rng.integers(0, k, (500, 2))
    between = (0.5 * (centroids[pairs[:, 0]] + centroids[pairs[:, 1]]) + 1e-3 * rng.standard_normal((500, dim))).astype(np.float32)
    x = np.concatenate([near, between])
    expected = reference_labels(x, centroids)
    for screen in ("auto", "bf16", "int8", "fp32"):
        assigner = NearestCentroid(centroids, mode=screen)
        np.testing.assert_array_equal(assigner(x), expected, err_msg=screen)
        if screen != "fp32":
            assert assigner.rescored_rows >= 400  # the near ties were scored again in float64


def test_blocks_and_tiny_inputs():
    rng = np.random.default_rng(1)
    centroids = rng.standard_normal((20, 8)).astype(np.float32)
    x = rng.standard_normal((NearestCentroid.BLOCK * 2 + 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(NearestCentroid(centroids)(x), reference_labels(x, centroids))
    assert NearestCentroid(centroids[:1])(x[:3]).tolist() == [0, 0, 0]
    assert NearestCentroid(centroids)(x[:0]).tolist() == []


def test_run_lengths():
    units, durations = run_lengths(np.array([5, 5, 5, 2, 2, 7, 5, 5]))
    assert units.tolist() == [5, 2, 7, 5] and durations.tolist() == [3, 2, 1, 2]
    assert [a.tolist() for a in run_lengths(np.array([], dtype=np.int64))] == [[], []]


@pytest.mark.parametrize("screen_kind", ["int8", "bf16", "fp32"])
@pytest.mark.parametrize("shape", ["gaussian", "non-negative", "outlier dimensions", "tiny", "huge"])
def test_the_screens_bound_keeps_the_nearest_centroid_in_reach(shape, screen_kind):
    """A screen's bound keeps the nearest centroid within reach of the best score, for every frame."""
    from audiotok.units.assign import Bf16Screen, Fp32Screen, Int8Screen

    rng = np.random.default_rng(7)
    dim, k = 96, 64
    x = rng.standard_normal((3000, dim))
    if shape == "non-negative":
        x = np.maximum(x, 0) ** 2
    elif shape == "outlier dimensions":
        x[:, :3] *= 50
    scale = {"tiny": 1e-4, "huge": 1e4}.get(shape, 1.0)
    x = (x * scale).astype(np.float32)
    centroids = (x[rng.choice(len(x), k, replace=False)] + 0.1 * scale * rng.standard_normal((k, dim))).astype(np.float32)
    if screen_kind == "int8":
        scores, candidates, bound, every = Int8Screen(centroids)(x, np.array([k]))
        every = np.empty_like(scores)
        np.put_along_axis(every, candidates, scores, axis=1)
    else:
        scores, candidates, bound, every = (Bf16Screen(centroids) if screen_kind == "bf16" else Fp32Screen(centroids, "cpu"))(x)
    nearest = reference_labels(x, centroids)
    rows = np.arange(len(x))
    # What exactness rests on: the nearest centroid's score is within twice the bound of the best
    # score (so it is among the centroids scored again), and a frame whose best leads by more
    # than that has the nearest centroid first.
    assert np.all(every[rows, nearest] >= every.max(1) - 2 * bound), screen_kind
    sure = scores[:, 0] - scores[:, 1] > 2 * bound
    np.testing.assert_array_equal(candidates[sure, 0], nearest[sure])
    assert np.median(bound) < 0.5 * np.median(every.max(1) - every.min(1))  # and the bound is not vacuous


def test_frames_with_nan_or_inf_get_no_label_and_the_others_theirs():
    rng = np.random.default_rng(3)
    centroids = rng.standard_normal((10, 16)).astype(np.float32)
    x = rng.standard_normal((50, 16)).astype(np.float32)
    x[4, 2], x[30, 0] = np.nan, np.inf
    for mode in ("auto", "bf16", "int8", "fp32"):
        labels = NearestCentroid(centroids, mode=mode).label_many([x[:25], x[25:]])
        expected = reference_labels(np.nan_to_num(x), centroids)
        expected[[4, 30]] = -1
        np.testing.assert_array_equal(np.concatenate(labels), expected)
        with pytest.raises(Exception, match="features hold NaN or Inf"):
            NearestCentroid(centroids, mode=mode)(x)


def test_the_shipped_screen_graph_is_the_one_the_builder_makes():
    from audiotok.units.screen_graph import GRAPH_FILE, build

    assert GRAPH_FILE.read_bytes() == build(), "rebuild it: python -m audiotok.units.screen_graph"
