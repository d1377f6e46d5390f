from tests.conftest import make_data_dir, sine, write_audio


def test_utt2dur_from_headers_pipes_and_segments(cli, tmp_path):
    a = write_audio(tmp_path / "a.wav", sine(440, 16000, 1.25), 16000)
    b = write_audio(tmp_path / "b.flac", sine(440, 22050, 0.5), 22050)
    data = make_data_dir(tmp_path / "d", {"a": a, "b": f"cat {b} |"})
    result = cli("wav-to-duration", data, "-o", data / "utt2dur")
    assert result.returncode == 0 and (data / "utt2dur").read_text() == "a 1.25\nb 0.5\n"
    (data / "segments").write_text("a-1 a 0.1 0.35\nb-1 b 0 -1\n")
    assert cli("wav-to-duration", data).text == "a-1 0.25\nb-1 0.5\n"
    assert cli("wav-to-duration", "--unit", "samples", data).text == "a-1 4000\nb-1 11025\n"


def test_output_file_is_atomic_and_skipped_when_done(cli, tmp_path):
    a = write_audio(tmp_path / "in" / "a.wav", sine(440, 16000, 1.0), 16000)
    out = tmp_path / "utt2dur"
    assert cli("wav-to-duration", a, "-o", out).returncode == 0
    again = cli("wav-to-duration", a, "-o", out)
    assert "already done" in again.stderr and out.read_text() == "a 1.0\n"
    assert not list(tmp_path.glob("utt2dur.tmp*"))
    (tmp_path / "in" / "b.wav").write_bytes(b"")
    failed = cli("wav-to-duration", tmp_path / "in", "-o", tmp_path / "d2")
    # Below --min-success the run fails, but the finished lines are kept.
    assert failed.returncode == 1 and (tmp_path / "d2").read_text() == "a 1.0\n"
    assert not (tmp_path / ".d2.done").exists()
