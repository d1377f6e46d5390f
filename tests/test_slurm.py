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
