"""recipes/utils: the job launcher (local backend), split_data.sh and merge_tables.sh."""

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for

UTILS = ROOT / "recipes" / "utils"
LAUNCH = UTILS / "launch.sh"


def run(script, *args, cwd, env=None):
    return subprocess.run([str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def launch(*args, cwd, env=None):
    return run(LAUNCH, *args, cwd=cwd, env=env)


# A job that counts its runs in runs.JOB and fails while the file fail.JOB exists.
COUNTING_JOB = "echo run >> runs.JOB; echo job JOB says hello; if [ -e fail.JOB ]; then echo job JOB is broken; exit 3; fi"


def test_parallel_limit_is_honoured(tmp_path):
    job = "date +%s.%N > t.JOB.start; sleep 0.3; date +%s.%N > t.JOB.end"
    result = launch("--max-jobs", "2", "JOB=1:6", "log/t.JOB.log", job, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spans = [(float((tmp_path / f"t.{j}.start").read_text()), float((tmp_path / f"t.{j}.end").read_text())) for j in range(1, 7)]
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert overlap == 2  # never more than 2, and the limit is used


def test_logs_are_framed_and_job_is_substituted(tmp_path):
    result = launch("JOB=2:3", "log/JOB/echo.JOB.log", "echo", "arg-JOB", "two words", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert not (tmp_path / "log" / "1").exists()
    lines = (tmp_path / "log" / "3" / "echo.3.log").read_text().splitlines()
    assert lines[0] == "# echo arg-3 two\\ words"
    assert lines[1].startswith("# Started at ") and lines[2] == "#"
    assert lines[3] == "arg-3 two words"
    assert re.fullmatch(r"# Accounting: time=\d+ threads=1", lines[4])
    assert lines[5].startswith("# Ended (code 0) at ") and len(lines) == 6
    assert (tmp_path / "log" / "3" / "echo.3.log.done").read_text() == "0\n"


def test_one_argument_is_a_bash_command_line_and_arguments_are_quoted(tmp_path):
    result = launch("JOB=1", "log/p.JOB.log", "echo hi JOB $GREETING | tr a-z A-Z > out.JOB", cwd=tmp_path, env={"GREETING": "there"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.1").read_text() == "HI 1 THERE\n"
    # Several arguments: shell characters in them are data, never code; bare operators still work.
    result = launch("JOB=1:2", "log/q.JOB.log", "echo", "$(touch pwned) ; x", "|", "cat", ">", "q.JOB", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "q.2").read_text() == "$(touch pwned) ; x\n" and not (tmp_path / "pwned").exists()
    # No JOB=.. at all: one job, nothing substituted.
    result = launch("log/single.log", "echo JOB", cwd=tmp_path)
    assert result.returncode == 0 and "\nJOB\n" in (tmp_path / "log" / "single.log").read_text()


def test_failure_names_the_failed_jobs_and_shows_the_first_failed_log(tmp_path):
    (tmp_path / "fail.3").touch()
    result = launch("JOB=1:4", "log/c.JOB.log", COUNTING_JOB, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "launch.sh: 1 of 4 jobs failed: 3 (see log/c.3.log)"
    assert "job 3 is broken" in result.stderr and "job 1 says" not in result.stderr
    assert lines[-1].startswith("# Ended (code 3) at ")
    assert [(tmp_path / "log" / f"c.{j}.log.done").read_text() for j in range(1, 5)] == ["0\n", "0\n", "3\n", "0\n"]

    for j in (2, 4):
        (tmp_path / f"fail.{j}").touch()
    result = launch("JOB=1:4", "log/c.JOB.log", COUNTING_JOB, cwd=tmp_path)
    assert result.stderr.splitlines()[0] == "launch.sh: 3 of 4 jobs failed: 2-4 (see log/c.2.log)"
    assert "job 2 is broken" in result.stderr and "job 3 is broken" not in result.stderr


def test_rerun_failed_repeats_only_the_failed_job(tmp_path):
    (tmp_path / "fail.3").touch()
    assert launch("JOB=1:4", "log/c.JOB.log", COUNTING_JOB, cwd=tmp_path).returncode == 1
    logs = {j: (tmp_path / "log" / f"c.{j}.log").stat().st_mtime_ns for j in range(1, 5)}
    (tmp_path / "fail.3").unlink()
    result = launch("--rerun", "failed", "JOB=1:4", "log/c.JOB.log", COUNTING_JOB, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr == "launch.sh: --rerun failed: running 1 of 4 jobs (3); the others already ran\n"
    assert [len((tmp_path / f"runs.{j}").read_text().split()) for j in range(1, 5)] == [1, 1, 2, 1]
    assert all((tmp_path / "log" / f"c.{j}.log").stat().st_mtime_ns == logs[j] for j in (1, 2, 4))
    # Nothing left to do: nothing runs.
    assert launch("--rerun=failed", "JOB=1:4", "log/c.JOB.log", COUNTING_JOB, cwd=tmp_path).returncode == 0
    assert len((tmp_path / "runs.3").read_text().split()) == 2
    # unfinished: only a job without a marker (as if killed); a failed job is kept and reported.
    (tmp_path / "log" / "c.2.log.done").unlink()
    (tmp_path / "log" / "c.4.log.done").write_text("1\n")
    result = launch("--rerun", "unfinished", "JOB=1:4", "log/c.JOB.log", COUNTING_JOB, cwd=tmp_path)
    assert [len((tmp_path / f"runs.{j}").read_text().split()) for j in range(1, 5)] == [1, 2, 2, 1]
    assert result.returncode == 1 and "1 of 4 jobs failed: 4 (see log/c.4.log)" in result.stderr
    # The default reruns everything.
    assert launch("JOB=1:4", "log/c.JOB.log", COUNTING_JOB, cwd=tmp_path).returncode == 0
    assert [len((tmp_path / f"runs.{j}").read_text().split()) for j in range(1, 5)] == [2, 3, 3, 2]


def test_a_job_without_exit_code_counts_as_failed(tmp_path):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "k.1.log.done").write_text("0\n")
    result = launch("--rerun", "unfinished", "JOB=1:2", "log/k.JOB.log", "true", cwd=tmp_path)
    assert result.returncode == 0
    (tmp_path / "log" / "k.2.log.done").unlink()
    result = launch("--rerun", "failed", "--backend", "local", "JOB=1", "log/k.JOB.log", "true", cwd=tmp_path)
    assert result.returncode == 0 and "running 0 of 1 jobs" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "need a LOGFILE and a COMMAND"),
        (["JOB=1:3", "log/x.log", "true"], "must contain JOB"),
        (["JOB=3:1", "log/x.JOB.log", "true"], "bad job range"),
        (["JOB=a", "log/x.JOB.log", "true"], "bad job range"),
        (["--max-jobs", "0", "JOB=1:2", "log/x.JOB.log", "true"], "--max-jobs must be a positive integer"),
        (["--backend", "sge", "JOB=1:2", "log/x.JOB.log", "true"], "--backend must be local or slurm"),
        (["--rerun", "some", "JOB=1:2", "log/x.JOB.log", "true"], "--rerun must be"),
        (["--nope", "1", "JOB=1:2", "log/x.JOB.log", "true"], "unknown option --nope"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    result = launch(*args, cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert not (tmp_path / "log").exists()


def test_help_exits_0():
    result = launch("--help", cwd=ROOT)
    assert result.returncode == 0 and result.stdout.startswith("usage: launch.sh") and "--rerun failed" in result.stdout


# --- split_data.sh ---


def table(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def keys(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines()]


def write(path: Path, rows):
    path.write_text("".join(f"{k} {v}\n" for k, v in rows))


def make_dir(directory: Path, n=10, durations=True, segments=False) -> Path:
    directory.mkdir(parents=True)
    utts = [f"spk{i % 3}-utt{i:02d}" for i in range(n)]
    utts.sort()
    if segments:
        write(directory / "segments", [(u, f"rec{i % 4} 0 1") for i, u in enumerate(utts)])
        write(directory / "wav.scp", [(f"rec{r}", f"/audio/rec{r}.flac") for r in range(5)])  # rec4: unused
    else:
        write(directory / "wav.scp", [(u, f"/audio/{u}.flac") for u in utts])
    write(directory / "utt2spk", [(u, u.split("-")[0]) for u in utts])
    write(directory / "spk2utt", [(s, " ".join(u for u in utts if u.startswith(s))) for s in ("spk0", "spk1", "spk2")])
    write(directory / "text", [(u, f"words of {u}") for u in utts])
    write(directory / "spk2gender", [("spk0", "f"), ("spk1", "m"), ("spk2", "f")])
    if durations:
        write(directory / "utt2dur", [(u, f"{1 + (i * 7) % 10}.5") for i, u in enumerate(utts)])
    return directory


def check_valid(part: Path):
    """A Kaldi data dir: C-sorted unique keys, every utterance table on the same keys."""
    utts = keys(part / ("segments" if (part / "segments").exists() else "wav.scp"))
    assert utts and utts == sorted(set(utts), key=lambda k: k.encode())
    for name in ("text", "utt2spk", "utt2dur"):
        if (part / name).exists():
            assert keys(part / name) == utts, name
    spk2utt = {s: u.split() for s, u in table(part / "spk2utt").items()}
    assert list(spk2utt) == sorted(spk2utt)
    assert sorted(u for us in spk2utt.values() for u in us) == utts
    assert all(table(part / "utt2spk")[u] == s for s, us in spk2utt.items() for u in us)
    assert keys(part / "spk2gender") == list(spk2utt)


def test_split_by_duration_is_balanced_contiguous_and_valid(tmp_path):
    data = make_dir(tmp_path / "data")
    result = run(UTILS / "split_data.sh", data, 3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    parts = [data / "split3" / str(j) for j in (1, 2, 3)]
    for part in parts:
        check_valid(part)
    assert sum((keys(p / "wav.scp") for p in parts), []) == keys(data / "wav.scp")  # contiguous, in order
    dur = {k: float(v) for k, v in table(data / "utt2dur").items()}
    totals = [sum(dur[u] for u in keys(p / "wav.scp")) for p in parts]
    assert max(totals) - min(totals) <= max(dur.values())  # as balanced as contiguous parts allow
    assert sorted(os.listdir(parts[0])) == ["spk2gender", "spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"]


def test_split_by_count_without_durations(tmp_path):
    data = make_dir(tmp_path / "data", n=10, durations=False)
    assert run(UTILS / "split_data.sh", data, 4, cwd=tmp_path).returncode == 0
    sizes = [len(keys(data / "split4" / str(j) / "wav.scp")) for j in range(1, 5)]
    assert sum(sizes) == 10 and max(sizes) - min(sizes) <= 1
    assert run(UTILS / "split_data.sh", data, 10, cwd=tmp_path).returncode == 0  # one utterance each


def test_split_with_segments_keeps_the_recordings_used(tmp_path):
    data = make_dir(tmp_path / "data", segments=True)
    assert run(UTILS / "split_data.sh", data, 2, cwd=tmp_path).returncode == 0
    for j in (1, 2):
        part = data / "split2" / str(j)
        check_valid(part)
        used = sorted({row.split()[0] for row in table(part / "segments").values()})
        assert keys(part / "wav.scp") == used and "rec4" not in used
    assert keys(data / "split2" / "1" / "segments") + keys(data / "split2" / "2" / "segments") == keys(data / "segments")


def test_split_skips_when_fresh_and_redoes_when_inputs_change(tmp_path):
    data = make_dir(tmp_path / "data")
    assert run(UTILS / "split_data.sh", data, 2, cwd=tmp_path).returncode == 0
    done = data / "split2" / ".done"
    stamp = done.stat().st_mtime_ns
    assert run(UTILS / "split_data.sh", data, 2, cwd=tmp_path).returncode == 0
    assert done.stat().st_mtime_ns == stamp
    write(data / "text", [(k, "new words") for k in keys(data / "text")])
    os.utime(data / "text", ns=(stamp + 10**9, stamp + 10**9))
    assert run(UTILS / "split_data.sh", data, 2, cwd=tmp_path).returncode == 0
    assert "new words" in (data / "split2" / "1" / "text").read_text()


def test_split_errors(tmp_path):
    data = make_dir(tmp_path / "data", n=3)
    result = run(UTILS / "split_data.sh", data, 4, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == "split_data.sh: cannot split 3 utterances into 4 parts\n"
    assert not (data / "split4").exists() and not list(data.glob("split4*"))
    assert run(UTILS / "split_data.sh", data, 0, cwd=tmp_path).returncode == 2
    (data / "text").write_text("spk2-utt02 b\nspk0-utt00 a\n")
    result = run(UTILS / "split_data.sh", data, 2, cwd=tmp_path)
    assert result.returncode == 1 and "text is not sorted" in result.stderr


# --- merge_tables.sh ---


def test_merge_tables(tmp_path):
    (tmp_path / "u.1").write_text("a 1 2\nc 3\n")
    (tmp_path / "u.2").write_text("b 4\nd 5 6\n")
    (tmp_path / "u.3").write_text("")
    result = run(UTILS / "merge_tables.sh", "out/units.txt", "u.1", "u.2", "u.3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "units.txt").read_text() == "a 1 2\nb 4\nc 3\nd 5 6\n"
    # Numeric-looking keys sort as bytes: "10" before "9".
    (tmp_path / "n.1").write_text("10 x\n9 y\n")
    (tmp_path / "n.2").write_text("11 z\n")
    assert run(UTILS / "merge_tables.sh", "n", "n.1", "n.2", cwd=tmp_path).returncode == 0
    assert (tmp_path / "n").read_text() == "10 x\n11 z\n9 y\n"


def test_merge_tables_carries_the_pieces_recipe(tmp_path):
    """s3-extract --shard J/N writes units.J.txt.recipe.json; the merged table gets one, if all agree."""
    for j, text in ((1, "a 1\n"), (2, "b 2\n")):
        (tmp_path / f"u.{j}").write_text(text)
        (tmp_path / f"u.{j}.recipe.json").write_text('{"frame_rate": 25}\n')
    assert run(UTILS / "merge_tables.sh", "units.txt", "u.1", "u.2", cwd=tmp_path).returncode == 0
    assert (tmp_path / "units.txt.recipe.json").read_text() == '{"frame_rate": 25}\n'
    (tmp_path / "u.2.recipe.json").write_text('{"frame_rate": 50}\n')
    result = run(UTILS / "merge_tables.sh", "other.txt", "u.1", "u.2", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == "merge_tables.sh: u.2.recipe.json differs from u.1.recipe.json: the pieces were made differently\n"
    (tmp_path / "u.2.recipe.json").unlink()
    result = run(UTILS / "merge_tables.sh", "other.txt", "u.1", "u.2", cwd=tmp_path)
    assert result.returncode == 1 and "1 of 2 inputs have a recipe" in result.stderr
    assert not (tmp_path / "other.txt").exists() and not (tmp_path / "other.txt.recipe.json").exists()


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"a": "k1 1\nk2 2\n", "b": "k2 3\n"}, "merge_tables.sh: key k2 appears twice across inputs (in a b)"),
        ({"a": "k1 1\nk1 2\n"}, "merge_tables.sh: a: key k1 appears twice"),
        ({"a": "k2 1\nk1 2\n"}, "merge_tables.sh: a: not sorted at line 2 (key k1 after k2; use LC_ALL=C sort)"),
        ({"a": "k1 1\n\nk2 1\n"}, "merge_tables.sh: a: line 2 is empty"),
        ({"a": "k1 1\n", "missing": None}, "merge_tables.sh: input missing not found"),
    ],
)
def test_merge_tables_errors_leave_no_output(tmp_path, inputs, message):
    for name, text in inputs.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    (tmp_path / "out").write_text("old\n")
    result = run(UTILS / "merge_tables.sh", "out", *inputs, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == message + "\n"
    assert (tmp_path / "out").read_text() == "old\n" and not (tmp_path / "out.tmp").exists()


def test_utils_are_shellchecked():
    from tests.test_recipes import shell_scripts

    mine = {UTILS / name for name in ("launch.sh", "split_data.sh", "merge_tables.sh", "slurm_local.sh")}
    assert mine <= set(shell_scripts())


SLEEPING_JOBS = "sleep 300 & echo $! > pid.JOB; wait"  # each job's child writes its PID, then outlives the test unless stopped


def start_sleeping_jobs(tmp_path, **popen):
    proc = subprocess.Popen([str(LAUNCH), "JOB=1:2", "log/s.JOB.log", SLEEPING_JOBS], cwd=tmp_path, stderr=subprocess.PIPE, **popen)
    pids = [tmp_path / "pid.1", tmp_path / "pid.2"]
    wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pids), "both jobs running", proc)
    return proc, [int(p.read_text()) for p in pids]


def gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone too
    except (FileNotFoundError, ProcessLookupError):  # ESRCH: reaped between the open and the read
        return True


def test_an_interrupted_launcher_stops_its_jobs_and_their_children(tmp_path):
    proc, pids = start_sleeping_jobs(tmp_path)
    proc.terminate()
    assert proc.wait(timeout=60) == 130
    wait_for(lambda: all(gone(pid) for pid in pids), "the jobs' children gone")
    assert not list((tmp_path / "log").glob("*.done"))  # killed jobs are unfinished


@pytest.mark.parametrize("target", ["launcher", "process group"])
def test_jobs_die_with_a_launcher_killed_by_kill_9(tmp_path, target):
    proc, pids = start_sleeping_jobs(tmp_path, start_new_session=True)
    if target == "launcher":
        proc.kill()
    else:
        os.killpg(proc.pid, signal.SIGKILL)  # what `kill -9 -PGID` of a recipe does
    proc.wait()
    wait_for(lambda: all(gone(pid) for pid in pids), "the jobs' children gone after the launcher died")
    assert not list((tmp_path / "log").glob("*.done"))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs: the two jobs wait for each other")
def test_the_default_job_count_is_the_cpus_not_omp_num_threads(tmp_path):
    job = "echo start > s.JOB; while [ ! -e s.1 ] || [ ! -e s.2 ]; do sleep 0.01; done"  # each job waits for the other
    result = launch("JOB=1:2", "log/w.JOB.log", job, cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
