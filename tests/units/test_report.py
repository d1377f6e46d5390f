import logging
import math
import struct

import numpy as np
import pytest

from audiotok.errors import AudiotokError
from audiotok.units.report import (
    code_counts,
    compare_units,
    entropy_bits,
    frame_phones,
    log_spectrogram,
    phone_unit_stats,
    plot_code_usage,
    plot_units_spectrogram,
    purity_and_pnmi,
    unit_summary,
)
from tests.conftest import sine


def units(**table):
    return {key: np.array(values, dtype=np.int64) for key, values in table.items()}


def test_uniform_codes_have_log2_k_bits_and_perplexity_k():
    summary = unit_summary(units(a=[0, 1, 2], b=[3]), k=8, frame_rate=50.0)
    assert summary == {
        "utterances": 2,
        "tokens": 4,
        "k": 8,
        "used_codes": 4,
        "codebook_usage": 0.5,
        "dead_codes": 4,
        "entropy_bits": 2.0,
        "perplexity": 4.0,
        "dedup_ratio": 1.0,
        "mean_run_length": 1.0,
        "frame_rate": 50.0,
        "seconds": 0.08,
        "tokens_per_s": 50.0,
        "nominal_bits_per_s": 150.0,
        "entropy_bits_per_s": 100.0,
    }
    assert "tokens_per_s" not in unit_summary(units(a=[0]), k=2)


def test_runs_dedup_ratio_and_entropy():
    summary = unit_summary(units(a=[5, 5, 5, 2, 5], b=[2, 2, 2], c=[]), k=6)
    assert summary["dedup_ratio"] == 4 / 8 and summary["mean_run_length"] == 2.0  # runs 3+1+1 | 3
    assert summary["entropy_bits"] == pytest.approx(1.0)  # four 5s, four 2s
    assert entropy_bits(np.array([[1, 1], [1, 1]])) == 2.0 and entropy_bits(np.zeros(3)) == 0.0
    assert unit_summary(units(a=[]), k=4)["dedup_ratio"] is None


def test_codes_outside_the_codebook_name_their_key():
    assert code_counts(units(a=[0, 3, 3]), 4).tolist() == [1, 0, 0, 2]
    with pytest.raises(AudiotokError, match=r"b: code 4 is outside 0..3"):
        code_counts(units(a=[0], b=[1, 4]), 4)
    with pytest.raises(AudiotokError, match=r"a: code -1 is outside 0..3"):
        code_counts(units(a=[-1]), 4)


def test_frame_phones_at_frame_centres():
    intervals = [(0.0, 0.05, "a"), (0.05, 0.1, "b"), (0.2, 0.3, "c")]
    index, phones = frame_phones(intervals, 7, 20.0)  # centres 0.025, 0.075, ..., 0.325
    assert [phones[i] if i >= 0 else None for i in index] == ["a", "b", None, None, "c", "c", None]
    index, _ = frame_phones(intervals, 2, 10.0)  # centre 0.05 starts "b": intervals are [start, end)
    assert index.tolist() == [1, -1]
    assert frame_phones([], 3, 50.0)[0].tolist() == [-1, -1, -1]


def test_one_to_one_mapping_is_perfect_and_independence_is_zero():
    assert purity_and_pnmi(np.diag([3, 1, 2])) == {"phone_purity": 1.0, "cluster_purity": 1.0, "pnmi": 1.0}
    independent = purity_and_pnmi(np.array([[1, 1], [1, 1]]))
    assert independent == {"phone_purity": 0.5, "cluster_purity": 0.5, "pnmi": 0.0}


def test_purities_and_pnmi_by_hand():
    # phones a, b; codes 0, 1: p(y, z) = [[1/2, 0], [1/4, 1/4]]; H(y) = 1 bit; p(z) = [3/4, 1/4].
    stats = purity_and_pnmi(np.array([[2, 0], [1, 1]]))
    mutual = 0.5 * math.log2(0.5 / (0.5 * 0.75)) + 0.25 * math.log2(0.25 / (0.5 * 0.75)) + 0.25 * math.log2(0.25 / (0.5 * 0.25))
    assert stats["phone_purity"] == pytest.approx(0.75)  # max over each code's column: 1/2 + 1/4
    assert stats["cluster_purity"] == pytest.approx(0.75)  # max over each phone's row: 1/2 + 1/4
    assert stats["pnmi"] == pytest.approx(mutual) and mutual == pytest.approx(0.311278, abs=1e-6)
    # Two codes for one phone: codes still tell the phone (PNMI 1), but the phone splits (cluster purity 3/4).
    split = purity_and_pnmi(np.array([[1, 1, 0], [0, 0, 2]]))
    assert split["phone_purity"] == 1.0 and split["cluster_purity"] == 0.75 and split["pnmi"] == pytest.approx(1.0)
    assert purity_and_pnmi(np.array([[3, 1]]))["pnmi"] is None  # one phone: H(y) = 0
    assert purity_and_pnmi(np.zeros((0, 0)))["phone_purity"] is None


def test_phone_unit_stats_over_matched_keys(caplog):
    alignments = {"u1": [(0.0, 0.2, "sil"), (0.2, 0.4, "a")], "u2": [(0.0, 0.3, "b")], "gone": [(0.0, 1.0, "a")]}
    table = units(u1=[7, 7, 1, 1, 1], u2=[4, 4, 4], extra=[0])  # 10 Hz: u1's 5th frame (0.45 s) is unaligned
    stats = phone_unit_stats(table, alignments, 10.0)
    assert stats == {
        "aligned_utterances": 2,
        "units_without_alignment": 1,
        "alignments_without_units": 1,
        "aligned_frames": 7,
        "unaligned_frames": 1,
        "phones": 3,
        "phone_purity": 1.0,
        "cluster_purity": 1.0,
        "pnmi": pytest.approx(1.0),
    }
    assert "frames fall outside" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="audiotok"):
        stats = phone_unit_stats(table, alignments, 5.0)  # the wrong frame rate: u1 runs past its alignment
    assert stats["unaligned_frames"] == 5 and "5 of 8 frames fall outside every aligned interval" in caplog.text


def test_compare_units_miss_rate_over_shared_positions():
    first = units(a=[1, 2, 3, 4], b=[5, 5], c=[1])
    second = units(a=[1, 2, 0, 4], b=[5, 6, 7], d=[2])
    assert compare_units(first, second) == {
        "compared_utterances": 2,
        "only_in_units": ["c"],
        "only_in_compare": ["d"],
        "length_mismatches": ["b"],
        "compared_tokens": 6,
        "differing_tokens": 2,
        "miss_rate": 2 / 6,
    }
    assert compare_units(units(a=[]), units(a=[]))["miss_rate"] is None


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_code_usage_plot_is_a_png(tmp_path):
    plot_code_usage(np.array([5, 0, 100, 3, 0, 1]), tmp_path / "usage.png")
    assert png_size(tmp_path / "usage.png") == (800, 400)
    assert 5_000 < (tmp_path / "usage.png").stat().st_size < 500_000
    plot_code_usage(np.zeros(4, dtype=np.int64), tmp_path / "empty.png")  # nothing used: no log axis, no crash
    assert png_size(tmp_path / "empty.png") == (800, 400)


def test_spectrogram_with_units_is_a_png(tmp_path):
    rate = 16000
    samples = np.concatenate([sine(300, rate, 1.0), sine(2000, rate, 1.0)])
    spectrogram = log_spectrogram(samples, rate)
    assert spectrogram.shape == (201, 198)  # 400-sample window, 160-sample hop
    assert spectrogram[15, 50] > spectrogram[80, 50] and spectrogram[80, 150] > spectrogram[15, 150]  # 300 Hz, then 2 kHz
    codes = np.repeat(np.array([3, 3, 9, 1]), 25)  # 100 units at 50 Hz: 2 s
    plot_units_spectrogram(samples, rate, codes, 50.0, tmp_path / "units.png", title="utt")
    width, height = png_size(tmp_path / "units.png")
    assert (width, height) == (800, 500)
    assert 10_000 < (tmp_path / "units.png").stat().st_size < 2_000_000
