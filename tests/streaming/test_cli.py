"""`audiotok stream`: raw PCM on stdin, units out line by line while the input is still open."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from audiotok.errors import AudiotokError
from tests.conftest import ROOT, assert_no_traceback
from tests.streaming.helpers import babble, offline_units, signal_bundle

WAIT = 120  # seconds for a first line: a loaded machine takes a while to import torch


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return signal_bundle(tmp_path_factory.mktemp("mfcc") / "km", "mfcc", deltas=True)


def pcm16(samples: np.ndarray) -> bytes:
    return np.round(np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


def as_read(samples: np.ndarray) -> np.ndarray:
    """The float samples a reader of 16-bit PCM sees (soundfile and the stream alike)."""
    return np.frombuffer(pcm16(samples), "<i2").astype(np.float32) / 32768


def start_stream(*args) -> tuple[subprocess.Popen, queue.Queue]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AUDIOTOK_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "audiotok", "stream", *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line.decode())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def drain(lines: queue.Queue) -> list[str]:
    out = []
    while (line := lines.get(timeout=WAIT)) is not None:
        out.append(line)
    return out


def test_units_come_out_before_the_input_ends_and_equal_offline(bundle):
    audio = as_read(babble(3.0, seed=40))
    proc, lines = start_stream(bundle, "--format", "s16le", "--rate", 16000, "--chunk", 0.5)
    proc.stdin.write(pcm16(audio[:16000]))
    proc.stdin.flush()
    first = lines.get(timeout=WAIT)  # the writer still holds stdin open
    assert first and proc.poll() is None
    proc.stdin.write(pcm16(audio[16000:]))
    proc.stdin.close()
    rest = drain(lines)
    assert proc.wait(timeout=WAIT) == 0, proc.stderr.read().decode()
    streamed = [int(u) for line in [first, *rest] for u in line.split()]
    assert streamed == offline_units(bundle, audio).tolist()
    assert len(rest) >= 4  # one line per 0.5 s chunk, plus the last units at the end


def test_ctrl_c_writes_the_pending_units_and_exits_130(bundle):
    audio = as_read(babble(1.0, seed=41))
    proc, lines = start_stream(bundle, "--chunk", 0.5)
    proc.stdin.write(pcm16(audio))
    proc.stdin.flush()
    first, second = lines.get(timeout=WAIT), lines.get(timeout=WAIT)  # both chunks read: it waits for more
    proc.send_signal(signal.SIGINT)
    rest = drain(lines)
    assert proc.wait(timeout=WAIT) == 130
    stderr = proc.stderr.read().decode()
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    assert_no_traceback(stderr)
    proc.stdin.close()
    # Everything read was tokenized: the frames held back for the deltas came out at the interrupt.
    assert len(rest) == 1
    assert [int(u) for line in [first, second, *rest] for u in line.split()] == offline_units(bundle, audio).tolist()


def test_jsonl_with_stop_after_and_stereo_f32(cli, bundle):
    audio = babble(3.0, seed=42)
    stereo = np.stack([audio, 0.5 * audio], axis=1).astype("<f4")
    result = cli(
        "stream",
        bundle,
        "--input",
        "-",
        "--format",
        "f32le",
        "--channels",
        2,
        "--format-out",
        "jsonl",
        "--stop-after",
        1.5,
        "--chunk",
        0.4,
        input=stereo.tobytes(),
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.text.splitlines()]
    mono = stereo.mean(axis=1, dtype=np.float64).astype(np.float32)[:24000]
    assert [u for r in records for u in r["units"]] == offline_units(bundle, mono).tolist()
    assert records[0]["start"] == 0.0
    for before, after in zip(records, records[1:]):
        assert before["end"] == after["start"]
    assert records[-1]["end"] == pytest.approx(sum(len(r["units"]) for r in records) * 0.01)


def test_a_cut_sample_at_the_end_is_a_one_line_error(cli, bundle):
    data = pcm16(babble(0.5, seed=43)) + b"\x01"
    result = cli("stream", bundle, "--format", "s16le", input=data)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: the input ends inside a sample frame: 1 byte(s) left after 8000 frames")
    assert_no_traceback(result.stderr)


def test_an_unknown_format_is_a_usage_error(cli, bundle):
    result = cli("stream", bundle, "--format", "mp3", input=b"")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: --format 'mp3': unknown raw PCM format (hint: choose one of s16le, s32le, f32le)"


def test_the_microphone_without_sounddevice_is_a_one_line_error(cli, bundle, tmp_path):
    # Stand-in for an environment without the package, whatever this machine has installed.
    (tmp_path / "sounddevice.py").write_text("raise ImportError('No module named sounddevice')\n")
    result = cli("stream", bundle, "--input", "mic", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: reading the microphone needs the sounddevice package")
    assert "pip install sounddevice" in line and "PortAudio" in line
    assert_no_traceback(result.stderr)


def test_missing_portaudio_or_input_device_are_clear_errors(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from audiotok.streaming.sources import open_microphone

    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(AudiotokError) as missing:
        open_microphone(16000, 1)
    assert "PortAudio library not found" in missing.value.one_line() and "pip install sounddevice" in missing.value.one_line()

    def no_device(**_):
        raise ValueError("No input device matching ''")

    monkeypatch.setitem(sys.modules, "sounddevice", SimpleNamespace(query_devices=no_device))
    with pytest.raises(AudiotokError, match="no usable audio input device: No input device"):
        open_microphone(16000, 1)


def test_help_has_the_example_and_the_top_level_lists_stream(cli):
    result = cli("stream", "--help")
    assert result.returncode == 0 and "Example:" in result.text and "See also: tokenize" in result.text
    assert "pip install sounddevice" in result.text
    assert "--duration, --chunk" in result.text and "Length of a chunk" in result.text and "--stop-after" in result.text
    assert " stream " in cli("--help").text


FAKE_SOUNDDEVICE = '''
"""A stand-in for the sounddevice package: a "microphone" that plays $FAKE_MIC_AUDIO (.npy, [frames, channels])."""
import os

import numpy as np

_audio = np.load(os.environ["FAKE_MIC_AUDIO"]).astype(np.float32)


def query_devices(kind=None):
    return {"name": "fake microphone"}


def check_input_settings(samplerate=None, channels=None, dtype=None):
    if channels != _audio.shape[1]:
        raise ValueError(f"Invalid number of channels: {channels}")


class InputStream:
    def __init__(self, samplerate, channels, dtype, blocksize):
        self.position = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, frames):
        if self.position > len(_audio) + 10 * 16000:  # a stream that ignores --stop-after fails, never hangs
            raise RuntimeError("the stand-in microphone was read 10 s past its recording")
        block = _audio[self.position : self.position + frames]
        self.position += frames
        if len(block) < frames:  # a microphone never ends: silence after the recording
            block = np.concatenate([block, np.zeros((frames - len(block), _audio.shape[1]), np.float32)])
        return block, False
'''


def test_the_microphone_path_streams_what_offline_tokenization_gives(cli, bundle, tmp_path):
    audio = babble(2.5, seed=43)
    stereo = np.stack([audio, 0.25 * audio], axis=1).astype(np.float32)
    np.save(tmp_path / "mic.npy", stereo)
    (tmp_path / "sounddevice.py").write_text(FAKE_SOUNDDEVICE)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "FAKE_MIC_AUDIO": str(tmp_path / "mic.npy")}
    mono = stereo.mean(axis=1, dtype=np.float64).astype(np.float32)[:32000]
    expected = offline_units(bundle, mono).tolist()
    # --duration is the chunk length (seed 004's tokenize_mic.py), --stop-after the total.
    for chunk, lines_wanted in ((0.5, 5), (1.0, 3)):
        result = cli("stream", bundle, "--input", "mic", "--channels", 2, "--duration", chunk, "--stop-after", 2.0, env=env)
        assert result.returncode == 0, result.stderr
        assert "recording from fake microphone at 16000 Hz, 2 channel(s)" in result.stderr
        lines = result.text.splitlines()
        assert [int(u) for line in lines for u in line.split()] == expected  # 2.0 s, then stopped
        assert len(lines) == lines_wanted  # a line a chunk, and the frames held back for the deltas
    wrong = cli("stream", bundle, "--input", "mic", "--channels", 1, "--stop-after", 1.0, env=env)
    assert wrong.returncode == 1 and wrong.stderr.strip().splitlines()[-1].startswith("error: no usable audio input device: Invalid number of channels: 1")
