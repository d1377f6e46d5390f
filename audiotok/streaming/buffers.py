"""A bounded buffer of rows (samples or feature frames) addressed by absolute index.

A stream keeps only the rows it may still need (left context, look-ahead, the
unfinished chunk); everything before `start` is dropped. Storage is one array
that is compacted in place when the dropped head outgrows the kept part, so its
capacity stays within a small multiple of the largest kept region.
"""

import numpy as np


class RowBuffer:
    def __init__(self, width: int | None = None, dtype=np.float32, capacity: int = 4096):
        shape = (capacity,) if width is None else (capacity, width)
        self._data = np.zeros(shape, dtype)
        self._initial = capacity
        self._head = 0  # storage row of absolute row `start`
        self._size = 0
        self.start = 0  # absolute index of the first kept row

    @property
    def end(self) -> int:
        """Absolute index one past the last row received."""
        return self.start + self._size

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return len(self._data)

    def append(self, rows: np.ndarray) -> None:
        count = len(rows)
        if count == 0:
            return
        if self._head + self._size + count > len(self._data):
            self._compact(self._size + count)
        self._data[self._head + self._size : self._head + self._size + count] = rows
        self._size += count

    def view(self, first: int, stop: int) -> np.ndarray:
        """Rows [first, stop) in absolute indices (a view: copy it before the next append)."""
        if not self.start <= first <= stop <= self.end:
            raise IndexError(f"rows [{first}, {stop}) are not in the buffer [{self.start}, {self.end})")
        return self._data[self._head + first - self.start : self._head + stop - self.start]

    def drop_before(self, index: int) -> None:
        """Forget rows before absolute `index` (at most all of them)."""
        index = min(max(index, self.start), self.end)
        self._head += index - self.start
        self._size -= index - self.start
        self.start = index

    def _compact(self, needed: int) -> None:
        kept = self._data[self._head : self._head + self._size]
        if needed > len(self._data) // 2 or 8 * needed < len(self._data) > self._initial:
            # Grow, or shrink back after one large append, to twice what must fit:
            # appends stay amortised O(1) and the capacity follows the kept size.
            size = max(2 * needed, self._initial)
            fresh = np.zeros((size,) + self._data.shape[1:], self._data.dtype)
            fresh[: self._size] = kept
            self._data = fresh
        else:
            self._data[: self._size] = kept.copy()
        self._head = 0
