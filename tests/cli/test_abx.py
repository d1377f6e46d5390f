"""`audiotok abx` and `report --abx` as a user runs them: outputs, notes, and one-line errors."""

import json
import math

import numpy as np

from tests.conftest import assert_no_traceback


def _corpus(tmp_path):
    """One utterance `a b a`, 20 ms a phone, one 2-d frame each at 100 Hz: a at 0 and 20 degrees, b at 30."""
    frames = np.zeros((6, 2), dtype=np.float32)
    frames[::2] = [[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in (0, 30, 20)]
    (tmp_path / "feats").mkdir()
    np.save(tmp_path / "feats" / "u.npy", frames)
    (tmp_path / "ali.txt").write_text("u 0.00 0.02 a\nu 0.02 0.04 b\nu 0.04 0.06 a\n")
    (tmp_path / "units.txt").write_text("u 0 0 1 1 2 2\n")
    return ["--alignments", tmp_path / "ali.txt", "--exclude-phones", "sil"]


def test_abx_of_features_prints_each_statistic(tmp_path, cli):
    options = _corpus(tmp_path)
    done = cli("abx", *options, "--frame-rate", 100, "--conditions", "phone_any_context_within_speaker", f"npy:{tmp_path / 'feats'}")
    assert done.returncode == 0, done.stderr
    assert done.text == (
        "utterances                            1\n"
        "frame_rate                            100\n"
        "abx_phone_items                       3\n"
        "abx_speakers                          1\n"
        "abx_distance                          cosine\n"
        "abx_phone_any_context_within_speaker  0.5\n"
    )


def test_conditions_without_triplets_print_na_with_one_note_each(tmp_path, cli):
    options = _corpus(tmp_path)
    args = ("abx", *options, "--frame-rate", 100, "--format", "json", "-o", tmp_path / "abx.json", f"npy:{tmp_path / 'feats'}")
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert_no_traceback(done.stderr)
    scores = json.loads((tmp_path / "abx.json").read_text())
    assert scores["abx_phone_any_context_within_speaker"] == 0.5
    assert [name for name, value in scores.items() if name.startswith("abx_") and value is None] == [
        "abx_phone_within_context_within_speaker",
        "abx_phone_within_context_across_speaker",
        "abx_phone_any_context_across_speaker",
        "abx_triphone_within_speaker",
        "abx_triphone_across_speaker",
    ]
    notes = [line for line in done.stderr.splitlines() if "no (A, B, X) triplet" in line]
    assert len(notes) == 5 and all("WARNING" in line and "speakers 1" in line for line in notes)
    again = cli(*args)  # the finished output is kept, notes and all
    assert again.returncode == 0 and "is already done by a run with the same arguments" in again.stderr


def test_bad_abx_input_is_one_line_error(tmp_path, cli):
    options = _corpus(tmp_path)
    (tmp_path / "other").mkdir()
    np.save(tmp_path / "other" / "v.npy", np.ones((4, 2), dtype=np.float32))
    for args, code, message in (
        (["--conditions", "phone", f"npy:{tmp_path / 'feats'}", "--frame-rate", 100], 2, "error: unknown ABX condition 'phone'"),
        ([tmp_path / "units.txt"], 2, "error: the frame rate of"),
        (["--bundle", tmp_path, f"npy:{tmp_path / 'feats'}", "--frame-rate", 100], 2, "holds dense features"),
        ([f"npy:{tmp_path / 'other'}", "--frame-rate", 100], 1, "error: no key of the table has an alignment"),
    ):
        failed = cli("abx", *options, *args)
        assert failed.returncode == code, (args, failed.stderr)
        assert message in failed.stderr and len(failed.stderr.strip().splitlines()[-1]) < 300
        assert_no_traceback(failed.stderr)


def test_report_adds_abx_of_units_beside_pnmi(tmp_path, cli):
    options = _corpus(tmp_path)
    done = cli("report", "--k", 3, "--frame-rate", 100, *options, "--abx", "--format", "json", tmp_path / "units.txt")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.text)
    assert report["pnmi"] is not None and report["abx_phone_items"] == 3
    # One-hot units: a (codes 0, 2) is as far from the other a as from b (code 1): every triplet a tie.
    assert report["abx_phone_any_context_within_speaker"] == 0.5
    failed = cli("report", "--k", 3, "--abx", tmp_path / "units.txt")
    assert failed.returncode == 2 and "error: --abx needs the phone alignments" in failed.stderr


def test_an_item_file_written_then_read_back_gives_the_same_scores(tmp_path, cli):
    options = _corpus(tmp_path)
    feats = f"npy:{tmp_path / 'feats'}"
    built = cli("abx", *options, "--frame-rate", 100, "--format", "json", "--write-items", tmp_path / "items", feats)
    assert built.returncode == 0, built.stderr
    read = cli("abx", "--item-file", tmp_path / "items" / "phone.item", "--frame-rate", 100, "--format", "json", feats)
    assert read.returncode == 0, read.stderr
    built, read = json.loads(built.text), json.loads(read.text)
    assert {k: v for k, v in built.items() if "triphone" not in k} == read
    for args in ((), ("--item-file", tmp_path / "items" / "phone.item", "--alignments", tmp_path / "ali.txt")):
        failed = cli("abx", *args, "--frame-rate", 100, feats)
        assert failed.returncode == 2 and "error: give --alignments or --item-file (one of them)" in failed.stderr
