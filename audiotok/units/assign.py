"""Nearest-centroid assignment, exact, at low-precision speed.

The nearest centroid maximises x.c - |c|^2 / 2. On CPUs with bf16 matrix
units a bf16 product runs several times faster than fp32, so `screened`
mode scores all centroids in bf16 and keeps the best one wherever its lead
over the second exceeds the bf16 error bound; the other rows are scored
again in fp32. Labels equal the fp32 argmax; `fp32` mode is the plain
product, and CUDA runs fp32 (fast enough there).
"""

import warnings

import numpy as np

# Feature matrices read from archives are read-only numpy views; they are only read here.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

# |rough - true| <= (2^-8 from rounding x and c to bf16 + 2^-9 from rounding the bf16 output
# + dim * 2^-24 from fp32 accumulation) * |x| * max|c|, plus the rounding of |c|^2 / 2 (`slack`).
BF16_ERROR = 2.0**-8 + 2.0**-9


class NearestCentroid:
    BLOCK = 8192  # rows per product: large enough for full GEMM speed, small enough for the caches

    def __init__(self, centroids: np.ndarray, device: str = "cpu", mode: str = "screened"):
        import torch

        self.torch = torch
        self.device = device
        self.centroids = torch.from_numpy(np.ascontiguousarray(centroids, dtype=np.float32)).to(device)
        self.half_norms = 0.5 * (self.centroids * self.centroids).sum(1)
        self.dim = centroids.shape[1]
        self.mode = "fp32" if device != "cpu" or mode == "fp32" or centroids.shape[0] < 2 else mode
        if self.mode == "screened":
            # One product gives x.c - |c|^2/2: x carries a trailing 1, c a trailing -|c|^2/2.
            self.augmented = torch.cat([self.centroids, -self.half_norms[:, None]], 1).bfloat16()
            self.max_norm = float(self.centroids.norm(dim=1).max()) * (1 + self.dim * 2.0**-24 / BF16_ERROR)
            self.slack = 2.0**-8 * float(self.half_norms.abs().max()) + 1e-3
            self.buffer = torch.ones((self.BLOCK, self.dim + 1), dtype=torch.bfloat16)
        self.fallback_rows = 0  # rows that needed the full fp32 check (for benchmarks)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return self.label_many([features])[0]

    def label_many(self, matrices: list[np.ndarray], norms: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """Labels for each matrix; matrices are packed into large products, never concatenated.

        norms: the row norms of each matrix, when the caller has them already.
        """
        self._norms = norms if norms is not None else [row_norms(m) for m in matrices] if self.mode == "screened" else None
        out = [np.empty(len(m), dtype=np.int64) for m in matrices]
        pieces: list[tuple[int, int, int]] = []  # (matrix, first row, rows) filling the current block
        filled = 0
        for index, matrix in enumerate(matrices):
            row = 0
            while row < len(matrix):
                take = min(len(matrix) - row, self.BLOCK - filled)
                pieces.append((index, row, take))
                filled += take
                row += take
                if filled == self.BLOCK:
                    self._run_block(matrices, pieces, filled, out)
                    pieces, filled = [], 0
        if filled:
            self._run_block(matrices, pieces, filled, out)
        return out

    def _run_block(self, matrices, pieces, rows, out):
        torch = self.torch
        with torch.inference_mode():
            if self.mode == "fp32":
                x = torch.from_numpy(np.concatenate([matrices[i][r : r + n] for i, r, n in pieces]).astype(np.float32, copy=False)).to(self.device)
                labels = (x @ self.centroids.T - self.half_norms).argmax(1).cpu().numpy()
            else:
                labels = self._screened(matrices, pieces, rows)
        start = 0
        for index, row, count in pieces:
            out[index][row : row + count] = labels[start : start + count]
            start += count

    def _screened(self, matrices, pieces, rows):
        torch = self.torch
        norms = np.empty(rows, dtype=np.float32)
        start = 0
        for index, row, count in pieces:
            part = matrices[index][row : row + count]
            self.buffer[start : start + count, : self.dim].copy_(torch.from_numpy(part))  # converts to bf16 in the copy
            norms[start : start + count] = self._norms[index][row : row + count]
            start += count
        scores = (self.buffer[:rows] @ self.augmented.T).float().numpy()
        everywhere = np.arange(rows)
        labels = scores.argmax(1)
        best = scores[everywhere, labels]
        scores[everywhere, labels] = -np.inf
        runner_up = scores.max(1)
        unsure = np.flatnonzero(best - runner_up <= 2 * (BF16_ERROR * norms * self.max_norm + self.slack))
        if len(unsure):
            exact = self._gather_rows(matrices, pieces, unsure)
            labels[unsure] = (exact @ self.centroids.T - self.half_norms).argmax(1).numpy()
            self.fallback_rows += len(unsure)
        return labels

    def _gather_rows(self, matrices, pieces, block_rows):
        """The fp32 rows at these positions of the packed block."""
        starts = np.cumsum([0] + [n for _, _, n in pieces])
        which = np.searchsorted(starts, block_rows, side="right") - 1
        rows = [matrices[pieces[p][0]][pieces[p][1] + r - starts[p]] for p, r in zip(which, block_rows, strict=True)]
        return self.torch.from_numpy(np.stack(rows).astype(np.float32, copy=False))


def row_norms(matrix: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row (NaN or Inf where a row holds one)."""
    import torch

    return torch.linalg.vector_norm(torch.from_numpy(matrix), dim=1).numpy()


def open_assigner(bundle, device: str, exact_fp32: bool):
    from audiotok.device import resolve as resolve_device

    return NearestCentroid(bundle.centroids, resolve_device(device), "fp32" if exact_fp32 else "screened")
