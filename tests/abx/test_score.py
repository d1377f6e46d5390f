"""ABX scores on cases small enough to work out by hand, and the notes for conditions without triplets."""

import math

import numpy as np
import pytest

from audiotok.abx.dtw import dtw_blocks
from audiotok.abx.evaluate import Settings, evaluate, unit_vectors
from audiotok.abx.items import build_items
from audiotok.abx.score import CONDITIONS, Condition, load_dataset, normalize_with_singularity, score
from audiotok.errors import AudiotokError, UsageError

ANY_WITHIN = Condition("phone", "any", "within")


def _at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def _one_frame_items(angles: list[float]) -> np.ndarray:
    """At 100 Hz a 20 ms phone starting at 20 ms x i covers frame 2 i alone; odd frames are never read."""
    frames = np.zeros((2 * len(angles), 2), dtype=np.float32)
    frames[::2] = [_at(a) for a in angles]
    return frames


def _phones(labels: str) -> list:
    return [(0.02 * i, 0.02 * i + 0.02, label) for i, label in enumerate(labels.split())]


def test_a_triplet_fails_when_x_is_nearer_b():
    # a at 0 and 20 degrees, b at 30: X=a(0) keeps A=a(20) nearer (20 < 30); X=a(20) is nearer b (10 < 20).
    items = build_items({"u": _phones("a b a")}, {"u": "s"}, "phone", exclude=())
    ds = load_dataset(items, {"u": _one_frame_items([0, 30, 20])}, 100.0)
    assert list(ds.sizes) == [1, 1, 1]
    result = score({"phone": ds}, [ANY_WITHIN])
    # (A=a, B=b) gives 1 - 1/2; (A=b, B=a) has no second b token to serve as X, so it is not scored.
    assert result.scores == {"phone_any_context_within_speaker": 0.5}
    far = load_dataset(items, {"u": _one_frame_items([0, 90, 20])}, 100.0)
    assert score({"phone": far}, [ANY_WITHIN]).scores["phone_any_context_within_speaker"] == 0.0


def test_conditions_without_triplets_are_undefined_and_say_what_is_missing():
    items = build_items({"u": _phones("a b a")}, {"u": "s"}, "phone", exclude=())
    ds = load_dataset(items, {"u": _one_frame_items([0, 30, 20])}, 100.0)
    result = score({"phone": ds, "triphone": ds}, CONDITIONS)
    assert result.scores["phone_any_context_across_speaker"] is None
    assert result.scores["phone_within_context_within_speaker"] is None
    assert "phone any-context across speaker: no (A, B, X) triplet: needs two phones of one speaker, the first also from another speaker" in result.notes[2]
    assert result.notes[2].endswith("(items 3, phones 2, speakers 1)")
    assert len(result.notes) == 5


def test_dtw_cost_is_averaged_over_the_path_zrc_abx2_walks_back():
    # Row [0, 1] against column [0, 0, 1]: cost 0 on the path (0,0) (0,1) (1,2): 3 steps.
    dist = np.array([[0, 0, 1], [1, 1, 0]], dtype=np.float32)
    assert dtw_blocks(dist, np.array([0]), np.array([3]))[0] == 0.0
    dist = np.array([[0.5, 0.25], [0.25, 0.5]], dtype=np.float32)
    # The diagonal path costs 1.0 over 2 steps; the side paths cost more.
    assert dtw_blocks(dist, np.array([0, 1]), np.array([2, 1]))[0] == np.float32(0.5)
    assert dtw_blocks(dist, np.array([0, 1]), np.array([2, 1]))[1] == np.float32(0.75 / 2)


def test_zero_frames_sit_at_the_largest_angle():
    out = normalize_with_singularity(np.array([[3, 4], [0, 0]], dtype=np.float32))
    assert out[0].tolist() == pytest.approx([0.6, 0.8, 1e-12])
    assert out[1, 2] == -2e12


def test_units_as_onehot_or_centroid_vectors():
    units = {"u": np.array([0, 2, 1])}
    assert unit_vectors(units, 3, "onehot")["u"].tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    centroids = np.array([[1, 1], [2, 2], [3, 3]], dtype=np.float32)
    assert unit_vectors(units, 3, "centroids", centroids)["u"].tolist() == [[1, 1], [3, 3], [2, 2]]
    with pytest.raises(AudiotokError, match="u: code 3 is outside 0..2"):
        unit_vectors({"u": np.array([3])}, 3, "onehot")
    with pytest.raises(UsageError, match="needs the codebook"):
        unit_vectors(units, 3, "centroids")


def test_evaluate_names_every_statistic_and_refuses_tables_without_alignments():
    alignments = {"u": _phones("a b a")}
    stats = evaluate({"u": _one_frame_items([0, 30, 20])}, 100.0, alignments, Settings(conditions=("phone_any_context_within_speaker",), exclude_phones=()))
    assert stats == {"abx_phone_items": 3, "abx_speakers": 1, "abx_distance": "cosine", "abx_phone_any_context_within_speaker": 0.5}
    with pytest.raises(AudiotokError, match="no key of the table has an alignment"):
        evaluate({"v": _one_frame_items([0])}, 100.0, alignments, Settings())
    with pytest.raises(UsageError, match="unknown ABX condition 'phone'"):
        evaluate({"u": _one_frame_items([0])}, 100.0, alignments, Settings(conditions=("phone",)))
