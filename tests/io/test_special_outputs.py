"""Outputs that are special files (`-o /dev/null`, a FIFO) are written in place: renaming a
finished temporary file onto them would replace the device or pipe with a plain file."""

import os
import stat
import threading

from audiotok.io.atomic import atomic_write_text
from audiotok.io.markers import DoneMarker
from tests.conftest import make_data_dir, sine, write_audio


def read_fifo_in_background(path):
    received = []
    thread = threading.Thread(target=lambda: received.append(open(path, "rb").read()), daemon=True)
    thread.start()
    return thread, received


def test_atomic_writes_go_into_a_fifo_and_leave_it_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, received = read_fifo_in_background(fifo)
    atomic_write_text(fifo, "hello\n")
    thread.join(10)
    assert received == [b"hello\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    marker = DoneMarker(fifo, directory=False)
    marker.write({"a": 1})
    assert not marker.matches({"a": 1}) and not marker.path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_command_writing_to_a_fifo_leaves_it_a_fifo_and_runs_again(cli, tmp_path):
    data = make_data_dir(tmp_path / "data", {"a": write_audio(tmp_path / "a.wav", sine(300, 16000, 0.5), 16000)})
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for _ in range(2):  # never "already done": each run writes again
        thread, received = read_fifo_in_background(fifo)
        result = cli("wav-to-duration", data, "-o", fifo)
        thread.join(10)
        assert result.returncode == 0, result.stderr
        assert received == [b"a 0.5\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
