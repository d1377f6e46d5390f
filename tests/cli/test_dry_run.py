"""--dry-run: exact items, hours, frames, tokens and disk from headers, a positive ETA, nothing written."""

import json
import math
import tarfile

import pytest

from tests.cli.test_tokenize import bundle_from
from tests.conftest import assert_no_traceback, make_data_dir, run_cli, sine, write_audio

SECONDS = {"a": 1.0, "b": 2.0, "c": 2.5}  # at 16 kHz: 100, 200 and 250 frames at 100 Hz


def files_under(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def estimate_of(result) -> dict:
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stderr)
    lines = (result.stdout if isinstance(result.stdout, str) else result.stdout.decode()).splitlines()
    assert len(lines) == 1, lines  # one JSON line on stdout, the readable report on stderr
    assert "dry run of" in result.stderr and "time:" in result.stderr
    return json.loads(lines[0])


def corpus(directory, broken=True):
    """Wavs of known length and, with broken, a file that is not audio (key `bad`)."""
    items = {key: write_audio(directory / "in" / f"{key}.wav", sine(200 + 40 * i, 16000, s), 16000) for i, (key, s) in enumerate(SECONDS.items())}
    if broken:
        (directory / "in" / "bad.wav").write_bytes(b"not audio at all")
        items["bad"] = str(directory / "in" / "bad.wav")
    return make_data_dir(directory / "data", items)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A units bundle on 13 MFCCs (100 Hz), made from the corpus."""
    directory = tmp_path_factory.mktemp("bundle")
    data = corpus(directory, broken=False)
    assert run_cli("extract-feats", "--backend", "mfcc", data, f"ark:{directory}/f.ark").returncode == 0
    return bundle_from(directory / "f.ark", directory / "km")


def test_tokenize_dry_run_counts_exactly_and_writes_nothing(bundle, tmp_path):
    data = corpus(tmp_path)
    before = files_under(tmp_path)
    report = estimate_of(run_cli("tokenize", bundle, data, "-o", tmp_path / "out" / "units.txt", "--dry-run", "--nj", 2))
    assert files_under(tmp_path) == before  # no output, lock, marker, partial file or recipe
    assert (report["items"], report["readable"]) == (4, 3)
    assert [entry["key"] for entry in report["unreadable"]] == ["bad"] and "cannot decode audio" in report["unreadable"][0]["reason"]
    assert report["seconds"] == 5.5 and report["hours"] == round(5.5 / 3600, 6)
    assert report["durations_from"] == {"header": 3}
    assert (report["frame_rate"], report["frames"], report["tokens"]) == (100.0, 550, {"units": 550})
    disk = report["disk"]
    assert disk["parquet_uint16_bytes"] == 1100
    # A text line is `key u1 u2 ...\n`: the keys' bytes, then what a token takes as measured in the calibration.
    assert disk["text_bytes"] == sum(len(k) + 1 for k in SECONDS) + round(550 * disk["text_bytes_per_token"])
    assert disk["jsonl_bytes"] > disk["text_bytes"]
    # --nj 2 cuts the four items as --shard 1/2 and 2/2 would: a, b | bad, c.
    assert [(job["items"], job["seconds"]) for job in report["jobs"]] == [(2, 3.0), (2, 2.5)]
    assert report["calibration"]["audio_seconds"] == 5.5 and report["calibration"]["x_real_time"] > 0
    assert report["eta_seconds"] == max(job["eta_seconds"] for job in report["jobs"]) > 0


def test_extract_feats_dry_run_gives_the_archive_size(tmp_path):
    data = corpus(tmp_path, broken=False)
    before = files_under(tmp_path)
    out = f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp"
    report = estimate_of(run_cli("extract-feats", "--backend", "mfcc", data, out, "--dry-run", "--calibrate-seconds", 1.5))
    assert files_under(tmp_path) == before
    assert (report["frames"], report["tokens"], report["output"]) == (550, None, "features")
    # Per item: `key ` + the binary matrix header (15 bytes) + frames x 13 float32 values.
    frames = {key: int(s * 100) for key, s in SECONDS.items()}
    assert report["disk"]["ark_bytes"] == sum(len(key) + 1 + 15 + frames[key] * 13 * 4 for key in SECONDS)
    assert (report["disk"]["dtype"], report["disk"]["dim"]) == ("float32", 13)
    assert report["calibration"]["audio_seconds"] == 1.5  # the first item whole, half a second of the second


def test_utt2dur_gives_the_hours_without_opening_audio(tmp_path):
    # wav.scp names files that do not exist: utt2dur is the data dir's word on durations, as for
    # split_data.sh; the calibration then finds no audio and the time is unknown.
    durations = {"x": "3.25", "y": "10.5"}
    data = make_data_dir(tmp_path / "data", {k: str(tmp_path / "gone" / f"{k}.wav") for k in durations}, utt2dur=durations)
    report = estimate_of(run_cli("extract-feats", "--backend", "fbank", data, "ark:-", "--dry-run"))
    assert (report["items"], report["seconds"], report["durations_from"]) == (2, 13.75, {"utt2dur": 2})
    assert report["frames"] == 325 + 1050
    assert report["eta_seconds"] is None and "no readable item" in report["calibration"]["failure"]


def test_s3_extract_dry_run_counts_tokens_at_the_model_rate(tmp_path):
    from tests.units.test_s3 import save_tiny

    weights, _ = save_tiny(tmp_path, "v1", 25)
    data = corpus(tmp_path / "c", broken=False)
    report = estimate_of(run_cli("s3-extract", "--model", weights, "--version", "v1", "--rate", 25, data, "-o", tmp_path / "u.txt", "--dry-run"))
    assert not (tmp_path / "u.txt").exists() and not (tmp_path / "u.txt.recipe.json").exists()
    tokens = sum(math.floor(s * 25) for s in SECONDS.values())
    assert (report["frame_rate"], report["tokens"], report["disk"]["parquet_uint16_bytes"]) == (25, {"units": tokens}, 2 * tokens)


def test_tokenize_shards_dry_run_splits_by_process(bundle, tmp_path):
    audio = corpus(tmp_path, broken=False).parent / "in"
    shards = tmp_path / "shards"
    shards.mkdir()
    for name, keys in (("s0", ["a", "b"]), ("s1", ["c"])):
        with tarfile.open(shards / f"{name}.tar", "w") as tar:
            for key in keys:
                tar.add(audio / f"{key}.wav", arcname=f"{key}.wav")
    (shards / "s2.tar").write_bytes(b"damaged")
    result = run_cli(
        "tokenize-shards", "--input-dir", shards, "--output-dir", tmp_path / "tokens", "--tokenizer", f"bundle:{bundle}", "--num-proc", 2, "--dry-run"
    )
    report = estimate_of(result)
    assert not (tmp_path / "tokens").exists()
    assert (report["readable"], report["seconds"], report["tokens"]) == (3, 5.5, {"units": 550})
    assert [entry["key"] for entry in report["unreadable"]] == ["s2.tar"]
    # Shard i goes to process i % 2: s0 and s2 to the first, s1 to the second.
    assert [(job["items"], job["seconds"]) for job in report["jobs"]] == [(3, 3.0), (1, 2.5)]

    # As an array of 3 tasks (one shard each, as --task J/3 cuts them) of 2 processes on 1 node x 2 slots.
    array_options = ("--nj", 3, "--nodes", 1, "--tasks-per-node", 2, "--assume-x-real-time", 10)
    result = run_cli(
        "tokenize-shards",
        "--input-dir",
        shards,
        "--output-dir",
        tmp_path / "tokens",
        "--tokenizer",
        f"bundle:{bundle}",
        "--num-proc",
        2,
        "--dry-run",
        *array_options,
    )
    report = estimate_of(result)
    assert [job["seconds"] for job in report["jobs"]] == [3.0, 2.5, 0.0]
    array = report["array"]
    assert (array["tasks"], array["slots"], array["processes_per_task"], array["x_real_time"]) == (3, 2, 2, 20)
    load = report["calibration"]["load_seconds"]
    assert array["wall_seconds"] == pytest.approx(max(load + 3.0 / 20, 2 * load + 2.5 / 20), abs=2e-3)
    failed = run_cli(
        "tokenize-shards", "--input-dir", shards, "--output-dir", tmp_path / "tokens", "--tokenizer", f"bundle:{bundle}", "--dry-run", "--nodes", 2
    )
    assert failed.returncode == 2 and "error: --nodes needs --nj N: the array's tasks" in failed.stderr


def test_recipe_dry_run_lists_its_stages_and_estimates_the_features(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    recipe = tmp_path / "mini"
    shutil.copytree(ROOT / "recipes" / "mini", recipe, symlinks=True, ignore=shutil.ignore_patterns("data", "exp", "dump"))
    (recipe / "utils").unlink()
    (recipe / "utils").symlink_to(ROOT / "recipes" / "utils")
    (recipe / "path.sh").write_text((recipe / "path.sh").read_text().replace('"$recipe_root/../../bin', f'"{ROOT}/bin'))
    env = {**os.environ, "AUDIOTOK_PYTHON": sys.executable}
    run = lambda *args: subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)  # noqa: E731

    before = files_under(recipe)
    plan = run("--dry-run", "true")  # nothing prepared yet: the plan, and what stage 3 still waits for
    assert plan.returncode == 0, plan.stderr
    assert "stage 0: data prep" in plan.stderr and "stage 5: units" in plan.stderr
    assert "data/mini_clean is not there yet" in plan.stderr and plan.stdout == ""
    assert files_under(recipe) == before

    clean = corpus(tmp_path / "prepared", broken=False)
    shutil.copytree(clean, recipe / "data" / "mini_clean")
    (recipe / "data" / "mini_clean" / "utt2dur").write_text("".join(f"{k} {s}\n" for k, s in SECONDS.items()))
    before = files_under(recipe)
    result = run("--stage", "3", "--dry-run", "true")
    assert files_under(recipe) == before  # no dump/, exp/, logs or markers
    report = estimate_of(result)
    assert (report["durations_from"], report["seconds"], report["frames"]) == ({"utt2dur": 3}, 5.5, 550)
    assert report["disk"]["dim"] == 39 and len(report["jobs"]) == 2  # conf/feats_mfcc.conf: MFCC with deltas; --nj 2
    assert "stage 0" not in result.stderr and "stage 3: features" in result.stderr


def test_segments_give_their_durations_without_opening_audio(tmp_path):
    data = make_data_dir(tmp_path / "data", {"rec": str(tmp_path / "gone.wav")}, segments={"rec-1": "rec 0.5 2.0", "rec-2": "rec 2.0 4.25"})
    report = estimate_of(run_cli("extract-feats", "--backend", "mfcc", data, "ark:-", "--dry-run"))
    assert (report["durations_from"], report["seconds"], report["frames"]) == ({"segments": 2}, 3.75, 150 + 225)


def test_a_tokenizer_of_several_fields_is_counted_field_by_field(tmp_path):
    data = corpus(tmp_path, broken=False)
    result = run_cli("tokenize", "two-fields:-", data, "--format", "jsonl", "--dry-run", env={"AUDIOTOK_TOKENIZERS": "tests.plugins.two_fields"})
    report = estimate_of(result)
    # The calibration covers the whole 5.5 s: its counts are the run's (50 semantic tokens a second, 4 global ones an item).
    assert report["tokens"] == {"global": 12, "semantic": 50 + 100 + 125}
    assert report["frame_rate"] == 287 / 5.5  # no frame rate declared: the tokens a second the calibration measured
    assert report["disk"]["parquet_uint16_bytes"] == 2 * 287


def test_nj_without_dry_run_is_a_usage_error(tmp_path):
    data = corpus(tmp_path, broken=False)
    result = run_cli("extract-feats", "--backend", "mfcc", data, "ark:-", "--nj", 2)
    assert result.returncode == 2 and "error: --nj goes with --dry-run (hint: run the jobs with --shard J/N each)" in result.stderr
    assert result.stdout == b""


def test_the_jobs_as_an_array_on_nodes_give_tasks_hours_and_wall_time(tmp_path):
    data = corpus(tmp_path, broken=False)
    options = ("--dry-run", "--calibrate-seconds", 1.0, "--nj", 3, "--nodes", 1, "--tasks-per-node", 2)
    report = estimate_of(run_cli("extract-feats", "--backend", "mfcc", data, "ark:-", *options, "--assume-x-real-time", 100))
    array = report["array"]
    assert (array["tasks"], array["slots"], array["x_real_time"]) == (3, 2, 100)
    # Each task: the model load, then its audio at 100x real time. Tasks 1 and 2 start at once on
    # the two slots; task 3 starts when the first of them ends.
    load = report["calibration"]["load_seconds"]
    first, second, third = (load + job["seconds"] / 100 for job in report["jobs"])
    assert array["wall_seconds"] == pytest.approx(max(first, second, min(first, second) + third), abs=2e-3)
    assert array["hours"] == pytest.approx(sum(SECONDS.values()) / 3600, abs=1e-6)

    # A 10,000-hour corpus in 8,000 tasks on 100 nodes x 8: 1.25 h a task, 10 waves.
    many = ("--nj", 8000, "--nodes", 100, "--tasks-per-node", 8, "--assume-hours", 10000, "--assume-x-real-time", 300)
    big = estimate_of(run_cli("extract-feats", "--backend", "mfcc", data, "ark:-", "--dry-run", "--calibrate-seconds", 1.0, *many))["array"]
    assert big["hours_per_task"] == {"min": 1.25, "median": 1.25, "max": 1.25}
    assert big["wall_seconds"] == pytest.approx(10 * (15 + report["calibration"]["load_seconds"]), abs=0.5)


def test_array_options_need_dry_run_and_nodes(tmp_path):
    data = corpus(tmp_path, broken=False)
    for args, message in (
        (("--nodes", 2), "error: --nodes goes with --dry-run"),
        (("--dry-run", "--tasks-per-node", 4), "error: --tasks-per-node, --assume-x-real-time and --assume-hours go with --nodes"),
    ):
        result = run_cli("extract-feats", "--backend", "mfcc", data, "ark:-", *args)
        assert result.returncode == 2 and message in result.stderr and result.stdout == b""
