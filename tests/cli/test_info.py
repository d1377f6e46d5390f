import json

import numpy as np

from tests.conftest import sine, write_audio


def test_text_tsv_and_jsonl_formats(cli, tmp_path):
    write_audio(tmp_path / "in" / "a.flac", sine(440, 44100, 1.5, channels=2), 44100, subtype="PCM_24")
    write_audio(tmp_path / "in" / "b.wav", sine(440, 8000, 0.25, amplitude=0.1), 8000)
    text = cli("info", tmp_path / "in")
    assert text.returncode == 0
    assert (
        text.text.splitlines()[0] == "a rate=44100 channels=2 samples=66150 duration=1.5 format=FLAC subtype=PCM_24 peak_db=-8.52 rms_db=-11.53"
    )  # mono mix: amplitude (0.25 + 0.5) / 2
    tsv = cli("info", "--format", "tsv", "--header-only", tmp_path / "in").text.splitlines()
    assert tsv[0].split("\t") == ["key", "rate", "channels", "samples", "duration", "format", "subtype", "peak_db", "rms_db"]
    assert tsv[2].split("\t")[:7] == ["b", "8000", "1", "2000", "0.25", "WAV", "PCM_16"]
    records = [json.loads(line) for line in cli("info", "--format", "jsonl", tmp_path / "in").text.splitlines()]
    assert records[1]["key"] == "b" and records[1]["duration"] == 0.25 and records[1]["channels"] == 1
    result = cli("info", "-o", tmp_path / "info.txt", tmp_path / "in")
    assert result.stdout == b"" and "total 0.00 h (1.8 s); 8000 Hz x1, 44100 Hz x1" in result.stderr
    assert (tmp_path / "info.txt").read_text() == text.text


def test_unreadable_items_are_named(cli, tmp_path):
    write_audio(tmp_path / "in" / "good.wav", sine(440, 16000, 0.5), 16000)
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF1234WAVEjunkjunkjunk")
    nan = sine(440, 16000, 0.5)
    nan[10:20] = np.inf
    write_audio(tmp_path / "in" / "nan.wav", nan, 16000, subtype="FLOAT")
    result = cli("info", tmp_path / "in")
    assert result.returncode == 1
    assert "bad: cannot decode audio" in result.stderr and "nan: 10 non-finite sample(s) (NaN or Inf)" in result.stderr
    assert result.text.startswith("good ")
    assert "done 1/3" in result.stderr


def test_real_recordings_all_read_without_warnings(cli, speech_dir):
    result = cli("info", "--format", "jsonl", speech_dir)
    assert result.returncode == 0
    assert "WARNING" not in result.stderr and "done 50/50" in result.stderr
    records = [json.loads(line) for line in result.text.splitlines()]
    assert {r["format"] for r in records} == {"FLAC", "WAV", "OGG", "MP3"}
    assert {r["rate"] for r in records} == {16000, 22050, 48000}
