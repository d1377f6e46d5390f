import logging
import re
import weakref

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from audiotok.errors import AudiotokError
from audiotok.units import kmeans
from audiotok.units.kmeans import FrameReservoir, assign, fit_kmeans, inertia, keep_utterance, kmeans_plusplus, sample_frames


def blobs(k=6, per=300, dim=8, spread=20.0, seed=0):
    """Well-separated Gaussian clusters: (frames, true means)."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-spread, spread, (k, dim)).astype(np.float32)
    frames = np.concatenate([m + rng.standard_normal((per, dim), dtype=np.float32) for m in means])
    return frames[rng.permutation(len(frames))], means


def utterances(count, frames=20, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(f"utt{i:05d}", rng.standard_normal((frames, dim), dtype=np.float32)) for i in range(count)]


@pytest.mark.parametrize("algorithm", ["full", "minibatch"])
def test_same_seed_gives_identical_bytes_and_another_seed_differs(algorithm):
    frames, _ = blobs(k=12, spread=3.0)
    fit = lambda seed: fit_kmeans(frames, 10, algorithm=algorithm, seed=seed, batch_size=500, max_iter=20).centroids  # noqa: E731
    first = fit(1)
    assert first.dtype == np.float32 and first.shape == (10, 8)
    assert fit(1).tobytes() == first.tobytes()
    assert fit(2).tobytes() != first.tobytes()


@pytest.mark.parametrize("algorithm,init_frames", [("full", 30000), ("full", 300), ("minibatch", 30000)])
def test_recovers_separated_clusters(algorithm, init_frames, monkeypatch):
    monkeypatch.setattr(kmeans, "INIT_FRAMES", init_frames)  # 300: k-means++ and a warm-up on a subset first
    frames, means = blobs()
    centroids = fit_kmeans(frames, len(means), algorithm=algorithm, seed=0, batch_size=256).centroids
    cost = np.linalg.norm(centroids[:, None] - means[None], axis=2)
    rows, cols = linear_sum_assignment(cost)
    # The mean of 300 unit-variance frames is off by about 1/sqrt(300) a coordinate.
    assert cost[rows, cols].max() < 0.5


def test_inertia_matches_a_direct_computation_and_lloyd_never_increases_it(caplog):
    frames, _ = blobs(k=20, spread=2.0, seed=3)
    centroids = frames[:15].copy()
    direct = ((frames[:, None, :].astype(np.float64) - centroids[None]) ** 2).sum(2).min(1).sum()
    assert inertia(frames, centroids) == pytest.approx(direct, rel=1e-9)
    labels, distances = assign(frames, centroids)
    assert np.array_equal(labels, ((frames[:, None] - centroids[None]) ** 2).sum(2).argmin(1))
    assert distances.sum() == pytest.approx(direct, rel=1e-5)

    with caplog.at_level(logging.INFO, logger="audiotok"):
        result = fit_kmeans(frames, 15, seed=0, tol=0.0)
    logged = [float(m.group(1)) for r in caplog.records if (m := re.fullmatch(r"iteration \d+: inertia (\S+)", r.getMessage()))]
    assert len(logged) == result.iterations >= 2
    assert all(b <= a * (1 + 1e-6) for a, b in zip(logged, logged[1:]))
    assert result.inertia == pytest.approx(inertia(frames, result.centroids), rel=1e-12)
    assert result.inertia == pytest.approx(logged[-1], rel=1e-5)
    init = kmeans_plusplus(frames, 15, np.random.default_rng(0))
    assert result.inertia < inertia(frames, init)


def test_an_empty_cluster_restarts_on_the_worst_served_frame():
    frames, means = blobs(k=3, per=100)
    far = np.concatenate([means[:2], np.full((1, 8), 1e4, np.float32)])
    centroids, labels, _ = kmeans._lloyd(frames, far, max_iter=20, tol=0.0)
    assert np.bincount(labels, minlength=3).min() > 0 and np.abs(centroids).max() < 100


def test_minibatch_comes_close_to_lloyd():
    frames, _ = blobs(k=30, spread=4.0, seed=5)
    full = fit_kmeans(frames, 25, seed=0)
    mini = fit_kmeans(frames, 25, algorithm="minibatch", seed=0, batch_size=1000)
    assert mini.inertia < 1.05 * full.inertia


def test_more_inits_never_do_worse():
    frames, _ = blobs(k=30, spread=2.0, seed=7)
    one = fit_kmeans(frames, 20, seed=4)
    three = fit_kmeans(frames, 20, seed=4, n_init=3)
    assert three.inertia <= one.inertia


def test_percent_sampling_is_seeded_order_free_and_near_the_share():
    keys = [f"spk{i}-utt{i * 7919 % 10007}" for i in range(5000)]
    kept = {key for key in keys if keep_utterance(key, 0, 10)}
    assert 450 < len(kept) < 550
    assert kept != {key for key in keys if keep_utterance(key, 1, 10)}
    assert all(keep_utterance(key, 0, 100) for key in keys[:10])

    table = utterances(300)
    forward = sample_frames(table, percent=30, seed=5)
    backward = sample_frames(table[::-1], percent=30, seed=5)
    assert forward.utterances_seen == 300 and forward.utterances_kept == forward.utterances == backward.utterances
    assert forward.frames_kept == len(forward.frames) == 20 * forward.utterances_kept
    rows = lambda sample: sorted(map(bytes, sample.frames))  # noqa: E731
    assert rows(forward) == rows(backward)


def test_max_frames_is_a_seeded_uniform_reservoir():
    table = utterances(40, frames=25)
    capped = sample_frames(table, max_frames=100, seed=3)
    assert capped.frames.shape == (100, 4) and capped.frames_kept == 1000
    assert sample_frames(table, max_frames=100, seed=3).frames.tobytes() == capped.frames.tobytes()
    assert sample_frames(table, max_frames=100, seed=4).frames.tobytes() != capped.frames.tobytes()
    stream = np.concatenate([m for _, m in table])
    positions = {bytes(row): i for i, row in enumerate(stream)}
    picked = [positions[bytes(row)] for row in capped.frames]
    assert len(set(picked)) == 100  # drawn without replacement from the stream
    assert capped.utterances == len({p // 25 for p in picked})

    # Every frame of a 60-frame stream, fed in uneven blocks, is kept with probability 12/60.
    counts = np.zeros(60)
    ids = np.arange(60, dtype=np.float32)[:, None]
    for seed in range(1500):
        reservoir = FrameReservoir(12, seed)
        for start, stop in ((0, 5), (5, 30), (30, 31), (31, 60)):
            reservoir.add(ids[start:stop], 0)
        counts[reservoir.sample()[:, 0].astype(int)] += 1
    assert counts.sum() == 1500 * 12
    assert counts.min() > 0.75 * 300 and counts.max() < 1.25 * 300


def test_sampling_streams_without_holding_the_corpus(monkeypatch):
    """The reservoir never grows past --max-frames, and no utterance stays referenced after it is read."""
    alive = []
    capacities = []

    def stream():
        rng = np.random.default_rng(0)
        for i in range(400):
            matrix = rng.standard_normal((50, 16), dtype=np.float32)
            alive.append(weakref.ref(matrix))
            yield f"u{i}", matrix
            alive[:] = [ref for ref in alive if ref() is not None]
            assert len(alive) <= 2

    original_add = FrameReservoir.add

    def add(self, block, owner):
        original_add(self, block, owner)
        capacities.append(len(self.frames))

    monkeypatch.setattr(FrameReservoir, "add", add)
    sample = sample_frames(stream(), max_frames=1000, seed=0)
    assert sample.frames.shape == (1000, 16) and sample.frames_kept == 20000
    assert max(capacities) == 1000


def test_small_corpus_allocates_only_what_it_keeps():
    sample = sample_frames(utterances(3, frames=10), max_frames=1_000_000)
    assert sample.frames.shape == (30, 4) and sample.frames.base.shape[0] <= 1024


def test_bad_inputs_name_the_key():
    table = utterances(3)
    with pytest.raises(AudiotokError, match=r"^utt00002: features have dimension 5, earlier utterances 4$"):
        sample_frames(table[:2] + [("utt00002", np.zeros((3, 5), np.float32))])
    nan = table[1][1].copy()
    nan[4, 2] = np.nan
    with pytest.raises(AudiotokError, match=r"^utt00001: features hold NaN or Inf$"):
        sample_frames([table[0], ("utt00001", nan)])
    with pytest.raises(AudiotokError, match=r"k=61 is larger than the 60 sampled frames"):
        fit_kmeans(sample_frames(table).frames, 61)
    with pytest.raises(AudiotokError, match="no frames"):
        fit_kmeans(sample_frames([]).frames, 2)
    with pytest.raises(AudiotokError, match="unknown k-means algorithm"):
        fit_kmeans(sample_frames(table).frames, 2, algorithm="elkan")


@pytest.mark.parametrize("kept", [True, False])
def test_lloyd_assignment_is_a_float64_argmin_even_between_near_ties(kept, monkeypatch):
    """bf16 scores settle most frames; frames near a boundary between centroids are settled in float64."""
    monkeypatch.setattr(kmeans, "KEEP_BF16_BYTES", 2**40 if kept else 0)  # all frames in bf16 at once, or a chunk at a time
    rng = np.random.default_rng(11)
    dim, k = 64, 40
    # Far from the origin (the assigner centres the values) and packed close: many near-ties for bf16.
    centroids = (50 + rng.standard_normal((k, dim))).astype(np.float32)
    first, second = rng.integers(k, size=(2, 3000))
    share = rng.normal(0.5, 1e-3, 3000)[:, None]
    boundary = centroids[first] * share + centroids[second] * (1 - share) + rng.normal(0, 1e-2, (3000, dim))
    anywhere = 50 + 2 * rng.standard_normal((1000, dim))
    frames = np.concatenate([boundary, anywhere]).astype(np.float32)

    assigner = kmeans.LloydAssigner(frames, chunk=512)
    assert assigner.kept == kept
    assignment = assigner(centroids)
    squared = ((frames[:, None].astype(np.float64) - centroids[None].astype(np.float64)) ** 2).sum(2)
    assert np.array_equal(assignment.labels, squared.argmin(1))
    assert 0 < assignment.unsure < len(frames)  # both paths ran
    assert np.array_equal(assignment.counts, np.bincount(squared.argmin(1), minlength=k))
    expected_sums = np.stack([(frames[assignment.labels == j] - assigner.mean64).sum(0) for j in range(k)])
    assert np.allclose(assignment.sums, expected_sums, rtol=1e-5, atol=1e-3)
    assert assignment.inertia == pytest.approx(squared.min(1).sum(), rel=1e-6)
    assert inertia(frames, centroids) == pytest.approx(squared.min(1).sum(), rel=1e-9)


def test_a_sample_of_an_archive_is_seeded_and_does_not_depend_on_how_it_is_cut(tmp_path):
    """The same frame stream written as different utterances gives the same reservoir sample."""
    from audiotok.io.archives import encode_value
    from audiotok.io.tables import read_matrices

    stream = np.random.default_rng(2).standard_normal((3000, 6), dtype=np.float32)

    def archive(name, cuts):
        path = tmp_path / f"{name}.ark"
        with open(path, "wb") as out:
            for number, (start, stop) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
                out.write(f"utt{number:04d} ".encode() + encode_value(stream[start:stop], text=False))
        return f"ark:{path}"

    even = archive("even", list(range(0, 3001, 100)))
    uneven = archive("uneven", [0, 1, 250, 251, 1800, 2999, 3000])
    sample = sample_frames(read_matrices(even), max_frames=200, seed=5)
    assert sample.frames.shape == (200, 6) and sample.frames_kept == 3000
    assert sample_frames(read_matrices(even), max_frames=200, seed=5).frames.tobytes() == sample.frames.tobytes()
    assert sample_frames(read_matrices(uneven), max_frames=200, seed=5).frames.tobytes() == sample.frames.tobytes()
    assert sample_frames(read_matrices(even), max_frames=200, seed=6).frames.tobytes() != sample.frames.tobytes()


def test_fit_reports_the_time_of_each_phase():
    frames, _ = blobs(k=8, per=200)
    phases = fit_kmeans(frames, 8, seed=0).phases
    assert list(phases) == ["k-means++", "warm-up", "Lloyd", "inertia"] and all(seconds >= 0 for seconds in phases.values())
    assert list(fit_kmeans(frames, 8, algorithm="minibatch", batch_size=256).phases) == ["k-means++", "mini-batch", "inertia"]
