import os

import numpy as np
import soundfile as sf

from audiotok.io.audio import decode
from tests.conftest import assert_no_traceback, make_data_dir, sine, write_audio


def corpus(tmp_path, bad=False):
    items = {
        "u1": write_audio(tmp_path / "in" / "u1.wav", sine(440, 44100, 1.0), 44100),
        "u2": write_audio(tmp_path / "in" / "u2.flac", sine(440, 8000, 0.5, channels=2), 8000, subtype="PCM_24"),
        "u3": write_audio(tmp_path / "in" / "u3.ogg", sine(440, 22050, 0.8), 22050),
    }
    if bad:
        (tmp_path / "in" / "u4.wav").write_bytes(b"")
        items["u4"] = str(tmp_path / "in" / "u4.wav")
        items["u5"] = "false |"
    return make_data_dir(tmp_path / "data", items, text={"u1": "one", "u2": "two", "u3": "three", "u9": "gone"}, utt2spk={"u1": "s1", "u2": "s2", "u3": "s1"})


def test_directory_output_with_new_wav_scp_and_carried_files(cli, tmp_path):
    data = corpus(tmp_path)
    result = cli("resample", "--rate", 16000, data, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1].endswith("done 3/3")
    out = tmp_path / "out"
    lines = (out / "wav.scp").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["u1", "u2", "u3"]
    lengths = {}
    for line in lines:
        key, path = line.split()
        info = sf.info(path)
        assert info.samplerate == 16000 and info.channels == 1 and info.format == "FLAC"
        lengths[key] = info.frames
    assert lengths == {"u1": 16000, "u2": 8000, "u3": 12800}
    assert (out / "text").read_text() == "u1 one\nu2 two\nu3 three\n"
    assert (out / "spk2utt").read_text() == "s1 u1 u3\ns2 u2\n"


def test_pipe_into_info_and_ark_scp_output(cli, tmp_path):
    data = corpus(tmp_path)
    first = cli("resample", "--rate", 16000, f"scp:{data / 'wav.scp'}", "ark:-")
    assert first.returncode == 0 and first.stdout.startswith(b"u1 RIFF")
    info = cli("info", "ark:-", input=first.stdout)
    assert info.returncode == 0, info.stderr
    rows = [line.split() for line in info.text.splitlines()]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("u1", "rate=16000", "samples=16000"),
        ("u2", "rate=16000", "samples=8000"),
        ("u3", "rate=16000", "samples=12800"),
    ]
    both = cli("resample", "--rate", 8000, "--subtype", "PCM_24", "-", f"ark,scp:{tmp_path}/r.ark,{tmp_path}/r.scp", input=first.stdout)
    assert both.returncode == 0, both.stderr
    again = cli("wav-to-duration", "--unit", "samples", f"scp:{tmp_path}/r.scp")
    assert again.text == "u1 8000\nu2 4000\nu3 6400\n"


def test_bad_items_are_counted_and_finished_output_kept(cli, tmp_path):
    data = corpus(tmp_path, bad=True)
    result = cli("resample", "--rate", 16000, data, tmp_path / "out")
    assert result.returncode == 1
    assert_no_traceback(result.stderr)
    assert "u4: empty file" in result.stderr and "u5: command failed with exit code 1" in result.stderr
    assert "done 3/5" in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1]
        == "error: only 3 of 5 items succeeded, below --min-success 0.95 (hint: see the warnings above for each failed item)"
    )
    assert len((tmp_path / "out" / "wav.scp").read_text().splitlines()) == 3
    lenient = cli("resample", "--rate", 16000, "--min-success", 0.5, data, tmp_path / "out2")
    assert lenient.returncode == 0 and "done 3/5" in lenient.stderr


def test_rerun_skips_and_force_redoes(cli, tmp_path):
    data = corpus(tmp_path)
    out = tmp_path / "out"
    assert cli("resample", "--rate", 16000, data, out).returncode == 0
    stamp = os.stat(out / "audio" / "u1.flac").st_mtime_ns
    again = cli("resample", "--rate", 16000, data, out)
    assert again.returncode == 0 and "already done" in again.stderr
    assert os.stat(out / "audio" / "u1.flac").st_mtime_ns == stamp
    forced = cli("resample", "--rate", 16000, "--force", data, out)
    assert forced.returncode == 0 and "done 3/3" in forced.stderr
    assert os.stat(out / "audio" / "u1.flac").st_mtime_ns != stamp
    other = cli("resample", "--rate", 8000, data, out)  # other arguments: not done, redone
    assert other.returncode == 0 and sf.info(str(out / "audio" / "u1.flac")).samplerate == 8000


def test_killed_run_resumes_to_the_same_bytes(cli, tmp_path):
    data = corpus(tmp_path)
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert cli("resample", "--rate", 16000, data, whole).returncode == 0
    assert cli("resample", "--rate", 16000, data, part).returncode == 0
    # What a kill after the first item leaves: one finished file, the run marker, no wav.scp, no .done.
    (part / ".run.json").write_text((part / ".done").read_text())  # both hold the run's signature
    for name in ("wav.scp", ".done", "text", "utt2spk", "spk2utt"):
        (part / name).unlink()
    (part / "audio" / "u2.flac").unlink()
    (part / "audio" / "u3.flac").unlink()
    kept = os.stat(part / "audio" / "u1.flac").st_mtime_ns
    resumed = cli("resample", "--rate", 16000, data, part)
    assert resumed.returncode == 0 and "done 3/3 (1 already done)" in resumed.stderr
    assert os.stat(part / "audio" / "u1.flac").st_mtime_ns == kept
    for key in ("u1", "u2", "u3"):
        assert (part / "audio" / f"{key}.flac").read_bytes() == (whole / "audio" / f"{key}.flac").read_bytes()
    assert (part / "wav.scp").read_text() == (whole / "wav.scp").read_text().replace(str(whole), str(part))


def test_channel_choice_and_upsampling_preserve_the_signal(cli, tmp_path):
    x = sine(300, 8000, 1.0, channels=2)
    path = write_audio(tmp_path / "st.wav", x, 8000, subtype="FLOAT")
    result = cli("resample", "--rate", 48000, "--channel", 1, "--subtype", "FLOAT", "--audio-format", "wav", path, tmp_path / "o")
    assert result.returncode == 0, result.stderr
    y = decode(tmp_path / "o" / "audio" / "st.wav").samples
    assert len(y) == 48000
    assert abs(np.max(np.abs(y[4800:-4800])) - 0.5) < 0.005  # channel 1 has amplitude 0.5


def test_bad_output_choices_are_usage_errors(cli, tmp_path):
    data = corpus(tmp_path)
    result = cli("resample", "--rate", 16000, "--subtype", "FLOAT", data, tmp_path / "o")
    assert result.returncode == 2 and "flac files cannot hold FLOAT samples" in result.stderr
    result = cli("resample", "--rate", 16000, data, "ark,t:-")
    assert result.returncode == 2 and "binary" in result.stderr
    result = cli("resample", "--rate", 16000, data, data)
    assert result.returncode == 1 and "is the input" in result.stderr


def test_real_recordings_through_the_pipe_without_warnings(cli, speech_dir):
    resampled = cli("resample", "--rate", 16000, speech_dir, "ark:-")
    assert resampled.returncode == 0 and "WARNING" not in resampled.stderr and "done 50/50" in resampled.stderr
    info = cli("info", "--format", "tsv", "ark:-", input=resampled.stdout)
    assert info.returncode == 0 and "WARNING" not in info.stderr
    rows = [line.split("\t") for line in info.text.splitlines()[1:]]
    assert len(rows) == 50 and {r[1] for r in rows} == {"16000"}
    durations = dict(line.split() for line in cli("wav-to-duration", speech_dir).text.splitlines())
    for key, _rate, _ch, samples, *_ in rows:
        assert abs(int(samples) - float(durations[key]) * 16000) <= 0.5 + 1e-6 * int(samples)


def test_torchaudio_resampler_is_step_audios_and_recorded(cli, tmp_path):
    """--resampler torchaudio writes torchaudio.transforms.Resample's output, kept exact in float
    WAV; the choice is part of the run's signature, and --downsample-only refuses by key."""
    import json

    import torch
    import torchaudio

    x = np.random.default_rng(5).uniform(-0.9, 0.9, 30011).astype(np.float32)
    high, low = write_audio(tmp_path / "hi.wav", x, 44100, subtype="FLOAT"), write_audio(tmp_path / "lo.wav", x[:8000], 8000, subtype="FLOAT")
    data = make_data_dir(tmp_path / "data", {"hi": high, "lo": low})
    out = tmp_path / "out"
    args = ("resample", "--rate", 16000, "--resampler", "torchaudio", "--subtype", "FLOAT", "--audio-format", "wav")
    result = cli(*args, "--downsample-only", "--min-success", 0.5, data, out)
    assert result.returncode == 0, result.stderr
    assert "lo: 8000 Hz is below --rate 16000: not upsampled (--downsample-only)" in result.stderr and "done 1/2" in result.stderr
    expected = torchaudio.transforms.Resample(orig_freq=44100, new_freq=16000)(torch.from_numpy(x)[None])[0].numpy()
    assert np.array_equal(sf.read(out / "audio" / "hi.wav", dtype="float32")[0], expected)
    arguments = json.loads((out / ".done").read_text())["signature"]["arguments"]
    assert (arguments["resampler"], arguments["downsample_only"], "quality" in arguments) == ("torchaudio", True, False)
    soxr = cli("resample", "--rate", 16000, "--subtype", "FLOAT", "--audio-format", "wav", "--min-success", 0.5, data, out)
    assert soxr.returncode == 0 and "already done" not in soxr.stderr and "done 2/2" in soxr.stderr
    assert not np.array_equal(sf.read(out / "audio" / "hi.wav", dtype="float32")[0][: len(expected) - 1], expected[:-1])
    unknown = cli("resample", "--rate", 16000, "--resampler", "sinc", data, tmp_path / "o")
    assert unknown.returncode == 2 and unknown.stderr.strip().splitlines()[-1] == "error: unknown --resampler 'sinc' (hint: choose one of soxr, torchaudio)"
