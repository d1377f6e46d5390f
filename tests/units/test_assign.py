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
    screened = NearestCentroid(centroids)
    labels = screened(x)
    np.testing.assert_array_equal(labels, reference_labels(x, centroids))
    np.testing.assert_array_equal(NearestCentroid(centroids, mode="fp32")(x), labels)
    assert screened.fallback_rows >= 400  # the near ties were re-scored in fp32


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
