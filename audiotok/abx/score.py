"""ABX error rates of frame representations, as ZeroSpeech's libri-light-abx2 (zrc_abx2) computes them.

For phones A and B and a token X of A's phone, the representation passes the triplet when X
is nearer to A than to B; the ABX error is the share of triplets it fails (ties count half),
averaged over contexts and X speakers, then speakers, then (A, B) phone pairs. Distances are
the frame-averaged DTW path cost over angular (cosine) or Euclidean frame distances between
L2-normalised frames.

The triplets, their sampling (--max-size-group tokens a phone group, --max-x-across X
speakers, Python's `random` seeded per condition), the frames an item covers and the DTW path
rules are zrc_abx2's, so the scores equal the reference package's; tests/test_abx.py checks
that against the installed package. What differs is the engine: every (X, A) DTW a condition
needs is computed once, from one matrix product per X token, instead of once per group pair.
"""

import itertools
import logging
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from audiotok.abx.items import Item

log = logging.getLogger("audiotok")

DISTANCES = ("cosine", "euclidean")
MAX_SIZE_GROUP = 10
MAX_X_ACROSS = 5
SEED = 3459  # zrc_abx2's default
TASKS_A_CHUNK = 4096  # (A, B, X) groups whose alignments are computed together


@dataclass(frozen=True)
class Condition:
    items: str  # phone or triphone
    context: str  # within or any
    speaker: str  # within or across

    @property
    def name(self) -> str:
        if self.items == "triphone":
            return f"triphone_{self.speaker}_speaker"
        return f"phone_{self.context}_context_{self.speaker}_speaker"

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").replace("phone within context", "phone within-context").replace("any context", "any-context")


# The six conditions of zrc_abx2: four phoneme conditions, and the classic triphone ABX (within context).
CONDITIONS = tuple(Condition("phone", c, s) for c in ("within", "any") for s in ("within", "across")) + tuple(
    Condition("triphone", "within", s) for s in ("within", "across")
)
CONDITION_NAMES = tuple(c.name for c in CONDITIONS)


@dataclass
class Dataset:
    """Items with frames: the normalised frames of every kept item, concatenated in item order."""

    frames: np.ndarray  # [total frames, dim + 1] float32
    starts: np.ndarray  # first frame of each item
    sizes: np.ndarray  # frames of each item
    context: np.ndarray  # ids, numbered in the order the item list first names them (zrc_abx2's)
    phone: np.ndarray
    speaker: np.ndarray
    dropped: int = 0  # items whose span holds no frame

    def __len__(self) -> int:
        return len(self.sizes)


@dataclass
class Result:
    scores: dict = field(default_factory=dict)  # condition name -> error rate (0..1), None when undefined
    notes: list = field(default_factory=list)  # one line per condition left undefined
    pairs: int = 0  # DTW alignments computed


def normalize_with_singularity(x: np.ndarray) -> np.ndarray:
    """Unit-length rows plus one column (1e-12): a zero row becomes a vector at the largest angle from every other."""
    x = np.asarray(x, dtype=np.float32)
    rows, dim = x.shape
    norm = (x**2).sum(axis=1, keepdims=True, dtype=np.float32)
    zero = norm[:, 0] == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = x / np.sqrt(norm)
    out[zero] = np.float32(1 / math.sqrt(dim))
    border = np.full((rows, 1), 1e-12, dtype=np.float32)
    border[zero] = -2 * 1e12
    return np.concatenate([out, border], axis=1)


def frame_span(onset: float, offset: float, frame_rate: float, num_frames: int) -> tuple[int, int]:
    """The frames [start, end) an item covers: zrc_abx2's rounding of onset and offset to frame centres."""
    start = max(0, int(math.ceil(frame_rate * onset - 0.5)))
    end = int(min(num_frames, int(math.floor(frame_rate * offset - 0.5))))
    return start, end


def load_datasets(items_by_kind: Mapping[str, list[Item]], features: Mapping[str, np.ndarray], frame_rate: float) -> dict[str, Dataset]:
    """A dataset for each kind of items (phone, triphone), each file's frames normalised once."""
    builders = {kind: _DatasetBuilder(items) for kind, items in items_by_kind.items()}
    for key, matrix in features.items():
        if any(key in builder.by_file for builder in builders.values()):
            frames = normalize_with_singularity(matrix)
            for builder in builders.values():
                builder.add_file(key, frames, frame_rate)
    dim = next((len(m[0]) for m in features.values() if len(m)), 0) + 1
    return {kind: builder.dataset(dim) for kind, builder in builders.items()}


def load_dataset(items: list[Item], features: Mapping[str, np.ndarray], frame_rate: float) -> Dataset:
    """Frames of every item whose file is in `features`, files in the features' order, items in item order."""
    return load_datasets({"items": items}, features, frame_rate)["items"]


class _DatasetBuilder:
    """Ids numbered in item order over all items (as zrc_abx2 numbers an item file), frames added file by file."""

    def __init__(self, items: list[Item]):
        self.items = items
        ids = [{}, {}, {}]
        self.labels = []
        self.by_file: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            values = (f"{item.prev}+{item.next}", item.phone, item.speaker)
            self.labels.append(tuple(table.setdefault(value, len(table)) for table, value in zip(ids, values)))
            self.by_file.setdefault(item.file, []).append(index)
        self.pieces, self.starts, self.sizes, self.kept = [], [], [], []
        self.total = self.dropped = 0

    def add_file(self, key: str, frames: np.ndarray, frame_rate: float) -> None:
        for index in self.by_file.get(key, ()):
            start, end = frame_span(self.items[index].onset, self.items[index].offset, frame_rate, len(frames))
            if start >= len(frames) or end <= start:
                self.dropped += 1
                continue
            self.pieces.append(frames[start:end])
            self.starts.append(self.total)
            self.sizes.append(end - start)
            self.kept.append(self.labels[index])
            self.total += end - start

    def dataset(self, dim: int) -> Dataset:
        columns = np.array(self.kept, dtype=np.int64).reshape(-1, 3)
        return Dataset(
            frames=np.concatenate(self.pieces) if self.pieces else np.zeros((0, dim), dtype=np.float32),
            starts=np.array(self.starts, dtype=np.int64),
            sizes=np.array(self.sizes, dtype=np.int64),
            context=columns[:, 0],
            phone=columns[:, 1],
            speaker=columns[:, 2],
            dropped=self.dropped,
        )


# ---------------------------------------------------------------- triplets


@dataclass
class _Task:
    coords: tuple  # (speaker, phone A, phone B, *averaged-over: context and/or X speaker)
    a: list
    b: list
    x: list | None  # None: X is A itself (within speaker, symmetric)


def _phone_groups(ds: Dataset, context: str) -> tuple[list, list[int]]:
    """Items sorted by (context,) speaker, phone, ties in item order; per speaker (and context)
    the list of (start, end) position ranges of its phones, in that order."""
    columns = (ds.context, ds.speaker, ds.phone) if context == "within" else (ds.speaker, ds.phone)
    keys = list(zip(*(column.tolist() for column in columns)))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    groups: list[list[tuple[int, int]]] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or keys[order[end]] != keys[order[start]]:
            if groups and keys[order[groups[-1][0][0]]][:-1] == keys[order[start]][:-1]:  # the same speaker (and context)
                groups[-1].append((start, end))
            else:
                groups.append([(start, end)])
            start = end
    return groups, order


def enumerate_tasks(ds: Dataset, condition: Condition, max_size_group: int, max_x_across: int, seed: int) -> Iterator[_Task]:
    """Every (A, B, X) group of a condition, with zrc_abx2's iteration order and random draws."""
    rng = random.Random(seed)
    groups, order = _phone_groups(ds, condition.context)

    def take(span):
        positions = list(range(*span))
        if len(positions) > max_size_group:
            positions = rng.sample(positions, k=max_size_group)
        return [order[p] for p in positions]

    def ids(span):
        first = order[span[0]]
        return int(ds.context[first]), int(ds.phone[first]), int(ds.speaker[first])

    within_context = condition.context == "within"
    if condition.speaker == "within":
        for group in groups:
            if len(group) == 1:
                continue
            for i_a, span_a in enumerate(group):
                if span_a[1] - span_a[0] == 1:
                    continue
                for i_b, span_b in enumerate(group):
                    if i_b == i_a:
                        continue
                    b = take(span_b)
                    a = take(span_a)
                    c, p_a, s = ids(span_a)
                    coords = (s, p_a, ids(span_b)[1]) + ((c,) if within_context else ())
                    yield _Task(coords, a, b, None)
        return
    speakers_of: dict[tuple, dict[int, tuple[int, int]]] = {}  # (context,) phone -> {speaker: span}
    for group in groups:
        for span in group:
            c, p, s = ids(span)
            speakers_of.setdefault((c, p) if within_context else (p,), {})[s] = span
    for group in groups:
        if len(group) == 1:
            continue
        for i_a, span_a in enumerate(group):
            c, p_a, s = ids(span_a)
            others = [span for speaker, span in speakers_of[(c, p_a) if within_context else (p_a,)].items() if speaker != s]
            if len(others) > max_x_across:
                others = rng.sample(others, k=max_x_across)
            for span_x in others:
                s_x = ids(span_x)[2]
                for i_b, span_b in enumerate(group):
                    if i_b == i_a:
                        continue
                    a, b, x = take(span_a), take(span_b), take(span_x)
                    coords = (s, p_a, ids(span_b)[1]) + ((c,) if within_context else ()) + (s_x,)
                    yield _Task(coords, a, b, x)


def _pairs_of(task: _Task) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) item pairs whose DTW the task needs: X against A, X against B.
    Within a speaker X is A, and zrc_abx2 aligns each unordered pair once, the earlier-drawn token as the row."""
    a, b = np.asarray(task.a), np.asarray(task.b)
    if task.x is None:
        i, j = np.triu_indices(len(a), k=1)
        xa = np.stack([a[i], a[j]], axis=1)
        xb = np.stack(np.meshgrid(a, b, indexing="ij"), axis=-1).reshape(-1, 2)
    else:
        x = np.asarray(task.x)
        xa = np.stack(np.meshgrid(x, a, indexing="ij"), axis=-1).reshape(-1, 2)
        xb = np.stack(np.meshgrid(x, b, indexing="ij"), axis=-1).reshape(-1, 2)
    return xa, xb


def _theta(task: _Task, dist_xa: np.ndarray, dist_xb: np.ndarray) -> float:
    """Share of (X, A, B) triplets with X nearer A than B, ties counting half."""
    na, nb = len(task.a), len(task.b)
    if task.x is None:
        full = np.zeros((na, na))
        i, j = np.triu_indices(na, k=1)
        full[i, j] = full[j, i] = dist_xa
        dxa = full[:, :, None]
        dxb = dist_xb.reshape(na, 1, nb)
        off_diagonal = ~np.eye(na, dtype=bool)[:, :, None]
        below = ((dxa < dxb) & off_diagonal).sum() + 0.5 * ((dxa == dxb) & off_diagonal).sum()
        return float(below) / (na * (na - 1) * nb)
    nx = len(task.x)
    dxa = dist_xa.reshape(nx, na, 1)
    dxb = dist_xb.reshape(nx, 1, nb)
    return float((dxa < dxb).sum() + 0.5 * (dxa == dxb).sum()) / (nx * na * nb)


def _average(values: dict[tuple, float]) -> float | None:
    """Mean over the trailing coordinates, then over speakers, then over (A, B) phone pairs."""
    by_speaker_pair: dict[tuple, list[float]] = {}
    for coords, value in values.items():
        by_speaker_pair.setdefault(coords[:3], []).append(value)
    by_pair: dict[tuple, list[float]] = {}
    for (_speaker, p_a, p_b), found in by_speaker_pair.items():
        by_pair.setdefault((p_a, p_b), []).append(sum(found) / len(found))
    if not by_pair:
        return None
    return sum(sum(v) / len(v) for v in by_pair.values()) / len(by_pair)


# ---------------------------------------------------------------- DTW


def dtw_distances(ds: Dataset, pairs: np.ndarray, distance: str = "cosine") -> np.ndarray:
    """DTW cost over the path length for each (row item, column item) pair, float32 like zrc_abx2's."""
    from audiotok.abx.dtw import dtw_blocks

    out = np.empty(len(pairs), dtype=np.float32)
    if not len(pairs):
        return out
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    rows = pairs[order, 0]
    bounds = np.flatnonzero(np.diff(rows)) + 1
    for chunk in np.split(np.arange(len(order)), bounds):
        row = int(rows[chunk[0]])
        columns = pairs[order[chunk], 1]
        x = ds.frames[ds.starts[row] : ds.starts[row] + ds.sizes[row]]
        sizes = ds.sizes[columns]
        frame_index = np.concatenate([np.arange(ds.starts[c], ds.starts[c] + ds.sizes[c]) for c in columns])
        y = ds.frames[frame_index]
        matrix = frame_distances(x, y, distance)
        block_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        out[order[chunk]] = dtw_blocks(matrix, block_starts, sizes)
    return out


def frame_distances(x: np.ndarray, y: np.ndarray, distance: str) -> np.ndarray:
    """[len(x), len(y)] float32 frame distances: angle / pi, or Euclidean."""
    products = x.astype(np.float64) @ y.T.astype(np.float64)
    if distance == "cosine":
        return (np.arccos(np.clip(products, -1.0, 1.0)) / math.pi).astype(np.float32)
    squares = (x.astype(np.float64) ** 2).sum(axis=1)[:, None] + (y.astype(np.float64) ** 2).sum(axis=1)[None, :] - 2 * products
    return np.sqrt(np.maximum(squares, 0.0)).astype(np.float32)


# ---------------------------------------------------------------- the scores


def score(
    datasets: Mapping[str, Dataset],
    conditions=CONDITIONS,
    distance: str = "cosine",
    max_size_group: int = MAX_SIZE_GROUP,
    max_x_across: int = MAX_X_ACROSS,
    seed: int = SEED,
) -> Result:
    """ABX error of each condition; `datasets` maps the item kind (phone, triphone) to its dataset."""
    result = Result()
    for condition in conditions:
        ds = datasets[condition.items]
        tasks = enumerate_tasks(ds, condition, max_size_group, max_x_across, seed)
        values = {}
        count = 0
        # Tasks come in chunks so memory stays flat; consecutive tasks share a speaker, hence most pairs.
        while chunk := list(itertools.islice(tasks, TASKS_A_CHUNK)):
            count += len(chunk)
            result.pairs += _score_chunk(ds, chunk, distance, values)
        if not count:
            result.scores[condition.name] = None
            result.notes.append(f"{condition.label}: no (A, B, X) triplet: {_shortage(ds, condition)}")
            continue
        result.scores[condition.name] = _average(values)
    return result


def _score_chunk(ds: Dataset, tasks: list[_Task], distance: str, values: dict) -> int:
    """1 - theta of each task into values[coords], with every distinct DTW computed once; how many."""
    pair_lists = [_pairs_of(task) for task in tasks]
    every = np.concatenate([p for xa, xb in pair_lists for p in (xa, xb)])
    unique, inverse = np.unique(every[:, 0] * len(ds) + every[:, 1], return_inverse=True)
    distances = dtw_distances(ds, np.stack([unique // len(ds), unique % len(ds)], axis=1), distance)[inverse]
    offset = 0
    for task, (xa, xb) in zip(tasks, pair_lists):
        dist_xa = distances[offset : offset + len(xa)]
        dist_xb = distances[offset + len(xa) : offset + len(xa) + len(xb)]
        offset += len(xa) + len(xb)
        values[task.coords] = 1.0 - _theta(task, dist_xa, dist_xb)
    return len(unique)


def _shortage(ds: Dataset, condition: Condition) -> str:
    """Why a condition has no triplet, with the counts that say so."""
    items = "triphones" if condition.items == "triphone" else "phones"
    needs = f"two {items} of one speaker"
    if condition.context == "within":
        needs += " in the same context"
    needs += ", one of them twice" if condition.speaker == "within" else ", the first also from another speaker"
    counts = f"items {len(ds)}, phones {len(set(ds.phone.tolist()))}, speakers {len(set(ds.speaker.tolist()))}"
    if condition.context == "within":
        counts += f", contexts {len(set(ds.context.tolist()))}"
    return f"needs {needs} ({counts})"
