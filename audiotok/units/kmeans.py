"""k-means for tokenizer bundles: sample frames from a feature stream, then fit centroids.

    sample = sample_frames(read_matrices("scp:feats.scp"), percent=10, max_frames=1_000_000, seed=0)
    result = fit_kmeans(sample.frames, k=500, seed=0)     # result.centroids [k, dim] float32

Sampling streams the archive once and never holds more than `max_frames`
frames: an utterance is kept when a hash of (seed, key) falls below
`percent` (so the choice does not depend on order or on other keys), and the
kept frames go through a seeded reservoir. Fitting starts from greedy
k-means++ on a subset (distances from a bf16 product), settles on a larger
subset, then runs either Lloyd iterations on all frames (`full`: every frame
scored against every centroid by a bf16 product, the close calls settled in
float64, so labels are exact; see LloydAssigner) or mini-batch updates
(`minibatch`, sklearn's per-centroid learning rates). The same frames and
seed give bit-identical centroids run to run on one machine and thread count.
"""

import hashlib
import logging
import math
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.units.assign import OUTPUT_ROUNDING, Bf16Centroids

log = logging.getLogger(__name__)

ALGORITHMS = ("full", "minibatch")
CHUNK = 8192  # frames a GEMM: a [CHUNK, k] float32 score block stays small
INIT_FRAMES = 30000  # Lloyd settles first on this many frames (sklearn's init_size), then on all
KEEP_BF16_BYTES = 512 * 2**20  # Lloyd keeps the centred frames in bf16 up to this size (about 340k frames of 768)
SEED_FRAMES_PER_CENTROID = 20  # k-means++ draws from 20 k of them (at least 10000): its cost grows with frames x k


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
    """Sum over frames of the squared distance to the nearest centroid.

    The nearest centroid is exact (LloydAssigner: a float64 argmin); distances are
    recomputed directly, as |x|^2 - 2x.c + |c|^2 loses digits when features sit far from the origin.
    """
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    return _exact_inertia(frames, centroids, LloydAssigner(frames)(np.asarray(centroids, dtype=np.float32)).labels)


def _exact_inertia(frames: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> float:
    """Sum of |x - c|^2 from the differences: each square within 2^-23 of itself, summed in float64."""
    centroids = np.asarray(centroids, dtype=np.float32)
    total = 0.0
    for start in range(0, len(frames), CHUNK):
        diff = centroids[labels[start : start + CHUNK]]
        diff -= frames[start : start + CHUNK]
        diff *= diff
        total += float(diff.sum(dtype=np.float64))
    return total


@dataclass
class Assignment:
    labels: np.ndarray  # [n] int64: each frame's nearest centroid (a float64 argmin of the squared distances)
    counts: np.ndarray  # [k] int64
    sums: np.ndarray  # [k, dim] float64: each cluster's sum of frames minus the frames' mean
    inertia: float  # sum of squared distances to the centroids (float64, from the sums)
    distances: np.ndarray  # [n] float32: squared distances, to bf16 precision (ranks frames for empty-cluster restarts)
    unsure: int  # frames whose bf16 scores left more than one candidate, settled in float64


class LloydAssigner:
    """Nearest centroid of every frame of one fit, again and again: bf16 products, exact labels.

    Each frame scores x.c - |c|^2/2 against all centroids in one bf16 product (about
    2.5x an fp32 one on CPUs with bf16 dot products), frames and centroids centred on
    the frames' mean first (smaller values round less). The bf16 winner stands where
    its lead exceeds the proven error of the scores; the other centroids within that
    error are scored again in float64, so labels equal a float64 argmin. The call also
    sums each cluster's frames, which gives the next centroids and the inertia.
    """

    def __init__(self, frames: np.ndarray, chunk: int = CHUNK):
        torch = _torch()
        self.frames = np.ascontiguousarray(frames, dtype=np.float32)
        self.x = torch.from_numpy(self.frames)
        self.chunk = chunk
        n, dim = self.frames.shape
        # Any centre keeps the labels exact; the mean makes the values, and so their rounding, small.
        self.mean = self.x.mean(0) if n else torch.zeros(dim)
        self.mean64 = self.mean.double().numpy()
        # The centred frames in bf16: all of them when that is small (no conversion each call), else a chunk.
        # Two trailing columns of ones carry -|c|^2/2 as a bf16 pair (high part + remainder).
        self.kept = n * (dim + 2) * 2 <= KEEP_BF16_BYTES
        self.low = torch.ones((n if self.kept else min(n, chunk), dim + 2), dtype=torch.bfloat16)
        self.centred = torch.empty((min(n, chunk), dim), dtype=torch.float32)
        self.norms = np.empty(n, dtype=np.float32)  # |x~|, x~ = x - mean
        self.rounding = np.empty(n, dtype=np.float32)  # |x~ - bf16(x~)|
        for start in range(0, n, chunk):
            low = self._convert(start, self.low[start : start + chunk] if self.kept else self.low)
            rows = len(low)
            centred = self.centred[:rows]
            self.norms[start : start + rows] = torch.linalg.vector_norm(centred, dim=1).numpy()
            self.rounding[start : start + rows] = torch.linalg.vector_norm(centred.sub_(low[:, :dim]), dim=1).numpy()
        self.total = float(np.square(self.norms, dtype=np.float64).sum())  # sum of |x~|^2
        self.accumulation = (dim + 2) * 2.0**-24 / (1 - (dim + 2) * 2.0**-24)  # fp32 sums of dim + 2 products

    def _convert(self, start: int, out):
        """Rows start.. of the frames, centred in fp32 (self.centred) and rounded to bf16 into out[:rows]."""
        block = self.x[start : start + self.chunk]
        rows, dim = block.shape
        # Two steps: a cast into the strided bf16 buffer inside the subtraction runs several times slower.
        out[:rows, :dim].copy_(_torch().sub(block, self.mean, out=self.centred[:rows]))
        return out[:rows]

    def _low_block(self, start: int):
        """Rows start.. of the centred frames in bf16, with the two columns of ones."""
        return self.low[start : start + self.chunk] if self.kept else self._convert(start, self.low)

    def __call__(self, centroids: np.ndarray) -> Assignment:
        torch = _torch()
        n, dim = self.frames.shape
        k = len(centroids)
        prepared = Bf16Centroids(centroids, self.mean64)
        centred, half_norms, augmented = prepared.centred, prepared.half_norms, prepared.augmented
        frame_error = prepared.error(self.norms, self.rounding)
        # The output is rounded to bf16 too: by r of a score. A centroid j is out of the running
        # when s_best - s_j > 2 e + r (|s_best| + |s_j|), i.e. s_best - s_j > (2 e + 2 r |s_best|) / (1 - r).
        r = OUTPUT_ROUNDING
        labels = np.empty(n, dtype=np.int64)
        distances = np.empty(n, dtype=np.float32)
        sums = torch.zeros((k, dim), dtype=torch.float64)
        partial = torch.empty((k, dim), dtype=torch.float32)
        c64 = np.asarray(centroids, dtype=np.float64)
        unsure_total = 0
        with torch.inference_mode():
            augmented_t = augmented.T
            for start in range(0, n, self.chunk):
                low_block = self._low_block(start)
                rows = len(low_block)
                # numpy's row reductions run several times faster than torch's here.
                scores = (low_block @ augmented_t).float().numpy()
                everywhere = np.arange(rows)
                label = scores.argmax(1)
                best = scores[everywhere, label]
                margin = (2 * frame_error[start : start + rows] + 2 * r * np.abs(best)) * ((1 + 2.0**-10) / (1 - r))
                threshold = best - margin
                # A frame is unsure when the runner-up is within the margin too.
                scores[everywhere, label] = -np.inf
                unsure = np.flatnonzero(scores.max(1) >= threshold)
                norms = self.norms[start : start + rows]
                block_distances = np.maximum(norms * norms - 2 * best, 0)
                if len(unsure):
                    unsure_total += len(unsure)
                    candidates = scores[unsure] >= threshold[unsure, None]
                    candidates[np.arange(len(unsure)), label[unsure]] = True
                    label[unsure], block_distances[unsure] = self._settle(start, unsure, candidates, c64)
                labels[start : start + rows] = label
                distances[start : start + rows] = block_distances
                # fp32 sums within a chunk (few frames a centroid), float64 across chunks. index_add_ on
                # one thread: on two it ran several times slower.
                with _one_thread(torch):
                    partial.zero_().index_add_(0, torch.from_numpy(label), self.x[start : start + rows])
                sums += partial
        counts = np.bincount(labels, minlength=k)
        sums = sums.numpy() - counts[:, None] * self.mean64
        current = self.total - 2 * float(np.einsum("ij,ij->", centred, sums)) + float(counts @ (2 * half_norms))
        return Assignment(labels, counts, sums, max(current, 0.0), distances, unsure_total)

    def _settle(self, start, unsure, candidates, c64, pairs_at_once: int = 4096):
        """Float64 squared distances of the unsure frames to their candidates; the nearest (lowest index on ties)."""
        which, centroid = np.nonzero(candidates)
        frame = unsure[which] + start
        distance = np.empty(len(which), dtype=np.float64)
        for at in range(0, len(which), pairs_at_once):
            diff = self.frames[frame[at : at + pairs_at_once]] - c64[centroid[at : at + pairs_at_once]]
            distance[at : at + pairs_at_once] = np.einsum("ij,ij->i", diff, diff)
        order = np.lexsort((centroid, distance, which))
        first = order[np.r_[True, np.diff(which[order]) != 0]]
        return centroid[first], distance[first]


# ---------------------------------------------------------------- fitting


@dataclass
class KMeansResult:
    centroids: np.ndarray  # [k, dim] float32
    inertia: float  # exact, over the frames fitted
    iterations: int  # Lloyd iterations or mini-batch epochs
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds of each phase, summed over the runs


def kmeans_plusplus(frames: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ (Arthur & Vassilvitskii; sklearn's 2 + ln k trials a step): [k, dim] float32.

    The distances that weigh the draws come from a bf16 product of the frames centred on
    their mean (off by about 1% of |x|^2, which moves the draw probabilities by as little):
    a product with a few columns runs far below full GEMM speed, and bf16 halves what it reads.
    It runs on one thread, its small steps in numpy: a second thread gains little on products
    this thin and loses several times over when the other core is busy.
    """
    torch = _torch()
    with _one_thread(torch):
        return _kmeans_plusplus(frames, k, rng, torch)


def _kmeans_plusplus(frames: np.ndarray, k: int, rng: np.random.Generator, torch) -> np.ndarray:
    x = torch.as_tensor(frames)
    x = (x - x.mean(0)).bfloat16()
    norms = x.float().square().sum(1).numpy()
    trials = 2 + int(math.log(k))
    chosen = [int(rng.integers(len(frames)))]
    closest = np.maximum(norms - 2 * _as_float32(x @ x[chosen[0]]) + norms[chosen[0]], 0)
    for _ in range(1, k):
        # Candidates drawn with probability proportional to their squared distance to the chosen ones.
        cumulative = np.cumsum(closest, dtype=np.float64)
        candidates = np.minimum(np.searchsorted(cumulative, rng.random(trials) * cumulative[-1]), len(frames) - 1)
        distances = _as_float32(x @ x[torch.from_numpy(candidates)].T)
        distances *= -2
        distances += norms[:, None]
        distances += norms[candidates]
        np.maximum(distances, 0, out=distances)
        np.minimum(distances, closest[:, None], out=distances)
        best = int(np.argmin(distances.sum(0, dtype=np.float64)))
        chosen.append(int(candidates[best]))
        closest = np.ascontiguousarray(distances[:, best])
    return frames[chosen].copy()


@contextmanager
def _one_thread(torch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _as_float32(values) -> np.ndarray:
    """A bf16 tensor as a float32 array (bf16 is the upper half of a float32), in numpy."""
    return (values.view(_torch().int16).numpy().astype(np.int32) << 16).view(np.float32)


def _lloyd(
    frames: np.ndarray, centroids: np.ndarray, max_iter: int, tol: float, stage: str = "iteration", assigner: LloydAssigner | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Assign every frame, move each centroid to its frames' mean; stop when inertia gains < tol (relative).

    Returns the centroids, each frame's nearest one, and the iterations run.
    """
    assigner = assigner or LloydAssigner(frames)
    previous = math.inf
    for iteration in range(1, max_iter + 1):
        assignment = assigner(centroids)
        current = assignment.inertia
        log.info("%s %d: inertia %.6g", stage, iteration, current)
        log.debug("%s %d: %d frames settled in float64", stage, iteration, assignment.unsure)
        if previous - current <= tol * current:
            return centroids, assignment.labels, iteration
        previous = current
        counts = assignment.counts
        updated = assignment.sums / np.maximum(counts, 1)[:, None] + assigner.mean64
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            # An empty centroid restarts on the frames worst served now, as far from the others as can be.
            updated[empty] = assigner.frames[np.argsort(-assignment.distances, kind="stable")[: len(empty)]]
            log.info("%s %d: %d empty cluster(s) restarted on outlying frames", stage, iteration, len(empty))
        centroids = updated.astype(np.float32)
    return centroids, assigner(centroids).labels, max_iter


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
    phases = (
        dict.fromkeys(("k-means++", "warm-up", "Lloyd", "inertia"), 0.0) if algorithm == "full" else dict.fromkeys(("k-means++", "mini-batch", "inertia"), 0.0)
    )
    clock = _PhaseClock(phases)
    rng = np.random.default_rng(seed)
    best = None
    assigner = None
    for run in range(1, n_init + 1):
        init_rows = np.sort(rng.choice(len(frames), min(len(frames), max(INIT_FRAMES, 3 * k)), replace=False))
        init_frames = frames[init_rows]
        with clock("k-means++"):
            seeding = max(10000, SEED_FRAMES_PER_CENTROID * k)
            seed_rows = np.arange(len(init_rows)) if len(init_rows) <= seeding else np.sort(rng.choice(len(init_rows), seeding, replace=False))
            centroids = kmeans_plusplus(init_frames[seed_rows], k, rng)
        log.info("run %d/%d: k-means++ picked %d centroids from %d frames in %.1f s", run, n_init, k, len(seed_rows), clock.last)
        if algorithm == "full":
            if len(init_rows) < len(frames):
                # Settling on the init frames first costs a fraction of an iteration on all of them.
                with clock("warm-up"):
                    centroids, _, warm = _lloyd(init_frames, centroids, max_iter, tol, f"warm-up on {len(init_rows)} frames, iteration")
                log.info("run %d/%d: warm-up on %d frames, %d iterations in %.1f s", run, n_init, len(init_rows), warm, clock.last)
            del init_frames
            with clock("Lloyd"):
                assigner = assigner or LloydAssigner(frames)
                centroids, labels, iterations = _lloyd(frames, centroids, max_iter, tol, assigner=assigner)
            log.info("run %d/%d: Lloyd on %d frames, %d iterations in %.1f s", run, n_init, len(frames), iterations, clock.last)
            with clock("inertia"):
                total = _exact_inertia(frames, centroids, labels)
        else:
            with clock("mini-batch"):
                centroids, iterations = _minibatch(frames, centroids, rng, batch_size, max_iter, tol)
            with clock("inertia"):
                total = inertia(frames, centroids)
        log.info("run %d/%d: inertia %.6g after %d %s", run, n_init, total, iterations, "iterations" if algorithm == "full" else "epochs")
        if best is None or total < best.inertia:
            best = KMeansResult(centroids, total, iterations, 0.0)
    best.seconds = time.perf_counter() - start
    best.phases = phases
    return best


class _PhaseClock:
    """Adds the wall time of each `with clock(name):` block to phases[name]."""

    def __init__(self, phases: dict[str, float]):
        self.phases = phases
        self.last = 0.0

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.last = time.perf_counter() - start
            self.phases[name] += self.last
