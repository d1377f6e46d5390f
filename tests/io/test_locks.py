"""One run at a time on an output: the second is refused naming the first's PID, and a lock left by a
killed run (kill -9) never blocks the resume."""

import os
import signal
import subprocess
import sys

import pytest

from audiotok.errors import AudiotokError
from audiotok.io import locks
from tests.conftest import ROOT

HOLDER = """
import sys
from audiotok.io.locks import claim_output
claim_output(sys.argv[1], directory=sys.argv[2] == "dir")
print("claimed", flush=True)
sys.stdin.read()
"""


def start_holder(output, kind="file"):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(output), kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert holder.stdout.readline() == b"claimed\n"  # the explicit event: the lock is held
    return holder


@pytest.fixture(autouse=True)
def fresh_locks():
    yield
    locks.release_all()


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_second_claim_is_refused_naming_the_holder(tmp_path, kind):
    output = tmp_path / ("out.txt" if kind == "file" else "outdir")
    holder = start_holder(output, kind)
    try:
        with pytest.raises(AudiotokError) as refused:
            locks.claim_output(output, directory=kind == "dir")
        assert refused.value.one_line() == (
            f"error: {output} is being written by another run (pid {holder.pid}) (hint: wait for that run to end, or stop it; a run that died holds no lock)"
        )
    finally:
        holder.stdin.close()
        holder.wait()
    assert not locks.lock_path(output).exists()  # released and removed at a normal exit
    locks.claim_output(output, directory=kind == "dir")


def test_a_lock_left_by_kill_9_does_not_block_and_its_temporaries_go(tmp_path):
    output = tmp_path / "units.txt"
    holder = start_holder(output)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert locks.lock_path(output).read_text() == f"{holder.pid}\n"  # the file stays, the lock does not
    stale = tmp_path / f"units.txt.tmp.{holder.pid}"
    stale.write_text("half a table")
    unrelated = tmp_path / "other.txt.tmp.123"
    unrelated.write_text("another output's")
    locks.claim_output(output)
    assert locks.lock_path(output).read_text() == f"{os.getpid()}\n"
    assert not stale.exists() and unrelated.exists()


def test_a_directory_claim_removes_temporaries_inside(tmp_path):
    output = tmp_path / "out"
    (output / "audio").mkdir(parents=True)
    (output / "audio" / "u1.flac.tmp.999999").write_bytes(b"x")
    (output / "audio" / "u1.flac").write_bytes(b"finished")
    (output / "wav.scp.tmp.999998").write_text("x")
    locks.claim_output(output, directory=True)
    assert sorted(p.name for p in output.rglob("*")) == ["audio", "u1.flac"]


def test_claiming_twice_in_one_process_and_special_outputs(tmp_path):
    output = tmp_path / "a.ark"
    locks.claim_output(output)
    locks.claim_output(output)  # the same run opening its output twice
    locks.claim_output("-")
    locks.claim_output("/dev/null")
    assert not (tmp_path.parent / ".-.lock").exists() and not os.path.exists("/dev/.null.lock")
