"""tokenize-shards: tar shards -> one JSONL file per worker process, resumable, with every failure counted."""

import json
import logging
import os
import re
import signal
import tarfile
from pathlib import Path

import pytest

from tests.conftest import assert_no_traceback, lines_until, run_cli, start_cli, wait_for
from tests.pipeline.shards import by_identity, flac_bytes, generated_shards, make_mfcc_bundle, read_lines, signal_of, write_shard
from tests.plugins.gated import Gate


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_mfcc_bundle(tmp_path_factory.mktemp("bundle") / "km")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 shards x 4 generated samples, a quarter at 22.05 kHz; and the (shard, key) of each."""
    return generated_shards(tmp_path_factory.mktemp("corpus") / "shards")


@pytest.fixture(scope="module")
def reference(corpus, bundle, tmp_path_factory) -> tuple[Path, object]:
    """An uninterrupted one-process run: the output the other runs must equal."""
    out = tmp_path_factory.mktemp("reference")
    result = run_cli("tokenize-shards", "--input-dir", corpus[0], "--output-dir", out, "--tokenizer", f"bundle:{bundle}", "--num-proc", 1, "--stats-every", 4)
    return out, result


def shards_cmd(corpus_dir, out, bundle, *extra):
    return ("tokenize-shards", "--input-dir", corpus_dir, "--output-dir", out, "--tokenizer", f"bundle:{bundle}", *extra)


def tokenize_lines(bundle, inputs) -> dict[str, list[int]]:
    """What `audiotok tokenize` gives for the same audio: key -> units."""
    result = run_cli("tokenize", bundle, inputs, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    return {record["key"]: record["tokens"] for record in map(json.loads, result.text.splitlines())}


def test_one_and_two_processes_give_the_same_lines_and_equal_tokenize(corpus, bundle, reference, tmp_path):
    corpus_dir, identities = corpus
    one_dir, one = reference
    assert one.returncode == 0, one.stderr
    assert "done 16/16" in one.stderr and one.stdout == b""
    two = run_cli(*shards_cmd(corpus_dir, tmp_path / "two", bundle, "--num-proc", 2))
    assert two.returncode == 0, two.stderr
    assert sorted(p.name for p in one_dir.glob("*.jsonl")) == ["shards_0.jsonl"]
    assert sorted(p.name for p in (tmp_path / "two").glob("*.jsonl")) == ["shards_0.jsonl", "shards_1.jsonl"]
    # Shard i goes to process i % 2.
    assert {line["shard"] for line in read_lines_of(tmp_path / "two" / "shards_1.jsonl")} == {"part-001.tar", "part-003.tar"}
    lines_one, lines_two = by_identity(read_lines(one_dir)), by_identity(read_lines(tmp_path / "two"))
    assert sorted(lines_one) == sorted(identities) and lines_one == lines_two
    first = lines_one[("part-000.tar", "s0_00")]
    assert list(first) == ["key", "shard", "language", "text", "units"]
    assert first["language"] is None and first["text"] == "sentence 0"
    assert lines_one[("part-000.tar", "s0_01")]["language"] == "en" and lines_one[("part-000.tar", "s0_01")]["text"] == "sentence 1 é"
    expected = tokenize_lines(bundle, f"tar:{corpus_dir}")
    assert {key: line["units"] for (_, key), line in lines_one.items()} == expected


def read_lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


GATED = {"AUDIOTOK_TOKENIZERS": "tests.plugins.gated"}


def gated_cmd(corpus_dir, out, gate, *extra):
    """tokenize-shards with the gated test tokenizer: each call waits for the test (tests/plugins/gated.py)."""
    return ("tokenize-shards", "--input-dir", corpus_dir, "--output-dir", out, "--tokenizer", gate.spec, "--batch-seconds", 0, *extra)


def lines_in(out: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in out.glob("*.jsonl")) if out.is_dir() else 0


@pytest.fixture(scope="module")
def gated_reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gated_reference")
    result = run_cli("tokenize-shards", "--input-dir", corpus[0], "--output-dir", out, "--tokenizer", "gated:-", env=GATED)
    assert result.returncode == 0, result.stderr
    return out


def test_kill9_of_the_whole_run_then_rerun_equals_an_uninterrupted_run(corpus, gated_reference, tmp_path):
    corpus_dir, _ = corpus
    out, gate = tmp_path / "out", Gate(tmp_path / "gate")
    proc = start_cli(*gated_cmd(corpus_dir, out, gate, "--num-proc", 2), env=GATED, new_session=True)
    gate.release(3)
    # Three samples are through and each worker waits in its next call: the run is certainly half way.
    wait_for(lambda: gate.calls() == 5 and lines_in(out) == 3, "3 lines written, both workers waiting", proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and both workers at once
    proc.wait()
    proc.stderr.close()
    gate.open_wide()
    # A kill can land mid-line: make sure one torn line is there, as the worst case leaves it.
    with open(out / "shards_1.jsonl", "a") as handle:
        handle.write('{"key":"s1_03","shard":"part-001.tar","language":"en","text":"sen')
    # Resume with another process count: keys are read from every shards_*.jsonl.
    resumed = run_cli(*gated_cmd(corpus_dir, out, gate, "--num-proc", 1), env=GATED)
    assert resumed.returncode == 0, resumed.stderr
    assert "dropped a torn last line" in resumed.stderr
    assert "done 16/16 (3 already done)" in resumed.stderr
    assert by_identity(read_lines(out)) == by_identity(read_lines(gated_reference))


@pytest.mark.parametrize(
    "how, code, last",
    [("sigterm-to-parent", 143, "error: terminated"), ("ctrl-c-to-group", 130, "error: interrupted")],
)
def test_sigterm_or_ctrl_c_stop_the_workers_cleanly(corpus, gated_reference, tmp_path, how, code, last):
    corpus_dir, _ = corpus
    out, gate = tmp_path / "out", Gate(tmp_path / "gate")
    proc = start_cli(*gated_cmd(corpus_dir, out, gate, "--num-proc", 1), env=GATED, new_session=True)
    gate.release(2)
    wait_for(lambda: gate.calls() == 3 and lines_in(out) == 2, "2 lines written, the worker waiting", proc)
    if how == "sigterm-to-parent":
        proc.send_signal(signal.SIGTERM)  # the parent only: it must stop its workers itself
    else:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: every process of the group
    before = lines_until(proc, "stopping: waiting for 1 worker(s)")  # the worker has its SIGTERM now
    gate.open_wide()  # the sample in hand is finished, then the worker stops
    _, rest = proc.communicate(timeout=120)
    stderr = "".join(before) + rest.decode()
    assert proc.returncode == code, stderr
    assert stderr.rstrip().endswith(last)
    assert_no_traceback(stderr)
    lines = read_lines(out)  # asserts no torn line
    assert len(lines) == 3
    assert by_identity(lines).items() <= by_identity(read_lines(gated_reference)).items()


def test_a_second_run_on_the_same_output_is_refused_and_nothing_is_duplicated(corpus, gated_reference, tmp_path):
    corpus_dir, _ = corpus
    out, gate = tmp_path / "out", Gate(tmp_path / "gate")
    first = start_cli(*gated_cmd(corpus_dir, out, gate, "--num-proc", 2), env=GATED)
    wait_for(lambda: gate.calls() == 2, "both workers of the first run waiting", first)
    second = run_cli(*gated_cmd(corpus_dir, out, gate, "--num-proc", 2), env=GATED)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: {out / 'shards'} is being written by another run (pid {first.pid}) (hint: wait for that run to end, or stop it; a run that died holds no lock)"
    )
    gate.open_wide()
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()
    lines = read_lines(out)
    assert len(lines) == 16 and by_identity(lines) == by_identity(read_lines(gated_reference))


def test_a_bundle_refit_at_the_same_path_is_never_resumed_into(corpus, tmp_path):
    corpus_dir, _ = corpus
    bundle, out = make_mfcc_bundle(tmp_path / "km", k=12), tmp_path / "out"
    first = run_cli(*shards_cmd(corpus_dir, out, bundle, "--to-index", 1))  # a run that stopped after one shard
    assert first.returncode == 0 and len(read_lines(out)) == 4, first.stderr
    make_mfcc_bundle(tmp_path / "km", k=7)  # refit in place: same path, other centroids
    resumed = run_cli(*shards_cmd(corpus_dir, out, bundle))
    assert resumed.returncode == 1
    assert resumed.stderr.strip().splitlines()[-1] == (
        f"error: {out / 'shards'}_*.jsonl holds results made differently (changed: tokenizer_content); going on would mix two runs' results in one output "
        f"(hint: run the first command again to finish it, or use another --output-dir, or remove {out}/shards_*.jsonl to start over)"
    )
    assert len(read_lines(out)) == 4  # nothing added


def test_memory_guard_stops_cleanly_and_a_rerun_completes(corpus, bundle, reference, tmp_path):
    corpus_dir, _ = corpus
    out = tmp_path / "out"
    stopped = run_cli(*shards_cmd(corpus_dir, out, bundle, "--num-proc", 1, "--batch-seconds", 0, "--memory-limit", 0.001, "--memory-check-every", 3))
    assert stopped.returncode == 1, stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("error: worker ") and "above --memory-limit 0.001" in last
    assert "(hint: run the same command again: finished samples are skipped)" in last
    assert "done 3/16 (0 already done, 13 not processed), run incomplete" in stopped.stderr
    assert len(read_lines(out)) == 3  # three samples, then the check stopped the worker
    resumed = run_cli(*shards_cmd(corpus_dir, out, bundle, "--num-proc", 1))
    assert resumed.returncode == 0 and "done 16/16 (3 already done)" in resumed.stderr, resumed.stderr
    assert by_identity(read_lines(out)) == by_identity(read_lines(reference[0]))


def test_bad_samples_and_a_truncated_shard_are_counted_skips(bundle, tmp_path):
    good = {f"a{i}": {"audio": flac_bytes(signal_of(i), 16000), "meta": {"text": f"t{i}"}} for i in range(3)}
    bad = {
        "b_no_audio": {"meta": {"text": "no audio"}},
        "b_garbage": {"audio": b"this is not a flac file at all" * 20, "meta": {"text": "garbage"}},
        "b_no_json": {"audio": flac_bytes(signal_of(7), 16000)},
        "b_short": {"audio": flac_bytes(signal_of(8)[:40], 16000), "meta": {"text": "short"}},
        "b_bad_json": {"audio": flac_bytes(signal_of(9), 16000), "meta": b"{not json"},
    }
    shards = tmp_path / "shards"
    write_shard(shards / "a.tar", {**good, **bad})
    whole = write_shard(tmp_path / "b.tar", {f"c{i}": {"audio": flac_bytes(signal_of(10 + i), 16000), "meta": {"text": "c"}} for i in range(4)})
    with tarfile.open(whole) as archive:
        third_audio = archive.getmembers()[4]  # c2's audio: c0 and c1 come before the damage
    (shards / "b.tar").write_bytes(whole.read_bytes()[: third_audio.offset_data + 100])
    result = run_cli(*shards_cmd(shards, tmp_path / "out", bundle, "--num-proc", 1))
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stderr)
    assert "done 5/11" in result.stderr
    for name, reason in (
        ("a.tar:b_no_audio", "sample has no audio member"),
        ("a.tar:b_garbage", "cannot decode audio"),
        ("a.tar:b_no_json", "sample has no JSON metadata member"),
        ("a.tar:b_short", "too short"),
        ("a.tar:b_bad_json", "bad JSON in b_bad_json.json"),
        ("b.tar", f"damaged tar shard {shards / 'b.tar'}"),
    ):
        assert f"WARNING audiotok: {name}: {reason}" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: only 5 of 11 samples succeeded, below --min-success 0.95 (hint: see the warnings above for each failed item)"
    assert sorted(line["key"] for line in read_lines(tmp_path / "out")) == ["a0", "a1", "a2", "c0", "c1"]
    # Each unusable sample is recorded with its reason (the damaged shard with key null), so a check
    # tells them from lost ones.
    records = read_lines_of(tmp_path / "out" / "shards_0.skipped.jsonl")
    reasons = {(r["shard"], r["key"]): r["reason"] for r in records}
    assert len(records) == 6 and sorted(reasons, key=str) == sorted([("a.tar", k) for k in bad] + [("b.tar", None)], key=str)
    assert reasons[("a.tar", "b_no_audio")] == "sample has no audio member"
    assert reasons[("b.tar", None)].startswith(f"damaged tar shard {shards / 'b.tar'}, the samples after the damage are lost: ")
    check = run_cli("check-shard-tokens", "--input-dir", shards, "--output-dir", tmp_path / "out")
    assert check.returncode == 0, check.stderr
    assert check.text.startswith("11 samples: 5 tokenized, 6 skipped (")
    assert check.text.endswith(", 0 missing, 0 duplicated; 1 damaged shard(s), their samples after the damage cannot be listed\n")


def test_shard_slices_and_their_processes(tmp_path):
    from audiotok.pipeline.shard_run import assign_shards, list_shards

    for name in ("b.tar", "a.tar", "c.tar", "d.tar", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    every = [str(tmp_path / f"{n}.tar") for n in "abcd"]
    assert list_shards(str(tmp_path)) == every
    assert list_shards(str(tmp_path), 1, 3) == every[1:3]  # from included, to excluded
    assert list_shards(str(tmp_path), 2) == every[2:]
    assert assign_shards(every, 3) == [[every[0], every[3]], [every[1]], [every[2]]]
    assert assign_shards(every[:1], 4) == [[every[0]]]  # no process without a shard


def test_bad_arguments_are_one_line_errors(corpus, bundle, reference, tmp_path):
    corpus_dir, _ = corpus

    def command(tokenizer, *extra):
        return ("tokenize-shards", "--input-dir", corpus_dir, "--output-dir", tmp_path / "bad", "--tokenizer", tokenizer, *extra)

    cases = [
        (command("nope:x"), 2, "error: --tokenizer 'nope:x': unknown tokenizer"),
        (command(f"bicodec:{tmp_path / 'none'}"), 1, "error: no such BiCodec model directory"),
        (command(f"bundle:{tmp_path}"), 1, "is not a units bundle"),
        (command(str(corpus_dir)), 1, "is not a units bundle"),
        (command(f"bundle:{bundle}", "--from-index", 7), 2, "selects no shard of the 4"),
        (command(f"bundle:{bundle}", "--memory-limit", 0), 2, "--memory-limit 0: a share of memory within (0, 1]"),
    ]
    # --model_dir means a Spark-TTS (BiCodec) directory unless it is plainly another kind.
    missing_model_dir = ("tokenize-shards", "--input_dir", corpus_dir, "--output_dir", tmp_path / "bad", "--model_dir", tmp_path / "none")
    cases.append((missing_model_dir, 1, f"error: no such BiCodec model directory: {tmp_path / 'none'}"))
    # Lines of another tokenizer never go into files made with this one.
    other_tokenizer = ("tokenize-shards", "--input-dir", corpus_dir, "--output-dir", reference[0], "--tokenizer", f"s3:{bundle / 'centroids.npy'}")
    cases.append((other_tokenizer, 1, f"error: {reference[0]}/shards_*.jsonl holds results made differently (changed: tokenizer, tokenizer_content)"))
    for args, code, message in cases:
        result = run_cli(*args)
        assert result.returncode == code and message in result.stderr, (args, result.stderr)
        assert_no_traceback(result.stderr)


def test_a_tokenizer_that_cannot_load_is_one_error_line(corpus, bundle, tmp_path):
    config = json.loads((bundle / "config.json").read_text())
    config["recipe"].update(backend="hf", model=str(tmp_path / "missing-model"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps(config))
    (broken / "centroids.npy").write_bytes((bundle / "centroids.npy").read_bytes())
    result = run_cli(*shards_cmd(corpus[0], tmp_path / "out", broken, "--num-proc", 1))
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot start the tokenizer: ") and "missing-model" in last, result.stderr
    assert_no_traceback(result.stderr)


def test_real_speech_two_processes_equal_tokenize(speech_dir, bundle, tmp_path):
    files = sorted(p for p in speech_dir.iterdir() if p.suffix in (".flac", ".ogg"))[:4]
    for s in range(2):
        samples = {p.name.split(".")[0]: {"audio": p.read_bytes(), "ext": p.suffix[1:], "meta": {"text": p.name}} for p in files[s::2]}
        write_shard(tmp_path / "speech" / f"sp-{s}.tar", samples)
    result = run_cli(*shards_cmd(tmp_path / "speech", tmp_path / "out", bundle, "--num-proc", 2, "--batch-seconds", 20))
    assert result.returncode == 0, result.stderr
    assert "done 4/4" in result.stderr
    lines = by_identity(read_lines(tmp_path / "out"))
    assert {key: line["units"] for (_, key), line in lines.items()} == tokenize_lines(bundle, f"tar:{tmp_path / 'speech'}")


def test_torn_tails_are_cut_and_finished_keys_read_from_every_file(tmp_path):
    from audiotok.io.jsonl_writer import line_identity, output_files, read_done, repair_tail, sample_line

    first = tmp_path / "shards_0.jsonl"
    whole = sample_line("k1", "a.tar", None, "é", {"units": [1, 2]}) + sample_line('k"2', "a.tar", "en", None, {"units": []})
    first.write_text(whole + '{"key":"k3","shard":"a.t', encoding="utf-8")
    assert repair_tail(first) == len('{"key":"k3","shard":"a.t') and first.read_text(encoding="utf-8") == whole
    assert repair_tail(first) == 0
    only_torn = tmp_path / "shards_7.jsonl"
    only_torn.write_text('{"key":"x"')
    assert repair_tail(only_torn) == 10 and only_torn.read_bytes() == b""
    (tmp_path / "shards_1.jsonl").write_text('{"shard":"b.tar","key":"k9","units":[3]}\nnot json\n{"key":"k4","shard":"b.tar"')
    (tmp_path / "other_0.jsonl").write_text(sample_line("z", "a.tar", None, None, {"units": [0]}))
    files = output_files(tmp_path, "shards")
    assert [p.name for p in files] == ["shards_0.jsonl", "shards_1.jsonl", "shards_7.jsonl"]
    assert read_done(files) == {("a.tar", "k1"), ("a.tar", 'k"2'), ("b.tar", "k9")}  # a line still being written is not done
    assert read_done(files, {"b.tar"}) == {("b.tar", "k9")}
    assert line_identity("{}") is None


# --- the seed's command line (tar token extraction script) ---------------------------------


def parsed_options(monkeypatch, *args):
    """The ShardRunOptions the real tokenize-shards command builds from args (nothing runs)."""
    import typer

    from audiotok.cli import app
    from audiotok.pipeline import shard_run

    seen = []
    monkeypatch.setattr(shard_run, "run_shards", seen.append)
    command = typer.main.get_command(app).commands["tokenize-shards"]
    command.main(args=[str(a) for a in args], prog_name="tokenize-shards", standalone_mode=False)
    return seen[0]


def test_the_seed_spelling_means_the_same_options(monkeypatch, bundle, tmp_path):
    from audiotok.errors import UsageError
    from audiotok.pipeline.shard_run import model_dir_spec

    seed = ("--input_dir", "in", "--output_dir", "out", "--model_dir", bundle, "--num_proc", 3, "--from_index", 1, "--to_index", 4)
    ours = ("--input-dir", "in", "--output-dir", "out", "--tokenizer", f"bundle:{bundle}", "--num-proc", 3, "--from-index", 1, "--to-index", 4)
    seed, ours = seed + ("--procs_per_gpu", 1), ours + ("--procs-per-gpu", 1)
    assert parsed_options(monkeypatch, *seed) == parsed_options(monkeypatch, *ours)
    # --model_dir is Spark-TTS's directory in the seed: BiCodec unless the path is plainly another kind.
    model_file = tmp_path / "speech_tokenizer_v1.onnx"
    model_file.write_bytes(b"")
    assert model_dir_spec(str(bundle)) == f"bundle:{bundle}"
    assert model_dir_spec(str(model_file)) == f"s3:{model_file}"
    assert model_dir_spec(str(tmp_path)) == f"bicodec:{tmp_path}"
    assert model_dir_spec("Spark-TTS-0.5B") == "bicodec:Spark-TTS-0.5B"  # a preset name or a missing directory
    assert parsed_options(monkeypatch, "--input_dir", "in", "--output_dir", "out", "--model-dir", "Spark-TTS-0.5B").tokenizer == "bicodec:Spark-TTS-0.5B"
    for both_or_neither in (("--tokenizer", f"bundle:{bundle}", "--model_dir", bundle), ()):
        with pytest.raises(UsageError, match="give one of --tokenizer SPEC and --model-dir DIR"):
            parsed_options(monkeypatch, "--input_dir", "in", "--output_dir", "out", *both_or_neither)


def test_the_seed_command_line_runs_and_equals_the_reference(corpus, bundle, reference, tmp_path):
    corpus_dir, _ = corpus
    out = tmp_path / "out"
    # The seed's own spelling, word for word (its --model_dir given a units bundle, the cheapest tokenizer).
    seed_line = ("--input_dir", corpus_dir, "--output_dir", out, "--model_dir", bundle, "--num_proc", 2, "--from_index", 1, "--to_index", 4)
    result = run_cli("tokenize-shards", *seed_line, "--procs_per_gpu", 1)
    assert result.returncode == 0, result.stderr
    assert "3 shards of" in result.stderr and "done 12/12" in result.stderr
    # Shard i of the slice [1, 4) goes to process i % 2.
    assert {line["shard"] for line in read_lines_of(out / "shards_0.jsonl")} == {"part-001.tar", "part-003.tar"}
    assert {line["shard"] for line in read_lines_of(out / "shards_1.jsonl")} == {"part-002.tar"}
    expected = {identity: line for identity, line in by_identity(read_lines(reference[0])).items() if identity[0] != "part-000.tar"}
    assert by_identity(read_lines(out)) == expected
    # The same run file as a --tokenizer bundle:DIR run: the two spellings may resume each other.
    assert (out / ".shards.tokenize-shards.json").read_text() == (reference[0] / ".shards.tokenize-shards.json").read_text()


# --- workers that die are started again --------------------------------------------------


def test_a_killed_worker_is_restarted_and_every_sample_is_written_once(corpus, bundle, reference, tmp_path):
    corpus_dir, _ = corpus
    out = tmp_path / "out"
    # Worker 1 finishes part-001.tar (4 lines), writes s3_00 of part-003.tar, tears the next line and
    # SIGKILLs itself before reporting its group: the parent must cut the line, count s3_00 and restart it.
    death = {"AUDIOTOK_TEST_WORKER_DEATH": "1:5"}
    result = run_cli(*shards_cmd(corpus_dir, out, bundle, "--num-proc", 2, "--batch-seconds", 1), env=death)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stderr)
    restarted = "WARNING audiotok: worker 1 died (killed by SIGKILL); starting it again for its 1 unfinished shard(s) (restart 1 of --max-restarts 2)"
    assert restarted in result.stderr
    assert f"{out / 'shards_1.jsonl'}: dropped the torn last line" in result.stderr
    assert "done 16/16\n" in result.stderr  # nothing counted twice, nothing missing
    assert by_identity(read_lines(out)) == by_identity(read_lines(reference[0]))  # each sample once, as uninterrupted


def test_a_worker_that_keeps_dying_fails_in_one_line_and_a_rerun_completes(corpus, bundle, reference, tmp_path):
    corpus_dir, _ = corpus
    out = tmp_path / "out"
    always = {"AUDIOTOK_TEST_WORKER_DEATH": "1:1:every"}  # each attempt of worker 1 writes one line, then dies
    failed = run_cli(*shards_cmd(corpus_dir, out, bundle, "--num-proc", 2, "--batch-seconds", 0, "--max-restarts", 1), env=always)
    assert failed.returncode == 1, failed.stderr
    assert_no_traceback(failed.stderr)
    assert failed.stderr.count("worker 1 died (killed by SIGKILL); starting it again") == 1
    assert "done 10/16 (0 already done, 6 not processed), run incomplete" in failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == (
        "error: worker 1 died 2 times (the last: killed by SIGKILL) with shard(s) part-001.tar, part-003.tar unfinished "
        "(hint: run the same command again: finished samples are skipped; if the OOM killer sent it, lower --num-proc or --batch-seconds)"
    )
    assert len(read_lines(out)) == 10  # no torn line left behind
    resumed = run_cli(*shards_cmd(corpus_dir, out, bundle, "--num-proc", 1))
    assert resumed.returncode == 0 and "done 16/16 (10 already done)" in resumed.stderr, resumed.stderr
    assert by_identity(read_lines(out)) == by_identity(read_lines(reference[0]))


# --- the memory guard, the GPU of each process, the statistics line ----------------------


class ListQueue(list):
    def put(self, message):
        self.append(message)


def run_worker_here(corpus_dir: Path, bundle: Path, out: Path, **changes):
    """One worker over every shard, in this process: (messages, the _Stop it raised or None)."""
    import torch

    from audiotok.pipeline.shard_worker import WorkerJob, _Stop, _Worker

    output = out / "shards_0.jsonl"
    settings = dict(
        index=0, shards=[str(p) for p in sorted(corpus_dir.glob("*.tar"))], output=str(output), existing_outputs=[str(output)],
        spec=f"bundle:{bundle}", device="cpu", procs_per_gpu=1, dtype="float32", threads=1, batch_seconds=0.0,
        memory_limit=0.9, memory_check_every=3, log_level=0, parent_pid=os.getpid(),
    )  # fmt: skip
    messages, threads = ListQueue(), torch.get_num_threads()
    try:
        _Worker(WorkerJob(**{**settings, **changes}), messages, lambda: False).run()
        return messages, None
    except _Stop as stop:
        return messages, stop
    finally:
        torch.set_num_threads(threads)


def memory_readings(monkeypatch, readings):
    """Memory shares the guard will read, one a call (the last one repeated); returns the free_caches calls."""
    from audiotok.engine import memory

    values, freed = list(readings), []
    monkeypatch.setattr(memory, "memory_share", lambda: values.pop(0) if len(values) > 1 else values[0])
    monkeypatch.setattr(memory, "free_caches", lambda: freed.append(len(values)))
    return freed


def test_memory_guard_goes_on_when_freeing_helps_and_stops_when_it_does_not(corpus, bundle, reference, monkeypatch, tmp_path):
    corpus_dir, _ = corpus
    everything = by_identity(read_lines(reference[0]))
    # Over the limit at the first check, under it once caches are freed: the worker goes on to the end.
    freed = memory_readings(monkeypatch, [0.95, 0.5])
    messages, stop = run_worker_here(corpus_dir, bundle, tmp_path / "helped")
    assert stop is None and len(freed) == 1
    assert [m[0] for m in messages].count("shard") == 4
    assert by_identity(read_lines(tmp_path / "helped")) == everything
    # Still over right after freeing: it stops at that check (3 samples written), then a rerun completes.
    freed = memory_readings(monkeypatch, [0.95])
    _, stop = run_worker_here(corpus_dir, bundle, tmp_path / "stuck")
    assert stop is not None and stop.status == "memory" and len(freed) == 1
    assert stop.message.startswith("memory use 95% is above --memory-limit 0.9 after freeing caches (this worker holds ")
    assert len(read_lines(tmp_path / "stuck")) == 3
    memory_readings(monkeypatch, [0.5])
    messages, stop = run_worker_here(corpus_dir, bundle, tmp_path / "stuck")
    assert stop is None and messages[0] == ("started", 0, "cpu", 3)
    assert by_identity(read_lines(tmp_path / "stuck")) == everything


@pytest.mark.parametrize(
    "gpus, procs_per_gpu, num_proc, expected",
    [
        (4, 2, 8, ["cuda:0", "cuda:0", "cuda:1", "cuda:1", "cuda:2", "cuda:2", "cuda:3", "cuda:3"]),  # the seed's two a GPU
        (3, 2, 8, ["cuda:0", "cuda:0", "cuda:1", "cuda:1", "cuda:2", "cuda:2", "cuda:0", "cuda:0"]),  # wraps around
        (2, 1, 5, ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]),  # one a GPU, for long audio
        (2, 3, 7, ["cuda:0", "cuda:0", "cuda:0", "cuda:1", "cuda:1", "cuda:1", "cuda:0"]),
        (1, 2, 3, ["cuda:0", "cuda:0", "cuda:0"]),
        (0, 2, 3, ["cpu", "cpu", "cpu"]),
    ],
)
def test_each_process_gets_gpu_p_div_procs_per_gpu_mod_count(monkeypatch, gpus, procs_per_gpu, num_proc, expected):
    import torch

    import audiotok.device
    from audiotok.device import for_worker as worker_device

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(audiotok.device, "_gpu_driver_present", lambda: True)
    assert [worker_device("auto", p, procs_per_gpu) for p in range(num_proc)] == expected
    assert chosen == [int(d.split(":")[1]) for d in expected if d != "cpu"]  # a bare "cuda" in a tokenizer means that GPU
    assert worker_device("cpu", 1, procs_per_gpu) == "cpu"
    if gpus:
        assert worker_device("cuda", num_proc - 1, procs_per_gpu) == expected[-1]
    else:
        from audiotok.errors import AudiotokError

        with pytest.raises(AudiotokError, match="--device cuda: no CUDA device is available"):
            worker_device("cuda", 0, procs_per_gpu)


def test_stats_line_every_n_samples(reference):
    from audiotok.pipeline.shard_run import Counts, ProgressView, Supervisor, WorkerSlot

    # A run of 1 process and 16 samples, --stats-every 4: a line at 4, 8, 12, 16, audio seconds exact.
    stats = [line.split("audiotok: ")[1] for line in reference[1].stderr.splitlines() if "audiotok: stats:" in line]
    pattern = r"stats: (\d+) samples \(0 failed\), \d+\.\d s tokenizing \(\d+\.\d{3} s a sample\), (\d+\.\d) s of audio, \d+\.\d audio s/s"
    assert [re.fullmatch(pattern, line).groups() for line in stats] == [("4", "2.2"), ("8", "4.4"), ("12", "6.6"), ("16", "8.8")]
    # Every number, with a clock the test holds: the messages of a worker as the parent reads them.
    now = [100.0]
    view = ProgressView(shard_count=2, stats_every=3, clock=lambda: now[0])
    counts = Counts()
    supervisor = Supervisor(None, None, counts, view, max_restarts=0)
    slot = WorkerSlot(0, ["a.tar", "b.tar"], Path("unused"), 0)
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("audiotok")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        for at, message in [
            (100.0, ("started", 0, "cpu", 5)),
            (101.0, ("progress", 0, 1, 2.5, 0.25)),
            (102.0, ("failed", 0, "a.tar:x", "too short")),
            (104.0, ("progress", 0, 1, 5.5, 0.5)),  # 3 processed: a line
            (105.0, ("progress", 0, 2, 4.0, 0.25)),
            (106.0, ("progress", 0, 1, 4.0, 0.125)),  # 6 processed: a line
        ]:
            now[0] = at
            supervisor.handle(slot, message)
            view.update(counts)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [line for line in lines if line.startswith("stats:")] == [
        "stats: 2 samples (1 failed), 0.8 s tokenizing (0.375 s a sample), 8.0 s of audio, 2.0 audio s/s",
        "stats: 5 samples (1 failed), 1.1 s tokenizing (0.225 s a sample), 16.0 s of audio, 2.7 audio s/s",
    ]
    assert counts.already_done == 5 and view.summary(counts) == "5 samples (1 failed, 5 already done), 2.7 audio s/s"
