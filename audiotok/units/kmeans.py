"""k-means for tokenizer bundles: sample frames from a feature stream, then fit centroids.

    sample = sample_frames(read_matrices("scp:feats.scp"), percent=10, max_frames=1_000_000, seed=0)
    result = fit_kmeans(sample.frames, k=500, seed=0)     # result.centroids [k, dim] float32

Sampling streams the archive once and never holds more than `max_frames`
frames: an utterance is kept when a hash of (seed, key) falls below
`percent` (so the choice does not depend on order or on other keys), and the
kept frames go through a seeded reservoir. Fitting starts from k-means++
and runs either Lloyd iterations (`full`, exact assignment of every frame
by one float32 GEMM a chunk) or mini-batch updates (`minibatch`, sklearn's
per-centroid learning rates). The same frames and seed give bit-identical
centroids run to run on one machine and thread count.
"""

import hashlib
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from audiotok.errors import AudiotokError

log = logging.getLogger(__name__)

ALGORITHMS = ("full", "minibatch")
CHUNK = 16384  # frames a GEMM: a [CHUNK, k] float32 distance block stays small
INIT_FRAMES = 30000  # k-means++ runs on this many frames (sklearn's init_size); Lloyd fixes up the rest


# ---------------------------------------------------------------- sampling


def keep_utterance(key: str, seed: int, percent: float) -> bool:
    """True for about `percent`% of keys, decided by the key and seed alone."""
    if percent >= 100:
        return True
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < percent / 100 * 2**64


class FrameReservoir:
    """A uniform sample of at most `capacity` frames of a stream (algorithm R, a block at a time).

    Holds only the sample: the frames, and which utterance each came from.
    """

    def __init__(self, capacity: int, seed: int):
        self.capacity = capacity
        self.rng = np.random.default_rng([seed, 1])  # its own stream: independent of the k-means draws
        self.seen = 0
        self.frames: np.ndarray | None = None
        self.owners = np.zeros(0, dtype=np.int64)
        self.size = 0

    def add(self, block: np.ndarray, owner: int) -> None:
        room = self.capacity - self.size
        head = block[:room]
        if len(head):
            self._grow(self.size + len(head), block.shape[1])
            self.frames[self.size : self.size + len(head)] = head
            self.owners[self.size : self.size + len(head)] = owner
            self.size += len(head)
        tail = block[len(head) :]
        first = self.seen + len(head)
        self.seen += len(block)
        if not len(tail):
            return
        # Frame number t (0-based) replaces slot j ~ U[0, t] when j < capacity.
        slots = self.rng.integers(0, np.arange(first, first + len(tail)) + 1)
        hits = np.flatnonzero(slots < self.capacity)
        # Of several frames drawing one slot, the last wins, as one at a time would have it.
        reversed_slots = slots[hits][::-1]
        _, last = np.unique(reversed_slots, return_index=True)
        chosen = hits[::-1][last]
        self.frames[slots[chosen]] = tail[chosen]
        self.owners[slots[chosen]] = owner

    def _grow(self, needed: int, dim: int) -> None:
        # Doubling up to capacity: a small corpus never allocates the whole cap.
        if self.frames is not None and len(self.frames) >= needed:
            return
        size = min(self.capacity, max(needed, 2 * (0 if self.frames is None else len(self.frames)), 1024))
        frames = np.empty((size, dim), dtype=np.float32)
        owners = np.empty(size, dtype=np.int64)
        if self.frames is not None:
            frames[: self.size] = self.frames[: self.size]
            owners[: self.size] = self.owners[: self.size]
        self.frames, self.owners = frames, owners

    def sample(self) -> np.ndarray:
        return np.empty((0, 0), np.float32) if self.frames is None else self.frames[: self.size]


@dataclass
class FrameSample:
    frames: np.ndarray  # [n, dim] float32
    dim: int
    utterances: int  # utterances with at least one frame in `frames`
    utterances_kept: int  # utterances --percent kept
    utterances_seen: int
    frames_kept: int  # frames of the kept utterances, before the --max-frames cap


def sample_frames(matrices: Iterable[tuple[str, np.ndarray]], percent: float = 100.0, max_frames: int | None = None, seed: int = 0) -> FrameSample:
    """Stream (key, matrix) pairs once, keeping a seeded sample of their frames.

    A vector counts as one frame. Raises AudiotokError naming the key for a
    dimension that differs from the first utterance's, or for NaN/Inf.
    """
    if not 0 < percent <= 100:
        raise AudiotokError(f"--percent must be within (0, 100], got {percent:g}")
    reservoir = FrameReservoir(max_frames if max_frames else np.iinfo(np.int64).max, seed)
    dim = None
    seen = kept = 0
    for key, matrix in matrices:
        matrix = np.asarray(matrix)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2:
            raise AudiotokError(f"{key}: features have {matrix.ndim} dimensions, expected a [frames, dim] matrix")
        if dim is None:
            dim = matrix.shape[1]
        elif matrix.shape[1] != dim:
            raise AudiotokError(f"{key}: features have dimension {matrix.shape[1]}, earlier utterances {dim}", "make all features with one recipe")
        if not np.all(np.isfinite(matrix)):
            raise AudiotokError(f"{key}: features hold NaN or Inf", "check the feature extraction of this utterance")
        seen += 1
        if not keep_utterance(key, seed, percent):
            continue
        kept += 1
        if len(matrix):
            reservoir.add(matrix.astype(np.float32, copy=False), seen - 1)
    frames = reservoir.sample()
    return FrameSample(
        frames=frames,
        dim=dim or 0,
        utterances=len(np.unique(reservoir.owners[: reservoir.size])),
        utterances_kept=kept,
        utterances_seen=seen,
        frames_kept=reservoir.seen,
    )


# ---------------------------------------------------------------- assignment


def _torch():
    import torch

    return torch


def assign(frames, centroids) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each frame and the squared distance to it (float32, by GEMM)."""
    torch = _torch()
    x = torch.as_tensor(frames)
    c = torch.as_tensor(centroids)
    centroid_norms = (c * c).sum(1)
    labels = torch.empty(len(x), dtype=torch.int64)
    distances = torch.empty(len(x), dtype=torch.float32)
    for start in range(0, len(x), CHUNK):
        block = x[start : start + CHUNK]
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; the argmin needs only the last two terms.
        scores = torch.addmm(centroid_norms, block, c.T, alpha=-2)
        best, index = scores.min(1)
        labels[start : start + CHUNK] = index
        distances[start : start + CHUNK] = (best + (block * block).sum(1)).clamp_(min=0)
    return labels.numpy(), distances.numpy()


def inertia(frames: np.ndarray, centroids: np.ndarray) -> float:
    """Sum over frames of the squared distance to the nearest centroid, summed exactly (float64).

    The GEMM only picks the centroid: its |x|^2 - 2x.c + |c|^2 loses digits
    when features sit far from the origin, so distances are recomputed directly.
    """
    return _exact_inertia(frames, centroids, assign(frames, centroids)[0])


def _exact_inertia(frames: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for start in range(0, len(frames), CHUNK):
        diff = frames[start : start + CHUNK].astype(np.float64) - centroids[labels[start : start + CHUNK]]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


# ---------------------------------------------------------------- fitting


@dataclass
class KMeansResult:
    centroids: np.ndarray  # [k, dim] float32
    inertia: float  # exact, over the frames fitted
    iterations: int  # Lloyd iterations or mini-batch epochs
    seconds: float


def kmeans_plusplus(frames: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ (Arthur & Vassilvitskii; sklearn's 2 + ln k trials a step): [k, dim] float32."""
    torch = _torch()
    x = torch.as_tensor(frames)
    norms = (x * x).sum(1)
    trials = 2 + int(math.log(k))
    chosen = [int(rng.integers(len(frames)))]
    closest = (norms - 2 * (x @ x[chosen[0]]) + norms[chosen[0]]).clamp_(min=0)
    for _ in range(1, k):
        # Candidates drawn with probability proportional to their squared distance to the chosen ones.
        cumulative = torch.cumsum(closest, 0, dtype=torch.float64).numpy()
        candidates = np.minimum(np.searchsorted(cumulative, rng.random(trials) * cumulative[-1]), len(frames) - 1)
        index = torch.from_numpy(candidates)
        distances = torch.addmm(norms[index], x, x[index].T, alpha=-2).add_(norms[:, None]).clamp_(min=0)
        torch.minimum(distances, closest[:, None], out=distances)
        best = int(torch.argmin(distances.sum(0, dtype=torch.float64)))
        chosen.append(int(candidates[best]))
        closest = distances[:, best].contiguous()
    return frames[chosen].copy()


def _lloyd(frames: np.ndarray, centroids: np.ndarray, max_iter: int, tol: float, stage: str = "iteration") -> tuple[np.ndarray, np.ndarray, int]:
    """Assign every frame, move each centroid to its frames' mean; stop when inertia gains < tol (relative).

    Returns the centroids, each frame's nearest one, and the iterations run.
    """
    torch = _torch()
    x = torch.as_tensor(frames)
    previous = math.inf
    for iteration in range(1, max_iter + 1):
        labels, distances = assign(frames, centroids)
        current = float(distances.sum(dtype=np.float64))
        log.info("%s %d: inertia %.6g", stage, iteration, current)
        if previous - current <= tol * current:
            return centroids, labels, iteration
        previous = current
        counts = np.bincount(labels, minlength=len(centroids))
        sums = torch.zeros(centroids.shape, dtype=torch.float32).index_add_(0, torch.from_numpy(labels), x).numpy()
        updated = sums / np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            # An empty centroid restarts on the frames worst served now, as far from the others as can be.
            updated[empty] = frames[np.argsort(-distances, kind="stable")[: len(empty)]]
            log.info("%s %d: %d empty cluster(s) restarted on outlying frames", stage, iteration, len(empty))
        centroids = updated.astype(np.float32)
    return centroids, assign(frames, centroids)[0], max_iter


def _minibatch(frames: np.ndarray, centroids: np.ndarray, rng: np.random.Generator, batch_size: int, max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """Mini-batch k-means (Sculley 2010, sklearn's update): each centroid moves by 1/its count so far."""
    torch = _torch()
    centroids = centroids.astype(np.float64)
    counts = np.zeros(len(centroids))
    previous = math.inf
    for epoch in range(1, max_iter + 1):
        order = rng.permutation(len(frames))
        current = 0.0
        for start in range(0, len(frames), batch_size):
            batch = frames[np.sort(order[start : start + batch_size])]
            labels, distances = assign(batch, centroids.astype(np.float32))
            current += float(distances.sum(dtype=np.float64))
            batch_counts = np.bincount(labels, minlength=len(centroids))
            sums = torch.zeros(centroids.shape, dtype=torch.float32).index_add_(0, torch.from_numpy(labels), torch.from_numpy(batch)).numpy()
            counts += batch_counts
            moved = batch_counts > 0
            centroids[moved] += (sums[moved] - batch_counts[moved, None] * centroids[moved]) / counts[moved, None]
        log.info("epoch %d: inertia %.6g (during the epoch)", epoch, current)
        if previous - current <= tol * current:
            return centroids.astype(np.float32), epoch
        previous = current
    return centroids.astype(np.float32), max_iter


def fit_kmeans(
    frames: np.ndarray,
    k: int,
    algorithm: str = "full",
    seed: int = 0,
    max_iter: int = 100,
    batch_size: int = 10000,
    n_init: int = 1,
    tol: float = 1e-4,
) -> KMeansResult:
    """k-means++ then Lloyd (`full`) or mini-batch iterations; the best of `n_init` runs by inertia."""
    if algorithm not in ALGORITHMS:
        raise AudiotokError(f"unknown k-means algorithm {algorithm!r}", f"choose one of {', '.join(ALGORITHMS)}")
    if len(frames) == 0:
        raise AudiotokError("no frames to fit k-means on", "check the features, --percent and --max-frames")
    if k > len(frames):
        raise AudiotokError(f"k={k} is larger than the {len(frames)} sampled frames", "lower --k or sample more frames (--percent, --max-frames)")
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    best = None
    for run in range(1, n_init + 1):
        init_rows = np.sort(rng.choice(len(frames), min(len(frames), max(INIT_FRAMES, 3 * k)), replace=False))
        centroids = kmeans_plusplus(frames[init_rows], k, rng)
        log.info("run %d/%d: k-means++ picked %d centroids from %d frames", run, n_init, k, len(init_rows))
        if algorithm == "full":
            if len(init_rows) < len(frames):
                # Settling on the init frames first costs a fraction of an iteration on all of them.
                centroids, _, _ = _lloyd(frames[init_rows], centroids, max_iter, tol, f"warm-up on {len(init_rows)} frames, iteration")
            centroids, labels, iterations = _lloyd(frames, centroids, max_iter, tol)
            total = _exact_inertia(frames, centroids, labels)
        else:
            centroids, iterations = _minibatch(frames, centroids, rng, batch_size, max_iter, tol)
            total = inertia(frames, centroids)
        log.info("run %d/%d: inertia %.6g after %d %s", run, n_init, total, iterations, "iterations" if algorithm == "full" else "epochs")
        if best is None or total < best.inertia:
            best = KMeansResult(centroids, total, iterations, 0.0)
    best.seconds = time.perf_counter() - start
    return best
