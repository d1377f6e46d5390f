"""A real process killed in the middle of a run, then run again, ends where an uninterrupted run ends.

The run is certainly in the middle: item u2 waits until the test creates its gate file."""

import signal

from tests.conftest import gated_item, make_data_dir, run_cli, sine, start_cli, wait_for, write_audio


def gated_corpus(tmp_path, count=8):
    gate = tmp_path / "gate"
    items = {}
    for i in range(count):
        path = write_audio(tmp_path / "in" / f"u{i}.wav", sine(200 + 50 * i, 22050, 0.5), 22050)
        items[f"u{i}"] = gated_item(path, gate) if i == 2 else path
    return make_data_dir(tmp_path / "data", items), gate


def start(data, out):
    return start_cli("resample", "--rate", "16000", data, out)


def finished_files(directory):
    return len(list(directory.glob("*.flac"))) if directory.is_dir() else 0


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    data, gate = gated_corpus(tmp_path)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = start(data, killed)
    wait_for(lambda: finished_files(killed / "audio") == 2, "u0 and u1 written, u2 waiting", proc)
    proc.kill()
    proc.wait()
    gate.touch()
    assert not (killed / "wav.scp").exists() and not (killed / ".done").exists()
    assert run_cli("resample", "--rate", 16000, data, whole).returncode == 0
    resumed = run_cli("resample", "--rate", 16000, data, killed)
    assert resumed.returncode == 0, resumed.stderr
    assert "done 8/8 (2 already done)" in resumed.stderr
    assert sorted(p.name for p in (killed / "audio").iterdir()) == sorted(p.name for p in (whole / "audio").iterdir())
    for path in (whole / "audio").iterdir():
        assert (killed / "audio" / path.name).read_bytes() == path.read_bytes()
    assert (killed / "wav.scp").read_text() == (whole / "wav.scp").read_text().replace(str(whole), str(killed))


def test_sigterm_stops_cleanly_with_exit_143(tmp_path):
    data, gate = gated_corpus(tmp_path)
    out = tmp_path / "out"
    proc = start(data, out)
    wait_for(lambda: finished_files(out / "audio") == 2, "u0 and u1 written, u2 waiting", proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    gate.touch()
    assert proc.returncode == 143
    assert stderr.decode().strip().splitlines()[-1] == "error: terminated"
    assert "Traceback" not in stderr.decode()
    assert not [p for p in out.rglob("*") if ".tmp." in p.name]


def test_kill_9_of_tokenize_leaves_a_temporary_that_the_rerun_removes(tmp_path):
    from tests.plugins.gated import Gate

    data, _ = gated_corpus(tmp_path, count=2)
    (tmp_path / "gate").touch()
    gate, units = Gate(tmp_path / "tokenizer"), tmp_path / "u.txt"
    env = {"AUDIOTOK_TOKENIZERS": "tests.plugins.gated"}
    proc = start_cli("tokenize", gate.spec, data, "-o", units, "--batch-seconds", 0, env=env)
    wait_for(lambda: gate.calls() == 1, "the run inside its tokenizer", proc)
    proc.kill()
    proc.wait()
    assert [p.name for p in tmp_path.glob("u.txt.tmp.*")] == [f"u.txt.tmp.{proc.pid}"]
    gate.open_wide()
    rerun = run_cli("tokenize", gate.spec, data, "-o", units, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(tmp_path.glob("u.txt.tmp.*")) and units.read_text().count("\n") == 2
