import numpy as np
import pytest

from audiotok.dsp.front_end import NONE, SEED004, preset, recorded_front_end
from audiotok.dsp.resample import resample
from audiotok.errors import AudiotokError, UsageError
from tests.conftest import tone_burst
from tests.units.seed004_reference import seed_processor


@pytest.mark.parametrize("rate,lead,tail", [(16000, 0.5, 0.7), (22050, 0.3, 0.9), (48000, 0.4, 0.4)])
def test_seed004_equals_the_seeds_processor(rate, lead, tail):
    audio = tone_burst(rate=rate, lead=lead, tail=tail, tone=0.6, seed=rate)
    ours = SEED004(audio, rate, 16000)
    np.testing.assert_array_equal(ours, seed_processor(audio, rate))
    # Most of the silence went (librosa's frames are 128 ms), and the length is the
    # receptive field plus whole strides.
    assert len(ours) < 16000 * (0.6 + 0.5) and (len(ours) - 400) % 320 == 0


def test_none_resamples_as_extraction_always_did():
    audio = tone_burst(rate=22050)
    np.testing.assert_array_equal(NONE(audio, 22050, 16000), resample(audio, 22050, 16000))
    assert NONE(audio, 16000, 16000) is not None and np.array_equal(NONE(audio, 16000, 16000), audio)


def test_the_record_is_what_is_replayed():
    assert recorded_front_end({}) == NONE  # a recipe written before front ends were recorded
    for front_end in (NONE, SEED004):
        assert recorded_front_end({"front_end": front_end.as_dict()}) == front_end
    # Replayed from the recorded steps, not from the name.
    changed = dict(SEED004.as_dict(), trim={"top_db": 20.0, "frame_length": 1024, "hop_length": 256})
    assert recorded_front_end({"front_end": changed}).trim.top_db == 20.0
    for broken in ({"name": "x", "denoise": {}}, {"resample": {"method": "sinc"}}, {"pad": {"stride": 0, "receptive_field": 400}}, {"trim": {}}):
        with pytest.raises(AudiotokError, match="the recorded audio front end .* is not understood"):
            recorded_front_end({"front_end": broken}, "b/config.json")
    with pytest.raises(UsageError, match="unknown --front-end 'seed4'"):
        preset("seed4")


def test_seed004_equals_the_seeds_processor_on_real_speech(speech_dir):
    from audiotok.io.audio import decode

    for name in ("1688-142285-0000.flac", "LJ050-0131.wav", "BASIC5000_0001.wav"):  # 16, 22.05, 48 kHz
        audio = decode(str(speech_dir / name))
        np.testing.assert_array_equal(SEED004(audio.samples, audio.rate, 16000), seed_processor(audio.samples, audio.rate), err_msg=name)
