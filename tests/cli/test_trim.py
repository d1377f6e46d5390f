import numpy as np
import soundfile as sf

from audiotok.dsp import trim as T
from tests.conftest import make_data_dir, tone_burst, write_audio


def test_energy_trim_writes_step_audio_trimmed_audio(cli, tmp_path):
    x = tone_burst(lead=0.6, tone=0.8, tail=0.9)
    path = write_audio(tmp_path / "a.wav", x, 16000, subtype="FLOAT")
    result = cli("trim", "--subtype", "FLOAT", "--audio-format", "wav", path, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    y, rate = sf.read(tmp_path / "out" / "audio" / "a.wav", dtype="float32")
    expected = T.cut_region(x, T.energy_region(x, 16000, T.EnergyTrim()))
    np.testing.assert_array_equal(y, expected)
    assert len(y) < len(x) - 0.9 * 16000


def test_segments_are_relative_to_the_recording(cli, tmp_path):
    x = tone_burst(lead=1.0, tone=1.0, tail=1.0)
    rec = write_audio(tmp_path / "rec.wav", x, 16000)
    data = make_data_dir(tmp_path / "d", {"rec": rec})
    (data / "segments").write_text("rec-a rec 0.50 2.50\n")  # an utterance 0.5 s into the recording
    result = cli("trim", "--segments", "--pre-pad", 0, "--post-pad", 0, "--length-multiple", 1, data, "-")
    assert result.returncode == 0, result.stderr
    key, recording, start, end = result.text.split()
    assert (key, recording) == ("rec-a", "rec")
    assert abs(float(start) - 1.0) < 0.03 and abs(float(end) - 2.0) < 0.03


def test_min_duration_keeps_short_items_long_enough(cli, tmp_path):
    x = tone_burst(lead=0.5, tone=0.05, tail=0.5)
    path = write_audio(tmp_path / "short.wav", x, 16000)
    result = cli("trim", "--segments", "--min-duration", 0.6, "--pre-pad", 0, "--post-pad", 0, path, "-")
    start, end = map(float, result.text.split()[2:])
    assert abs((end - start) - 0.6) < 0.002


def test_vad_split_segments_and_no_speech_counted(cli, tmp_path):
    silence = write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    result = cli("trim", "--method", "vad", "--segments", "--min-success", 0, silence, "-")
    assert result.returncode == 0 and "quiet: no speech found" in result.stderr and "done 0/1" in result.stderr
    failing = cli("trim", "--method", "vad", "--segments", silence, "-")
    assert failing.returncode == 1


def test_option_conflicts_are_usage_errors(cli, tmp_path):
    path = write_audio(tmp_path / "a.wav", tone_burst(), 16000)
    assert cli("trim", "--split", path, "-").returncode == 2
    result = cli("trim", "--method", "vad", "--split", path, tmp_path / "o")
    assert result.returncode == 2 and "use it with --segments" in result.stderr
    assert cli("trim", "--method", "spectral", path, "-").returncode == 2


def test_vad_split_on_real_speech(cli, speech_dir, tmp_path):
    result = cli("trim", "--method", "vad", "--split", "--segments", speech_dir / "103-1240-0000.flac", tmp_path / "segments")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in (tmp_path / "segments").read_text().splitlines()]
    assert len(rows) >= 2 and all(r[1] == "103-1240-0000" for r in rows)
    starts = [float(r[2]) for r in rows]
    assert starts == sorted(starts) and all(float(r[3]) > float(r[2]) for r in rows)
    assert rows[0][0] == f"103-1240-0000-{round(float(rows[0][2]) * 100):07d}-{round(float(rows[0][3]) * 100):07d}"
