"""`audiotok sweep-table`: the table, TSV and plot of a layer x k sweep, and its one-line errors."""

import json
import math

import pytest

from audiotok.abx import sweep
from tests.conftest import assert_no_traceback

PWC = "abx_phone_within_context_within_speaker"
TRI = "abx_triphone_within_speaker"

# What abx (dense) and report --abx (units) print with --format json, cut to a few keys.
FILES = {
    "l3/k100.json": {"k": 100, "frame_rate": 50.0, "pnmi": 0.61234, "nominal_bits_per_s": 332.1928, "entropy_bits_per_s": 320.04, PWC: 0.1234, TRI: 0.2},
    "l3/dense.json": {"utterances": 6, "frame_rate": 50.0, "abx_distance": "cosine", PWC: 0.05, TRI: None},
    "mfcc.json": {"utterances": 6, "frame_rate": 100.0, PWC: 0.25, TRI: 0.3},
    "l1/k50.json": {"k": 50, "pnmi": 0.4, "nominal_bits_per_s": 282.1928094887362, "entropy_bits_per_s": 270.55, PWC: 0.4567},
    "l12.json": {"utterances": 6, PWC: 0.0999, TRI: 0.15},
    "l3/k50.json": {"k": 50, "pnmi": 0.5, "nominal_bits_per_s": 282.1928094887362, "entropy_bits_per_s": 275.0, PWC: 0.3, TRI: 0.35},
}
LIST = """\
# layer k file
3 100 l3/k100.json
3 dense l3/dense.json

mfcc dense mfcc.json
1 50 l1/k50.json
12 dense l12.json
3 50 l3/k50.json
"""
# mfcc first (not a layer number), then layers 1, 3, 12 by number; dense, then k ascending.
MARKDOWN = """\
| layer | k     | PNMI  | nominal bits/s | entropy bits/s | ABX phone within-ctx within-spk (%) | ABX triphone within-spk (%) |
| ----- | ----: | ----: | -------------: | -------------: | ----------------------------------: | --------------------------: |
| mfcc  | dense |     – |              – |              – |                               25.00 |                       30.00 |
| 1     |    50 | 0.400 |          282.2 |          270.6 |                               45.67 |                           – |
| 3     | dense |     – |              – |              – |                                5.00 |                           – |
| 3     |    50 | 0.500 |          282.2 |          275.0 |                               30.00 |                       35.00 |
| 3     |   100 | 0.612 |          332.2 |          320.0 |                               12.34 |                       20.00 |
| 12    | dense |     – |              – |              – |                                9.99 |                       15.00 |
"""
TSV = """\
layer\tk\tpnmi\tnominal_bits_per_s\tentropy_bits_per_s\tabx_phone_within_context_within_speaker\tabx_triphone_within_speaker
mfcc\tdense\t\t\t\t0.25\t0.3
1\t50\t0.4\t282.1928094887362\t270.55\t0.4567\t
3\tdense\t\t\t\t0.05\t
3\t50\t0.5\t282.1928094887362\t275.0\t0.3\t0.35
3\t100\t0.61234\t332.1928\t320.04\t0.1234\t0.2
12\tdense\t\t\t\t0.0999\t0.15
"""


@pytest.fixture
def sweep_dir(tmp_path):
    for name, data in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    (tmp_path / "results.list").write_text(LIST)
    return tmp_path


def test_markdown_on_stdout_tsv_and_plot_files(cli, sweep_dir):
    out = sweep_dir / "out"
    result = cli("sweep-table", sweep_dir / "results.list", "--tsv", out / "sweep.tsv", "--plot", out / "sweep.png")
    assert result.returncode == 0, result.stderr
    assert result.text == MARKDOWN
    assert (out / "sweep.tsv").read_text() == TSV
    png = (out / "sweep.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    assert "(ABX: phone_within_context_within_speaker)" in result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["sweep.png", "sweep.tsv"]  # no temporary file left


def test_stdin_list_is_relative_to_the_working_directory_and_markdown_goes_to_a_file(cli, sweep_dir):
    result = cli("sweep-table", "-", "--markdown", "sweep.md", input=LIST.encode(), cwd=sweep_dir)
    assert result.returncode == 0, result.stderr
    assert result.text == ""
    assert (sweep_dir / "sweep.md").read_text() == MARKDOWN


def test_rows_sort_labels_first_in_list_order_then_layers_by_number_then_dense_and_k():
    rows = [
        sweep.Row(layer, k, {}, line)
        for line, (layer, k) in enumerate([("10", 500), ("mfcc", 50), ("2", 50), ("fbank", None), ("10", None), ("mfcc", None), ("2", 9)])
    ]
    assert [(row.layer, row.k) for row in sweep.sort_rows(rows)] == [
        ("mfcc", None),
        ("mfcc", 50),
        ("fbank", None),
        ("2", 9),
        ("2", 50),
        ("10", None),
        ("10", 500),
    ]


def test_default_condition_is_the_one_with_a_value_in_the_most_rows():
    rows = [
        sweep.Row("1", None, {PWC: None, TRI: 0.1}, 1),
        sweep.Row("2", None, {PWC: 0.2, TRI: 0.1}, 2),
        sweep.Row("3", 50, {"pnmi": 0.5}, 3),
    ]
    assert sweep.default_condition(rows) == "triphone_within_speaker"
    rows[0].values[PWC] = 0.3  # a tie: the first in CONDITION_NAMES order
    assert sweep.default_condition(rows) == "phone_within_context_within_speaker"
    assert sweep.default_condition([sweep.Row("1", 50, {"pnmi": 0.5}, 1)]) is None


def test_plot_lines_per_k_with_gaps_and_reference_lines_for_labels(sweep_dir, monkeypatch):
    import audiotok.units.report

    figures = []
    monkeypatch.setattr(audiotok.units.report, "save_figure", lambda figure, path: figures.append(figure))
    sweep.plot_sweep(sweep.read_results(str(sweep_dir / "results.list")), "triphone_within_speaker", "unused.png")
    left, right, twin = figures[0].axes
    lines = {line.get_label(): line for line in left.get_lines()}
    assert sorted(lines) == ["dense", "k=100", "k=50", "mfcc dense"]
    assert list(lines["dense"].get_xdata()) == [1, 3, 12]
    dense = lines["dense"].get_ydata()
    assert math.isnan(dense[0]) and math.isnan(dense[1]) and dense[2] == pytest.approx(15.0)  # missing and null: gaps
    assert lines["dense"].get_color() == "black" and lines["dense"].get_linestyle() == "--"
    assert list(lines["mfcc dense"].get_ydata()) == [pytest.approx(30.0)] * 2  # a horizontal reference line
    k50 = lines["k=50"].get_ydata()
    assert math.isnan(k50[0]) and k50[1] == pytest.approx(35.0) and math.isnan(k50[2])
    assert {line.get_label() for line in right.get_lines()} == {"PNMI k=50", "PNMI k=100"}
    assert {line.get_label(): line.get_linestyle() for line in twin.get_lines()} == {"entropy k=50": ":", "entropy k=100": ":"}
    assert left.get_ylabel() == "ABX error (%)" and twin.get_ylabel() == "entropy (bits/s)" and left.get_xlabel() == "encoder layer"


BAD_LINES = {
    "missing file": ("3 50 nowhere.json\n", "results.list:1: cannot read nowhere.json: No such file or directory"),
    "bad K": ("# k must be a size\n3 big l3/k50.json\n", "results.list:2: K must be a positive integer or dense, got 'big'"),
    "not JSON": (
        "3 50 garbage.txt\n",
        "results.list:1: garbage.txt is not JSON (Expecting value: line 1 column 1 (char 0))"
        " (hint: give the output of `abx --format json` or `report --format json`)",
    ),
    "no sweep keys": (
        "3 50 empty.json\n",
        "results.list:1: empty.json has none of the sweep's keys (pnmi, nominal_bits_per_s, entropy_bits_per_s, abx_*)"
        " (hint: run `abx --format json`, or `report --alignments --abx --format json`)",
    ),
    "too few fields": ("3 l3/k50.json\n", "results.list:1: expected `LAYER K FILE`, got '3 l3/k50.json'"),
    "k contradicts the file": ("3 100 l3/k50.json\n", "results.list:1: l3/k50.json holds units of k=50 but the line says k 100 (hint: fix K on that line)"),
    "a line twice": ("3 50 l3/k50.json\n3 50 l3/k50.json\n", "results.list:2: layer 3 k 50 is already on line 1 (hint: give each (LAYER, K) one line)"),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_a_bad_line_is_one_error_line_naming_it(cli, sweep_dir, case):
    text, message = BAD_LINES[case]
    (sweep_dir / "garbage.txt").write_text("not json\n")
    (sweep_dir / "empty.json").write_text('{"utterances": 6}\n')
    (sweep_dir / "results.list").write_text(text)
    result = cli("sweep-table", "results.list", cwd=sweep_dir)
    assert result.returncode == 1 and result.text == ""
    assert_no_traceback(result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.splitlines()[-1]] == [f"error: {message}"]


def test_a_missing_list_and_a_wrong_condition(cli, sweep_dir):
    result = cli("sweep-table", sweep_dir / "absent.list")
    assert (
        result.returncode == 1
        and result.stderr.splitlines()[-1] == f"error: cannot read the results list {sweep_dir / 'absent.list'}: No such file or directory"
    )
    result = cli("sweep-table", sweep_dir / "results.list", "--plot", sweep_dir / "p.png", "--condition", "phone_any_context_within_speaker")
    assert result.returncode == 2 and result.stderr.splitlines()[-1].startswith("error: no row has a value for --condition phone_any_context_within_speaker")
    assert_no_traceback(result.stderr)
    assert not (sweep_dir / "p.png").exists()
