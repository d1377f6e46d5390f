"""Nearest-centroid assignment: exact labels at low-precision speed.

The nearest centroid maximises the score x.c - |c|^2 / 2. A screen scores every
centroid fast and bounds each score's error; where the best score leads the second
by more than twice the bound it is the nearest centroid for certain. Elsewhere the
centroids still within reach are scored again in float64 (fairseq's ApplyKmeans
arithmetic). The labels therefore equal a float64 argmin of squared distances, up
to exact ties, whichever screen ran, so the screen is a matter of speed only:
  bf16  PyTorch's bf16 product (oneDNN; avx512_bf16/AMX cores run it at 2-3x fp32);
        its error is relative to each element, so few frames stay in doubt;
  int8  onnxruntime's integer product (frames uint8 per block, centroids int8 per
        row): faster still, but its error is absolute, so only features whose
        nearest centroid leads by a wide margin leave few frames in doubt;
  fp32  PyTorch's fp32 product: CUDA runs it, and --screen fp32 asks for it;
  auto  (the CPU default) starts with int8 and moves to bf16 for good when int8
        leaves more than AUTO_DOUBT of the first AUTO_BLOCKS blocks' frames in doubt.

A frame holding NaN or Inf gets the label MISSING (-1); callers name it.
"""

import time
import warnings
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

# Feature matrices read from archives are read-only numpy views; PyTorch only reads them here.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

MISSING = -1
UNIT_ROUNDOFF = 2.0**-24  # float32
BF16_ROUNDOFF = 2.0**-8  # bf16 keeps 8 significant bits
SCREENS = ("auto", "bf16", "int8", "fp32")
AUTO_BLOCKS = 2
AUTO_DOUBT = 0.1


class NearestCentroid:
    BLOCK = 8192  # rows per product: large enough for full GEMM speed, small enough for the caches

    def __init__(self, centroids: np.ndarray, device: str = "cpu", mode: str = "auto"):
        if mode not in SCREENS:
            raise ValueError(f"unknown screen {mode!r}")
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.k, self.dim = self.centroids.shape
        self.device = device
        self.mode = "fp32" if device != "cpu" else mode
        self._screen = None  # made at the first block: an empty input imports no product library
        self._centroids64 = self.centroids.astype(np.float64)
        self._squared_norms64 = (self._centroids64**2).sum(1)
        self._buffers = [np.empty((self.BLOCK, self.dim), dtype=np.float32) for _ in range(2)]
        self._next_buffer = 0
        self._worker = None  # one thread, made at the first block
        self._in_flight = None
        self.blocks = 0
        self.frames = 0
        self.rescored_rows = 0  # frames the screen left in doubt (for benchmarks)
        # Where the time goes: the worker's screen and re-scoring, this thread's packing and waiting.
        self.seconds = dict.fromkeys(("screen", "float64 re-scoring", "packing", "waiting for the worker"), 0.0)

    def _screen_for_block(self):
        if self._screen is None:
            first = "int8" if self.mode == "auto" else self.mode
            self._screen = Fp32Screen(self.centroids, self.device) if first == "fp32" else {"int8": Int8Screen, "bf16": Bf16Screen}[first](self.centroids)
            self.screen_used = first
        elif self.mode == "auto" and self.screen_used == "int8" and self.blocks == AUTO_BLOCKS and self.rescored_rows > AUTO_DOUBT * self.frames:
            self._screen, self.screen_used = Bf16Screen(self.centroids), "bf16"
        return self._screen

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """The units of one item's features; a frame holding NaN or Inf fails the item."""
        labels = self.label_many([features])[0]
        if len(labels) and labels.min() == MISSING:
            from audiotok.errors import ItemError

            raise ItemError("features hold NaN or Inf")
        return labels

    def label_many(self, matrices: list[np.ndarray]) -> list[np.ndarray]:
        """Labels for each matrix (MISSING where a frame is not finite)."""
        return [labels for _, labels in self.label_stream(enumerate(matrices))]

    def label_stream(self, items: Iterable[tuple[object, object]]) -> Iterator[tuple[object, object]]:
        """(key, labels) for each (key, matrix), in input order, as soon as each is labelled; a value
        that is not an array (an error) passes through in its place.

        Matrices are packed into blocks of BLOCK rows, never concatenated whole. One worker thread
        labels a block while this thread reads and packs the next one into the other buffer.
        """
        waiting: deque[_Entry] = deque()
        pieces: list[tuple[_Entry, int, int]] = []  # (entry, first row, rows) filling the current block
        filled = 0
        for key, value in items:
            entry = _Entry(key, value)
            waiting.append(entry)
            if entry.labels is not None:
                row = 0
                while row < len(value):
                    take = min(len(value) - row, self.BLOCK - filled)
                    pieces.append((entry, row, take))
                    filled += take
                    row += take
                    if filled == self.BLOCK:
                        self._submit(pieces, filled)
                        pieces, filled = [], 0
            yield from _finished(waiting)
        if filled:
            self._submit(pieces, filled)
        self._collect()
        yield from _finished(waiting)

    def _submit(self, pieces, rows) -> None:
        """Pack a block and hand it to the worker, once the block before it is labelled."""
        started = time.perf_counter()
        if len(pieces) == 1:  # a whole block of one matrix: no copy
            entry, row, count = pieces[0]
            block = np.ascontiguousarray(entry.value[row : row + count], dtype=np.float32)
        else:
            block = self._buffers[self._next_buffer][:rows]
            self._next_buffer ^= 1  # the other buffer may be in the worker's hands
            start = 0
            for entry, row, count in pieces:
                block[start : start + count] = entry.value[row : row + count]
                start += count
        self.seconds["packing"] += time.perf_counter() - started
        self._collect()
        if self._worker is None:
            from concurrent.futures import ThreadPoolExecutor

            self._worker = ThreadPoolExecutor(1, thread_name_prefix="audiotok-assign")
        self._in_flight = (self._worker.submit(self._labels, block), pieces)

    def _collect(self) -> None:
        """Wait for the block in the worker's hands and give its labels to their entries."""
        if self._in_flight is None:
            return
        future, pieces = self._in_flight
        self._in_flight = None
        started = time.perf_counter()
        labels = future.result()
        self.seconds["waiting for the worker"] += time.perf_counter() - started
        start = 0
        for entry, row, count in pieces:
            entry.labels[row : row + count] = labels[start : start + count]
            entry.missing -= count
            start += count

    def _labels(self, block: np.ndarray) -> np.ndarray:
        if self.k == 1:
            labels = np.zeros(len(block), dtype=np.int64)
            labels[~np.isfinite(block).all(1)] = MISSING
            return labels
        started = time.perf_counter()
        screened = self._screen_for_block()(block)
        self.seconds["screen"] += time.perf_counter() - started
        if screened is None:
            # NaN or Inf somewhere in the block: label the finite frames alone.
            labels = np.full(len(block), MISSING, dtype=np.int64)
            finite = np.flatnonzero(np.isfinite(block).all(1))
            if len(finite):
                labels[finite] = self._labels(np.ascontiguousarray(block[finite]))
            return labels
        scores, candidates, bound, full = screened
        self.blocks += 1
        self.frames += len(block)
        labels = candidates[:, 0].astype(np.int64)
        unsure = np.flatnonzero(scores[:, 0] - scores[:, 1] <= 2 * bound)
        if len(unsure):
            started = time.perf_counter()
            self.rescored_rows += len(unsure)
            every_score = None if full is None else full[unsure]
            labels[unsure] = self._rescore(block[unsure], scores[unsure], candidates[unsure], bound[unsure], every_score)
            self.seconds["float64 re-scoring"] += time.perf_counter() - started
        return labels

    def _rescore(self, frames, scores, candidates, bound, every_score=None) -> np.ndarray:
        """float64 argmin of squared distances (fairseq's ApplyKmeans arithmetic; ties go to the lower
        index) over the centroids within reach of the best, whose score is within twice the bound
        of it: among every centroid's score when the screen gives them all (every_score), else among
        those it kept, or every centroid when the last kept one is in reach."""
        x = frames.astype(np.float64)
        threshold = scores[:, 0] - 2 * bound
        labels = np.empty(len(frames), dtype=np.int64)
        if every_score is not None:
            rows, columns = np.nonzero(every_score >= threshold[:, None])
        else:
            reach = scores >= threshold[:, None]
            every = reach[:, -1] & (self.k > scores.shape[1])
            if every.any():  # all centroids: one product
                part = x[every]
                labels[every] = np.argmin((part**2).sum(1, keepdims=True) - 2 * part @ self._centroids64.T + self._squared_norms64, axis=1)
            rows, kept = np.nonzero(reach & ~every[:, None])
            columns = candidates[rows, kept]
        if len(rows):
            distances = (x * x).sum(1)[rows] - 2 * np.einsum("ij,ij->i", x[rows], self._centroids64[columns]) + self._squared_norms64[columns]
            order = np.lexsort((columns, distances, rows))  # by frame, then distance, then centroid
            first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
            labels[rows[first]] = columns[first]
        return labels


class _Entry:
    """One input of label_stream: its labels fill in as blocks come back."""

    __slots__ = ("key", "value", "labels", "missing")

    def __init__(self, key, value):
        self.key, self.value = key, value
        self.labels = np.empty(len(value), dtype=np.int64) if isinstance(value, np.ndarray) else None
        self.missing = 0 if self.labels is None else len(value)


def _finished(waiting: deque) -> Iterator[tuple[object, object]]:
    while waiting and waiting[0].missing == 0:
        entry = waiting.popleft()
        yield entry.key, entry.value if entry.labels is None else entry.labels


class Int8Screen:
    """The two best int8 scores of each frame, and a bound on their error."""

    def __init__(self, centroids: np.ndarray):
        from audiotok.units.onnx_session import make_session
        from audiotok.units.screen_graph import GRAPH_FILE

        # Symmetric int8 per centroid: q = round(c / scale), scale = max|c| / 127.
        self.scales = np.maximum(np.abs(centroids).max(1), np.finfo(np.float32).tiny) / 127
        quantised = np.clip(np.rint(centroids / self.scales[:, None]), -127, 127)
        self.centroids_int8 = np.ascontiguousarray(quantised.T.astype(np.int8))
        squared_norms = (centroids.astype(np.float64) ** 2).sum(1)
        self.offsets = (-0.5 * squared_norms).astype(np.float32)
        # Bound terms that depend on the centroids only.
        rounded = quantised * self.scales[:, None]
        self.max_rounded_l1 = float(np.abs(rounded).sum(1).max())
        self.max_residual = float(np.sqrt(((centroids.astype(np.float64) - rounded) ** 2).sum(1)).max()) * (1 + 1e-6)
        self.sqrt_dim = float(np.sqrt(centroids.shape[1]))
        self.max_abs = float(np.abs(centroids).max())
        self.max_offset = float(np.abs(self.offsets).max())
        self.top = np.array([2], dtype=np.int64)
        self.session = make_session(GRAPH_FILE, "cpu", spinning=False)  # the caller packs blocks between runs

    def __call__(self, block: np.ndarray, top: np.ndarray | None = None):
        """(scores, centroids, bound): the `top` (2) best int8 scores of each frame, best first, their
        centroids, and a bound per frame with |score - (x.c - |c|^2/2)| <= bound for every centroid;
        None when a frame is not finite."""
        feeds = {"frames": block, "centroids_int8": self.centroids_int8, "centroid_scales": self.scales, "offsets": self.offsets}
        scores, candidates, step = self.session.run(None, feeds | {"top": self.top if top is None else top})
        # The block's quantisation step (DynamicQuantizeLinear: its range / 255): NaN or Inf there
        # when a frame holds one. Frames are rounded to the nearest step (error <= step / 2).
        step = float(step) * (1 + 1e-6)
        if not np.isfinite(step):
            return None
        # |x.c - x'.c'| <= |(x - x').c'| + |x.(c - c')| <= step/2 |c'|_1 + |x|_2 |c - c'|_2, x' and c' the rounded values.
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        bound = 0.5 * step * self.max_rounded_l1 + norms * self.max_residual
        # Float rounding in the scaling and the offset: far below the quantisation error, bounded generously.
        bound += 2.0**-20 * (np.abs(scores[:, 0]) + self.max_offset + (self.sqrt_dim * norms + block.shape[1] * step) * self.max_abs)
        return scores, candidates, bound, None


def _torch_for_screens():
    """torch, with OpenMP's idle threads sleeping rather than spinning when this is its first
    import (quantize: the screens are torch's only work, and the main thread packs and
    re-scores between products; spinning threads took its core and doubled the time on two
    cores). A process that imported torch before (a model's) keeps its setting, as does a user's
    OMP_WAIT_POLICY."""
    import os
    import sys

    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    return torch


class Fp32Screen:
    """The two best fp32 scores of each frame (PyTorch, CPU or CUDA), and a bound on their error."""

    def __init__(self, centroids: np.ndarray, device: str):
        self.torch = torch = _torch_for_screens()
        self.device = device
        self.centroids = torch.from_numpy(centroids).to(device)
        self.half_norms = 0.5 * (self.centroids * self.centroids).sum(1)
        # Any summation order: |fl(x.c) - x.c| <= gamma_D |x|_2 |c|_2, gamma_D = D u / (1 - D u).
        dim = centroids.shape[1]
        self.gamma = dim * UNIT_ROUNDOFF / (1 - dim * UNIT_ROUNDOFF)
        self.max_norm = float(np.sqrt((centroids.astype(np.float64) ** 2).sum(1)).max())
        self.max_half_norm = float(self.half_norms.abs().max())

    def __call__(self, block: np.ndarray, top: int = 4):
        """(scores, centroids, bound, every score or None) as Int8Screen gives them; every centroid's
        score on the CPU, the `top` best on CUDA (its scores stay on the device)."""
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(block).to(self.device)
            if not bool(torch.isfinite(x).all()):
                return None
            # TF32 would round the inputs to 10 bits: the bound assumes a true fp32 product.
            allowed, torch.backends.cuda.matmul.allow_tf32 = torch.backends.cuda.matmul.allow_tf32, False
            try:
                product = x @ self.centroids.T - self.half_norms
            finally:
                torch.backends.cuda.matmul.allow_tf32 = allowed
            norms = torch.linalg.vector_norm(x, dim=1).cpu().numpy().astype(np.float64)
            if self.device == "cpu":
                every_score = product.numpy()
                scores, candidates = best_two(every_score)
            else:
                every_score = None
                scores, candidates = (t.cpu().numpy() for t in torch.topk(product, min(top, len(self.centroids)), dim=1))
        # The product's error and the rounding of |c|^2/2 (e), the subtraction's rounding (r of a
        # score's size), then as in Bf16Screen, with a factor 2 to spare.
        r = 2 * UNIT_ROUNDOFF
        error = self.gamma * norms * self.max_norm + 2 * UNIT_ROUNDOFF * self.max_half_norm
        return scores, candidates, 2 * (error + r * np.abs(scores[:, 0])) / (1 - r), every_score


class Bf16Centroids:
    """Centroids for a bf16 product: centred on `mean` (smaller values round less; every score of a
    frame moves by the same amount, so labels and leads stay), rounded to bf16, with -|c|^2/2 as a
    bf16 pair (high part + remainder) in two trailing columns that meet two ones in the frames.
    Also the terms of the score error bound that depend on the centroids only.
    """

    def __init__(self, centroids: np.ndarray, mean: np.ndarray):
        torch = _torch_for_screens()
        self.mean = np.asarray(mean, dtype=np.float64)
        self.centred = np.asarray(centroids, dtype=np.float64) - self.mean
        self.half_norms = 0.5 * np.einsum("ij,ij->i", self.centred, self.centred)
        low = torch.from_numpy(self.centred.astype(np.float32)).bfloat16()
        high_bias = torch.from_numpy(-self.half_norms).bfloat16()
        low_bias = torch.from_numpy(-self.half_norms - high_bias.double().numpy()).bfloat16()
        self.augmented = torch.cat([low, high_bias[:, None], low_bias[:, None]], 1)
        rounded = low.double().numpy()
        self.rounded_norm = float(np.linalg.norm(rounded, axis=1).max())
        self.rounding = float(np.linalg.norm(rounded - self.centred, axis=1).max())
        self.bias_rounding = float(np.abs(high_bias.double().numpy() + low_bias.double().numpy() + self.half_norms).max())
        self.largest_bias = float(self.half_norms.max())
        dim = self.centred.shape[1]
        self.accumulation = (dim + 2) * UNIT_ROUNDOFF / (1 - (dim + 2) * UNIT_ROUNDOFF)  # fp32 sums of dim + 2 products

    def error(self, norms: np.ndarray, rounding: np.ndarray) -> np.ndarray:
        """A bound on each frame's score error before the product's bf16 result is rounded, from the
        centred frames' norms |x| and their rounding |x - bf16(x)|: by Cauchy-Schwarz,
        |x.c - bf16(x).bf16(c)| <= |x - bf16(x)| |bf16(c)| + |x| |c - bf16(c)|, plus the bias pair's
        rounding, the fp32 accumulation and the fp32 centring of the frames."""
        return (
            rounding * self.rounded_norm
            + norms * self.rounding
            + self.bias_rounding
            + (self.accumulation * (1 + BF16_ROUNDOFF) + 2.0**-20) * (norms * self.rounded_norm + self.largest_bias)
        )


# The bf16 result of the product is rounded too: by at most OUTPUT_ROUNDING of each score's size.
OUTPUT_ROUNDING = BF16_ROUNDOFF / (1 - BF16_ROUNDOFF)


class Bf16Screen:
    """The best bf16 scores of each frame (PyTorch on the CPU: oneDNN's bf16 product), and a bound:
    Bf16Centroids centred on the centroids' mean, the bound from the rounding actually done."""

    def __init__(self, centroids: np.ndarray):
        self.torch = _torch_for_screens()
        self.dim = centroids.shape[1]
        mean = centroids.astype(np.float64).mean(0).astype(np.float32)
        self.centroids = Bf16Centroids(centroids, mean)
        self.mean = mean
        self.buffer = self.torch.ones((NearestCentroid.BLOCK, self.dim + 2), dtype=self.torch.bfloat16)
        self.centred = np.empty((NearestCentroid.BLOCK, self.dim), dtype=np.float32)

    def __call__(self, block: np.ndarray, top: int = 4):
        torch = self.torch
        rows = len(block)
        centred = np.subtract(block, self.mean, out=self.centred[:rows])
        # numpy's row reductions run several times faster than torch's here.
        norms = np.sqrt(np.einsum("ij,ij->i", centred, centred, dtype=np.float64))
        if not np.isfinite(norms).all() and not np.isfinite(centred).all():
            return None
        augmented = self.centroids.augmented
        with torch.inference_mode():
            low = self.buffer[:rows, : self.dim]
            low.copy_(torch.from_numpy(centred))  # rounds to bf16
            torch.from_numpy(centred).sub_(low)  # centred now holds x - bf16(x)
            every_score = bf16_to_float32((self.buffer[:rows] @ augmented.T).view(torch.int16).numpy())
        rounding = np.sqrt(np.einsum("ij,ij->i", centred, centred, dtype=np.float64))
        scores, candidates = best_two(every_score)
        # A centroid j is out of reach when s_best - s_j > 2 e + r (|s_best| + |s_j|), r the output's
        # rounding; |s_j| <= |s_best| + (s_best - s_j) makes (2 e + 2 r |s_best|) / (1 - r) enough.
        r = OUTPUT_ROUNDING
        bound = (self.centroids.error(norms, rounding) * 1.001 + r * np.abs(scores[:, 0])) / (1 - r)
        return scores, candidates, bound, every_score


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bf16 values (their int16 bit patterns) as float32: the high half of a float32's bits."""
    return (bits.astype(np.int32) << 16).view(np.float32)


def best_two(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two best scores of each row, best first, and their columns (the lower column on ties).
    numpy's row reductions run on one core, faster than torch's threads when the other core is busy."""
    rows = np.arange(len(scores))
    best = scores.argmax(1)
    top = scores[rows, best]
    scores[rows, best] = -np.inf
    second = scores.argmax(1)
    runner_up = scores[rows, second]
    scores[rows, best] = top
    return np.stack([top, runner_up], 1), np.stack([best, second], 1)


def open_assigner(bundle, device: str, screen: str = "auto"):
    from audiotok.device import resolve as resolve_device

    return NearestCentroid(bundle.centroids, resolve_device(device), screen)
