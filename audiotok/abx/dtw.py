"""Dynamic time warping with zrc_abx2's arithmetic: float32 costs, and the path length found by
walking back from the end, preferring the diagonal, then the left step, then the upward one.

Compiled by numba on first use and cached beside this file.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _dtw(dist, n, m, column, cost):
    cost[0, 0] = dist[0, column]
    for i in range(1, n):
        cost[i, 0] = dist[i, column] + cost[i - 1, 0]
    for j in range(1, m):
        cost[0, j] = dist[0, column + j] + cost[0, j - 1]
    for i in range(1, n):
        for j in range(1, m):
            cost[i, j] = dist[i, column + j] + min(cost[i - 1, j], cost[i - 1, j - 1], cost[i, j - 1])
    final = cost[n - 1, m - 1]
    path = 1
    i = n - 1
    j = m - 1
    while i > 0 and j > 0:
        up = cost[i - 1, j]
        left = cost[i, j - 1]
        diagonal = cost[i - 1, j - 1]
        if diagonal <= left and diagonal <= up:
            i -= 1
            j -= 1
        elif left <= up:
            j -= 1
        else:
            i -= 1
        path += 1
    if i == 0:
        path += j
    if j == 0:
        path += i
    return np.float32(np.float64(final) / path)


@njit(cache=True, nogil=True)
def dtw_blocks(dist, starts, sizes):
    """Normalised DTW of the row sequence against each column block dist[:, start:start + size]."""
    n = dist.shape[0]
    out = np.empty(len(starts), dtype=np.float32)
    cost = np.empty((n, max(sizes.max(), 1)), dtype=np.float32)
    for b in range(len(starts)):
        out[b] = _dtw(dist, n, sizes[b], starts[b], cost)
    return out
