"""launch.sh --backend slurm on a real single-node Slurm (recipes/utils/slurm_local.sh) behaves
exactly like the local backend: same logs, same outputs, same failure report, same reruns."""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tests.test_corpus_recipes import librispeech  # noqa: F401 - the fixture

UTILS = ROOT / "recipes" / "utils"
SLURM_LOCAL = UTILS / "slurm_local.sh"

# Job JOB writes out.JOB, counts its runs, and fails while fail.JOB exists.
JOB = "echo JOB-$GREETING > out.JOB; echo run >> runs.JOB; echo job JOB on $(hostname -s); if [ -e fail.JOB ]; then echo job JOB is broken; exit 3; fi"


@pytest.fixture(scope="session")
def slurm():
    """A running single-node Slurm; stopped at the end if this fixture started it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: slurm_local.sh installs slurm-wlm and starts its daemons")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("Slurm is not installed and there is no apt-get to install it")
    was_running = subprocess.run([str(SLURM_LOCAL), "status"], capture_output=True).returncode == 0
    if not was_running:
        started = subprocess.run([str(SLURM_LOCAL), "start"], capture_output=True, text=True, timeout=300)
        if started.returncode != 0:
            pytest.skip(f"cannot start a local Slurm: {started.stderr.strip()}")
    yield
    if not was_running:
        subprocess.run([str(SLURM_LOCAL), "stop"], capture_output=True, timeout=60, check=True)


def launch(*args, cwd):
    env = {**os.environ, "GREETING": "hello"}
    return subprocess.run([str(UTILS / "launch.sh"), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def untimed(text: str) -> str:
    """Logs and reports without their clock: start/end dates and elapsed seconds."""
    text = re.sub(r"(# (Started|Ended \(code \d+\)) at ).*", r"\1DATE", text)
    return re.sub(r"time=\d+", "time=T", text)


def run_both(tmp_path, *args, fail=()):
    """Run the same launcher call in two fresh directories, local and slurm backend."""
    results = {}
    for backend in ("local", "slurm"):
        d = tmp_path / backend
        d.mkdir(exist_ok=True)
        for j in fail:
            (d / f"fail.{j}").touch()
        results[backend] = launch("--backend", backend, *args, cwd=d)
    return results


def outputs(d):
    return {p.relative_to(d).as_posix(): untimed(p.read_text()) for p in sorted(d.rglob("*")) if p.is_file() and "q" not in p.relative_to(d).parts}


def test_slurm_backend_matches_local_backend(slurm, tmp_path):
    results = run_both(tmp_path, "--max-jobs", "2", "JOB=1:4", "log/j.JOB.log", JOB, fail=(3,))
    local, slurm_ = results["local"], results["slurm"]
    assert local.returncode == slurm_.returncode == 1
    assert untimed(slurm_.stderr) == untimed(local.stderr)
    assert slurm_.stderr.splitlines()[0] == "launch.sh: 1 of 4 jobs failed: 3 (see log/j.3.log)"
    assert "job 3 is broken" in slurm_.stderr
    assert outputs(tmp_path / "slurm") == outputs(tmp_path / "local")
    assert (tmp_path / "slurm" / "out.2").read_text() == "2-hello\n"  # the caller's environment
    assert not list((tmp_path / "slurm" / "log" / "q").glob("*.slurm.out"))  # empty ones are removed

    # Rerun only the failed job, now fixed, on both backends.
    for backend in ("local", "slurm"):
        (tmp_path / backend / "fail.3").unlink()
        result = launch("--backend", backend, "--rerun", "failed", "JOB=1:4", "log/j.JOB.log", JOB, cwd=tmp_path / backend)
        assert result.returncode == 0, result.stderr
        assert [len((tmp_path / backend / f"runs.{j}").read_text().split()) for j in range(1, 5)] == [1, 1, 2, 1]
    assert outputs(tmp_path / "slurm") == outputs(tmp_path / "local")


def test_slurm_single_job_with_sbatch_options(slurm, tmp_path):
    results = run_both(tmp_path, "--slurm-opts", "--partition debug", "--slurm-opts=--time=5", "JOB=2", "log/s.JOB.log", JOB, fail=(2,))
    assert results["local"].returncode == results["slurm"].returncode == 1
    assert untimed(results["slurm"].stderr) == untimed(results["local"].stderr)
    assert results["slurm"].stderr.startswith("launch.sh: 1 of 1 jobs failed: 2 (see log/s.2.log)\n")


@pytest.mark.skipif(not os.environ.get("AUDIOTOK_TEST_AUDIO"), reason="set AUDIOTOK_TEST_AUDIO to the shared speech recordings")
def test_librispeech_recipe_gives_the_same_units_on_slurm(slurm, tmp_path, librispeech):  # noqa: F811 - the fixture
    from tests.test_corpus_recipes import OPTS, copy_recipe, run

    outputs = {}
    for backend in ("local", "slurm"):
        recipe = copy_recipe("librispeech", tmp_path / backend)
        (recipe / "cmd.sh").write_text(f'export cmd="utils/launch.sh --backend {backend} --max-jobs 2"\n')
        result = run(recipe, "--corpus", str(librispeech), "--sets", "dev-clean", "--nj", "2", "--stop-stage", "4", *OPTS)
        assert "Stage 4: units" in result.stderr
        km = recipe / "exp" / "km8_mfcc"
        logs = sorted(p.name for p in (recipe / "dump" / "mfcc" / "dev-clean").rglob("*.log"))
        outputs[backend] = ((km / "centroids.npy").read_bytes(), (km / "dev-clean" / "units.txt").read_text(), logs)
    assert outputs["slurm"] == outputs["local"]
    assert len(outputs["local"][1].splitlines()) == 4 and len(outputs["local"][2]) == 2


def array_task_of(pid: int) -> tuple[str, str]:
    """(array job id, task id) of a process running inside a Slurm array task: from its environment."""
    environ = dict(item.split("=", 1) for item in open(f"/proc/{pid}/environ").read().split("\0") if "=" in item)
    return environ["SLURM_ARRAY_JOB_ID"], environ["SLURM_ARRAY_TASK_ID"]


def test_tokenize_shards_array_with_a_cancelled_task_rerun_gives_every_sample_once(slurm, tmp_path):
    import sys
    from collections import Counter

    from tests.conftest import run_cli, wait_for
    from tests.pipeline.shards import generated_shards
    from tests.plugins.gated import Gate

    corpus, identities = generated_shards(tmp_path / "shards", shards=8, per_shard=3)
    out, gate = tmp_path / "tokens", Gate(tmp_path / "gate")
    # The gated test tokenizer: each call waits until the test lets it through (tests/plugins/gated.py).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUDIOTOK_TOKENIZERS": "tests.plugins.gated"}
    env.pop("AUDIOTOK_DEBUG", None)
    tokenize = [sys.executable, "-m", "audiotok", "tokenize-shards", "--task", "JOB/4", "--input-dir", str(corpus), "--output-dir", str(out)]
    tokenize += ["--tokenizer", gate.spec, "--batch-seconds", "0", "--num-proc", "1"]
    array = ["JOB=1:4", "log/tok.JOB.log", *tokenize]
    launcher = subprocess.Popen([str(UTILS / "launch.sh"), "--backend", "slurm", *array], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)

    def calls_by_pid() -> Counter:
        path = gate.directory / ".calls"
        return Counter(line.split()[0] for line in path.read_text().splitlines()) if path.exists() else Counter()

    # One call goes through: the task that took it writes its first line and waits in its next call.
    wait_for(lambda: calls_by_pid(), "a task waiting in its first tokenizer call", launcher)
    gate.release(1)
    wait_for(lambda: 2 in calls_by_pid().values(), "a task's first line written, the task waiting again", launcher)
    pid = next(int(p) for p, n in calls_by_pid().items() if n == 2)
    job, task = array_task_of(pid)
    written = {p.name: p.read_text().count("\n") for p in out.glob("*.jsonl") if p.stat().st_size}
    assert written == {f"shards_{task}of4_0.jsonl": 1}  # its own file; the other running task's is still empty

    subprocess.run(["scancel", f"{job}_{task}"], check=True, timeout=60)
    log = tmp_path / "log" / f"tok.{task}.log"
    wait_for(lambda: "stopping: waiting for 1 worker(s)" in log.read_text(), "the cancelled task's SIGTERM reached tokenize-shards", launcher)
    gate.open_wide()  # the cancelled task finishes the sample in hand and stops; the others run through
    _, stderr = launcher.communicate(timeout=600)
    assert launcher.returncode == 1, stderr
    assert stderr.splitlines()[0] == f"launch.sh: 1 of 4 jobs failed: {task} (see log/tok.{task}.log)"
    assert "error: terminated" in log.read_text()

    rerun = subprocess.run(
        [str(UTILS / "launch.sh"), "--backend", "slurm", "--rerun", "failed", *array], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr == f"launch.sh: --rerun failed: running 1 of 4 jobs ({task}); the others already ran\n"
    done = re.search(r"done (\d+)/(\d+) \((\d+) already done\)", log.read_text())
    assert done and done[1] == done[2] and int(done[3]) >= 1, log.read_text()  # the task resumed its range

    check = run_cli("check-shard-tokens", "--input-dir", corpus, "--output-dir", out, "-o", tmp_path / "array.jsonl")
    assert check.returncode == 0, check.stderr
    assert check.text == "24 samples: 24 tokenized, 0 skipped, 0 missing, 0 duplicated\n"
    # A one-machine run (one task, local) gives the same merged lines.
    one = run_cli(
        "tokenize-shards",
        "--input-dir",
        corpus,
        "--output-dir",
        tmp_path / "one",
        "--tokenizer",
        "gated:-",
        "--num-proc",
        1,
        env={"AUDIOTOK_TOKENIZERS": "tests.plugins.gated"},
    )
    assert one.returncode == 0, one.stderr
    reference = run_cli("check-shard-tokens", "--input-dir", corpus, "--output-dir", tmp_path / "one", "-o", tmp_path / "one.jsonl")
    assert reference.returncode == 0, reference.stderr
    assert (tmp_path / "array.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert len((tmp_path / "one.jsonl").read_text().splitlines()) == len(identities) == 24
