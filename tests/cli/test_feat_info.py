"""feat-info: Kaldi feat-to-len / feat-to-dim output, the summary numbers, and info refusing a feature archive."""

import json

import kaldiio
import numpy as np

from tests.conftest import assert_no_traceback, sine, write_audio


def write_ark(path, table, spec="ark") -> None:
    with kaldiio.WriteHelper(f"{spec}:{path}") as writer:
        for key, value in table.items():
            writer(key, value)


def small_table() -> dict[str, np.ndarray]:
    a = np.arange(12, dtype=np.float32).reshape(4, 3) - 5  # -5..6
    a[1, 2] = np.nan
    a[2, 0] = np.inf
    return {"a": a, "b": np.full((2, 3), 0.5, np.float32), "c": np.zeros((9, 3), np.float32)}


def test_lengths_and_dim_as_kaldi_prints_them(cli, tmp_path):
    write_ark(f"{tmp_path}/f.ark,{tmp_path}/f.scp", small_table(), spec="ark,scp")
    lengths = cli("feat-info", "--lengths", f"scp:{tmp_path}/f.scp")
    assert lengths.returncode == 0 and lengths.text == "a 4\nb 2\nc 9\n"
    dim = cli("feat-info", "--dim", "-", input=(tmp_path / "f.ark").read_bytes())
    assert dim.returncode == 0 and dim.text == "3\n"


def test_summary_counts_nan_and_inf_and_reads_the_recipe(cli, tmp_path):
    write_ark(tmp_path / "f.ark", small_table())
    (tmp_path / "f.ark.recipe.json").write_text(json.dumps({"backend": "mfcc", "dim": 3, "frame_rate": 100}))
    result = cli("feat-info", f"ark:{tmp_path}/f.ark")
    assert result.returncode == 0
    assert_no_traceback(result.stderr)
    # finite values: -5..6 without the NaN (at 0) and the Inf (at 1), 2 x 3 halves, 27 zeros
    finite = [v for v in range(-5, 7) if v not in (0, 1)]
    assert result.text.splitlines() == [
        "keys 3",
        "frames 15",
        "frames_min 2",
        "frames_median 4",
        "frames_max 9",
        "dim 3",
        "dtype float32",
        "kind matrix",
        "min -5",
        "max 6",
        f"mean {(sum(finite) + 3) / (len(finite) + 33):.9g}",
        "nan 1",
        "inf 1",
        'recipe {"backend": "mfcc", "dim": 3, "frame_rate": 100}',
    ]
    summary = json.loads(cli("feat-info", "--format", "json", f"ark:{tmp_path}/f.ark").text)
    assert summary["nan"] == 1 and summary["dtype"] == ["float32"] and summary["dim"] == 3 and summary["recipe"]["backend"] == "mfcc"


def test_dims_that_vary_and_units(cli, tmp_path):
    write_ark(tmp_path / "mixed.ark", {"a": np.zeros((2, 39), np.float32), "b": np.ones((3, 768), np.float64)})
    text = cli("feat-info", f"ark:{tmp_path}/mixed.ark").text
    assert "dim varies: 39..768\n" in text and "dtype float32,float64\n" in text
    dim = cli("feat-info", "--dim", f"ark:{tmp_path}/mixed.ark")
    assert dim.returncode == 1 and dim.stderr.strip().splitlines()[-1].startswith("error: dim varies: 39..768")
    (tmp_path / "units.txt").write_text("u1 5 5 7\nu2 3\n")
    units = json.loads(cli("feat-info", "--format", "json", f"text:{tmp_path}/units.txt").text)
    assert (units["keys"], units["frames"], units["dim"], units["kind"], units["dtype"], units["min"], units["max"]) == (2, 4, 1, ["vector"], ["int32"], 3, 7)


def test_empty_archive_is_zero_keys(cli, tmp_path):
    (tmp_path / "empty.ark").write_bytes(b"")
    result = cli("feat-info", "--format", "json", f"ark:{tmp_path}/empty.ark")
    assert result.returncode == 0 and json.loads(result.text)["keys"] == 0 and json.loads(result.text)["frames"] == 0
    assert cli("feat-info", "--lengths", f"ark:{tmp_path}/empty.ark").text == ""


def test_bad_archive_is_one_line(cli, tmp_path):
    write_ark(tmp_path / "f.ark", small_table())
    (tmp_path / "cut.ark").write_bytes((tmp_path / "f.ark").read_bytes()[:-7])
    result = cli("feat-info", f"ark:{tmp_path}/cut.ark")
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/cut.ark entry 3 ('c'): truncated archive (the entry ends early) (hint: the archive was cut short: make it again)"
    )


def test_info_refuses_a_feature_archive_in_one_line(cli, tmp_path):
    write_ark(f"{tmp_path}/f.ark,{tmp_path}/f.scp", small_table(), spec="ark,scp")
    for spec, hint in [(f"ark:{tmp_path}/f.ark", f"ark:{tmp_path}/f.ark"), (f"{tmp_path}/f.ark", f"ark:{tmp_path}/f.ark"), (f"scp:{tmp_path}/f.scp", None)]:
        result = cli("info", spec)
        assert result.returncode == 2 and result.stdout == b""
        assert result.stderr.strip().splitlines()[-1] == f"error: {spec} is a feature archive, not audio (hint: audiotok feat-info {hint or spec})"
    piped = cli("info", "-", input=(tmp_path / "f.ark").read_bytes())
    assert piped.returncode == 2 and "error: stdin is a feature archive, not audio (hint: audiotok feat-info -)" in piped.stderr
    # an archive of audio still is audio
    write_audio(tmp_path / "x.wav", sine(440, 16000, 0.1), 16000)
    assert cli("resample", "--rate", "8000", tmp_path / "x.wav", f"ark,scp:{tmp_path}/w.ark,{tmp_path}/w.scp").returncode == 0
    audio = cli("info", "--header-only", f"scp:{tmp_path}/w.scp")
    assert audio.returncode == 0 and audio.text.startswith("x rate=8000 channels=1 samples=800 ")
