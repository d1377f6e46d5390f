"""tokenize-shards --task J/N (a job array's task) and check-shard-tokens (every sample exactly once)."""

from pathlib import Path

import pytest

from audiotok.io.jsonl_writer import sample_line, skipped_line
from tests.conftest import assert_no_traceback, run_cli
from tests.pipeline.shards import generated_shards, make_mfcc_bundle, write_shard


def test_task_ranges_are_contiguous_nearly_equal_and_cover_every_shard_once():
    from audiotok.pipeline.shard_run import task_shards

    shards = [f"s{i}" for i in range(10)]
    parts = [task_shards(shards, (j, 4)) for j in range(1, 5)]
    assert parts == [["s0", "s1"], ["s2", "s3", "s4"], ["s5", "s6"], ["s7", "s8", "s9"]]
    assert task_shards(shards, None) == shards
    assert [len(task_shards(shards[:3], (j, 4))) for j in range(1, 5)] == [0, 1, 1, 1]  # more tasks than shards


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_mfcc_bundle(tmp_path_factory.mktemp("bundle") / "km")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """10 shards x 2 samples."""
    return generated_shards(tmp_path_factory.mktemp("corpus") / "shards", shards=10, per_shard=2)


def shards_cmd(corpus_dir, out, bundle, *extra):
    return ("tokenize-shards", "--input-dir", corpus_dir, "--output-dir", out, "--tokenizer", f"bundle:{bundle}", "--num-proc", 1, *extra)


def test_four_tasks_into_one_directory_merge_to_the_one_run_output(corpus, bundle, tmp_path):
    corpus_dir, identities = corpus
    out = tmp_path / "tasks"
    for j in range(1, 5):
        result = run_cli(*shards_cmd(corpus_dir, out, bundle, "--task", f"{j}/4"))
        assert result.returncode == 0, result.stderr
        assert f"task {j}/4: " in result.stderr and f"-> {out}/shards_{j}of4_*.jsonl" in result.stderr
    # Each task wrote a file of its own, holding exactly its range of shards.
    assert sorted(p.name for p in out.glob("*.jsonl")) == [f"shards_{j}of4_0.jsonl" for j in range(1, 5)]
    ranges = {1: [0, 1], 2: [2, 3, 4], 3: [5, 6], 4: [7, 8, 9]}
    for j, indices in ranges.items():
        shards = {line["shard"] for line in read_lines_of(out / f"shards_{j}of4_0.jsonl")}
        assert shards == {f"part-{i:03d}.tar" for i in indices}

    one = tmp_path / "one"
    result = run_cli(*shards_cmd(corpus_dir, one, bundle))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in one.glob("*.jsonl")) == ["shards_0.jsonl"]  # the old names without --task

    merged = {}
    for name, directory in (("tasks", out), ("one", one)):
        check = run_cli("check-shard-tokens", "--input-dir", corpus_dir, "--output-dir", directory, "-o", tmp_path / f"{name}.jsonl")
        assert check.returncode == 0, check.stderr
        assert check.text == "20 samples: 20 tokenized, 0 skipped, 0 missing, 0 duplicated\n"
        merged[name] = (tmp_path / f"{name}.jsonl").read_bytes()
    assert merged["tasks"] == merged["one"]
    assert [(line["shard"], line["key"]) for line in read_lines_of(tmp_path / "one.jsonl")] == sorted(identities)  # shard, then key order

    # A rerun of a finished task resumes: nothing is done twice.
    again = run_cli(*shards_cmd(corpus_dir, out, bundle, "--task", "2/4"))
    assert again.returncode == 0 and "done 6/6 (6 already done)" in again.stderr, again.stderr


def read_lines_of(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_task_with_no_shard_does_nothing_and_succeeds(corpus, bundle, tmp_path):
    result = run_cli(*shards_cmd(corpus[0], tmp_path / "out", bundle, "--to-index", 3, "--task", "1/4"))
    assert result.returncode == 0, result.stderr
    assert "task 1/4: no shard (3 shards selected for 4 tasks); done 0/0" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "value, message",
    [
        ("0/4", "error: --task 0/4: J must be within 1..N"),
        ("5/4", "error: --task 5/4: J must be within 1..N"),
        ("x", "error: --task 'x': expected J/N, e.g. 2/8"),
        ("1/0", "error: --task 1/0: J must be within 1..N"),
    ],
)
def test_bad_task_values_are_one_line_usage_errors(corpus, bundle, tmp_path, value, message):
    result = run_cli(*shards_cmd(corpus[0], tmp_path / "out", bundle, "--task", value))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message  # after the logged command line
    assert_no_traceback(result.stderr)


def hand_made(tmp_path: Path) -> tuple[Path, Path]:
    """Shards a.tar (k0..k3) and b.tar (k0, k1), and an output directory to check against them."""
    member = {"audio": b"not decoded by the check", "meta": {"text": "t"}}
    shards = tmp_path / "shards"
    write_shard(shards / "a.tar", {f"k{i}": member for i in range(4)})
    write_shard(shards / "b.tar", {f"k{i}": member for i in range(2)})
    out = tmp_path / "out"
    out.mkdir()
    return shards, out


def line(shard, key) -> str:
    return sample_line(key, shard, "en", f"text of {key}", {"units": [1, 2]})


def test_check_names_missing_duplicated_and_unknown_keys_and_accepts_recorded_skips(tmp_path):
    shards, out = hand_made(tmp_path)
    (out / "shards_0.jsonl").write_text(line("a.tar", "k0") + line("a.tar", "k1") + line("b.tar", "k0") + line("a.tar", "zz"))
    (out / "shards_1of2_0.jsonl").write_text(line("a.tar", "k1") + line("b.tar", "k1")[:20])  # a duplicate, and a torn line
    (out / "shards_0.skipped.jsonl").write_text(skipped_line("k2", "a.tar", "too short: 0.01 s"))
    (out / "other_0.jsonl").write_text(line("a.tar", "k3"))  # another input's file: not read
    result = run_cli("check-shard-tokens", "--input-dir", shards, "--output-dir", out, "--list", tmp_path / "problems.txt")
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 6 samples: 2 missing (a.tar:k3, b.tar:k1); 1 duplicated (a.tar:k1); 1 not in their shard (a.tar:zz) "
        "(hint: rerun the failed tasks (utils/launch.sh --rerun failed) or the same tokenize-shards command: finished samples are skipped)"
    )
    assert_no_traceback(result.stderr)
    assert (tmp_path / "problems.txt").read_text() == "missing a.tar k3\nmissing b.tar k1\nduplicated a.tar k1\nunknown a.tar zz\n"

    # The same outputs, put right: every sample once, tokenized or skipped with its reason.
    (out / "shards_0.jsonl").write_text(line("b.tar", "k1") + line("a.tar", "k3") + line("a.tar", "k0") + line("b.tar", "k0"))
    (out / "shards_1of2_0.jsonl").write_text(line("a.tar", "k1"))
    (out / "shards_1of2_0.skipped.jsonl").write_text(skipped_line("k2", "a.tar", "too short: 0.01 s"))  # skipped again by a rerun
    result = run_cli("check-shard-tokens", "--input-dir", shards, "--output-dir", out, "-o", tmp_path / "merged.jsonl")
    assert result.returncode == 0, result.stderr
    assert result.text == "6 samples: 5 tokenized, 1 skipped (too short: 1), 0 missing, 0 duplicated\n"
    expected = [("a.tar", "k0"), ("a.tar", "k1"), ("a.tar", "k3"), ("b.tar", "k0"), ("b.tar", "k1")]
    assert (tmp_path / "merged.jsonl").read_text() == "".join(line(*identity) for identity in expected)


def test_check_bad_inputs_are_one_line_errors(tmp_path):
    shards, out = hand_made(tmp_path)
    for args, code, message in (
        (("--input-dir", tmp_path / "none", "--output-dir", out), 1, f"error: no such input directory: {tmp_path / 'none'}"),
        (("--input-dir", shards, "--output-dir", tmp_path / "none"), 1, f"error: no such output directory: {tmp_path / 'none'}"),
        (("--input-dir", shards, "--output-dir", out, "--from-index", 5), 2, "error: --from-index 5 --to-index None selects no shard of the 2"),
    ):
        result = run_cli("check-shard-tokens", *args)
        assert result.returncode == code, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
        assert_no_traceback(result.stderr)
