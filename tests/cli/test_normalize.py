import numpy as np
import soundfile as sf

from audiotok.dsp.normalize import loudness_lufs, rms_db
from tests.conftest import sine, tone_burst, write_audio


def read(path):
    return sf.read(path, dtype="float32")[0]


def test_each_method_reaches_its_target(cli, tmp_path):
    path = write_audio(tmp_path / "a.wav", tone_burst(tone=2.0) * 0.3, 16000, subtype="FLOAT")
    for method, target, check in [
        ("peak", None, lambda y: np.isclose(np.max(np.abs(y)), 0.999, atol=1e-6)),
        ("rms", -30, lambda y: abs(rms_db(y) + 30) < 0.01),
        ("loudness", -28, lambda y: abs(loudness_lufs(y, 16000) + 28) < 0.05),
        ("volume", None, lambda y: 0 < np.max(np.abs(y)) <= 1.0),
    ]:
        args = ["normalize", "--method", method, "--subtype", "FLOAT", "--audio-format", "wav", path, tmp_path / method]
        if target is not None:
            args[3:3] = ["--target", target]
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        assert check(read(tmp_path / method / "audio" / "a.wav")), method


def test_peak_limit_prevents_clipping(cli, tmp_path):
    path = write_audio(tmp_path / "a.wav", sine(200, 16000, 1.0, amplitude=0.5), 16000)
    result = cli("normalize", "--method", "rms", "--target", 0, "--subtype", "FLOAT", "--audio-format", "wav", path, tmp_path / "o")
    assert result.returncode == 0
    assert np.isclose(np.max(np.abs(read(tmp_path / "o" / "audio" / "a.wav"))), 1.0, atol=1e-6)


def test_unmeasurable_items_are_counted(cli, tmp_path):
    write_audio(tmp_path / "in" / "short.wav", sine(200, 16000, 0.1), 16000)
    write_audio(tmp_path / "in" / "zero.wav", np.zeros(16000, np.float32), 16000)
    write_audio(tmp_path / "in" / "ok.wav", sine(200, 16000, 1.0), 16000)
    result = cli("normalize", "--method", "loudness", "--min-success", 0.3, tmp_path / "in", "ark:-")
    assert result.returncode == 0
    assert "short: too short for a loudness measurement" in result.stderr
    assert "zero: no measurable loudness" in result.stderr
    assert "done 1/3" in result.stderr and result.stdout.startswith(b"ok RIFF")
    assert cli("normalize", "--method", "loud", tmp_path / "in", "ark:-").returncode == 2
