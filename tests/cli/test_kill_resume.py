"""A real process killed in the middle of a run, then run again, ends where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, make_data_dir, run_cli, sine, write_audio


def slow_corpus(tmp_path, count=8):
    items = {}
    for i in range(count):
        path = write_audio(tmp_path / "in" / f"u{i}.wav", sine(200 + 50 * i, 22050, 0.5), 22050)
        items[f"u{i}"] = f"sleep 0.3; cat {path} |"  # slow enough to stop half way
    return make_data_dir(tmp_path / "data", items)


def start(data, out):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "audiotok", "resample", "--rate", "16000", str(data), str(out)], stderr=subprocess.PIPE, env=env)


def wait_for_files(directory, count, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if directory.is_dir() and len([p for p in directory.iterdir() if p.suffix == ".flac"]) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} files never appeared in {directory}")


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    data = slow_corpus(tmp_path)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_cli("resample", "--rate", 16000, data, whole).returncode == 0
    proc = start(data, killed)
    wait_for_files(killed / "audio", 2)
    proc.kill()
    proc.wait()
    assert not (killed / "wav.scp").exists() and not (killed / ".done").exists()
    finished_before = len(list((killed / "audio").glob("*.flac")))
    resumed = run_cli("resample", "--rate", 16000, data, killed)
    assert resumed.returncode == 0, resumed.stderr
    assert f"done 8/8 ({finished_before} already done)" in resumed.stderr
    assert sorted(p.name for p in (killed / "audio").iterdir()) == sorted(p.name for p in (whole / "audio").iterdir())
    for path in (whole / "audio").iterdir():
        assert (killed / "audio" / path.name).read_bytes() == path.read_bytes()
    assert (killed / "wav.scp").read_text() == (whole / "wav.scp").read_text().replace(str(whole), str(killed))


def test_sigterm_stops_cleanly_with_exit_143(tmp_path):
    data = slow_corpus(tmp_path)
    out = tmp_path / "out"
    proc = start(data, out)
    wait_for_files(out / "audio", 1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert stderr.decode().strip().splitlines()[-1] == "error: terminated"
    assert "Traceback" not in stderr.decode()
    assert not [p for p in out.rglob("*") if ".tmp." in p.name]
