"""S3 tokens against code nobody here wrote: the s3tokenizer package from PyPI (0.3.0, pinned in
requirements.txt) and Step-Audio's vq06 loop written line by line from its tokenizer.py.

s3tokenizer builds its own v1 25 Hz, v1 50 Hz and v2 models (full width, 1280 x 20 heads; one
block instead of six, for speed) with seeded random weights; audiotok loads those weights through
its own loader. A random codebook gives one code for every frame, so v1's codewords are the
encoder's own (L2-normalised) outputs on other recordings and v2's FSQ projection is scaled to the
encoder's outputs; the tests require many distinct codes. Real speech from AUDIOTOK_TEST_AUDIO,
joined into 53.0, 55.0 and 65.5 s recordings: s3tokenizer's windows at 0, 2600, 5200 frames with
a last window of 1 s (the whole tail lost), 3 s (part of it lost) and 13.5 s. The references live
in tests/units/s3_references.py (shared with bench/bench_s3_fidelity.py).
"""

import pytest
import soundfile as sf
import torch

from audiotok.io.audio_table import AudioItem
from audiotok.units.features import WhisperLogMel
from audiotok.units.s3 import S3Torch, load_torch_model, s3_tokens

s3tokenizer = pytest.importorskip("s3tokenizer", reason="the s3tokenizer package (requirements.txt) is not installed")
from tests.units.s3_references import NAMES, codeword_audio, reference_model, s3tokenizer_load_audio, s3tokenizer_tokens, speech_clips, step_audio_vq06  # noqa: E402 - only when s3tokenizer imports


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """({key: path} of real speech as float WAV, codeword audio, the folder)."""
    import os
    from pathlib import Path

    root = os.environ.get("AUDIOTOK_TEST_AUDIO")
    if not root or not Path(root).is_dir():
        pytest.skip("AUDIOTOK_TEST_AUDIO is not set (point it at ../shared/data/speech)")
    out = tmp_path_factory.mktemp("s3ref")
    paths = {}
    for key, (samples, rate) in speech_clips(root).items():
        paths[key] = str(out / f"{key}.wav")
        sf.write(paths[key], samples, rate, subtype="FLOAT")
    return paths, codeword_audio(root), out


def audiotok_tokens(weights, version, rate, paths: dict, long_audio: str, resampler: str = "torchaudio", batch_seconds: float = 60.0) -> dict:
    from audiotok.io.audio import decode

    backend = S3Torch(load_torch_model(weights, version, rate), "cpu")

    def item(key, path):
        return AudioItem(key, path, path, _read=lambda channel, p=path: decode(p, channel))

    results = s3_tokens([item(k, p) for k, p in paths.items()], backend, long_audio=long_audio, resampler=resampler, batch_seconds=batch_seconds)
    return {r.key: r.tokens.tolist() for r in results}


def mismatches(ours: list[int], theirs: list[int]) -> str:
    if len(ours) != len(theirs):
        return f"{len(ours)} tokens vs {len(theirs)}"
    wrong = sum(a != b for a, b in zip(ours, theirs, strict=True))
    return f"{wrong}/{len(ours)} tokens differ" if wrong else ""


@pytest.fixture(scope="module")
def models(recordings, tmp_path_factory):
    """{(version, rate): (s3tokenizer model, the same weights saved for audiotok)}"""
    _, codewords, _ = recordings
    out = tmp_path_factory.mktemp("s3weights")
    found = {}
    for version, rate in NAMES:
        model = reference_model(version, rate, codewords)
        weights = out / f"{NAMES[(version, rate)]}.pt"
        torch.save(model.state_dict(), weights)
        found[(version, rate)] = (model, weights)
    return found


def test_log_mel_equals_s3tokenizer_to_the_bit(recordings):
    paths, _, _ = recordings
    mel = WhisperLogMel(128)
    for key in ("short", "lj22k", "long53"):
        audio = s3tokenizer_load_audio(paths[key])
        assert torch.equal(mel.log_mel(audio), s3tokenizer.log_mel_spectrogram(audio)), key


@pytest.mark.parametrize("version,rate", list(NAMES))
def test_s3tokenizer_mode_equals_the_package_token_for_token(models, recordings, version, rate, capsys):
    paths, _, _ = recordings
    model, weights = models[(version, rate)]
    # Every model: a short clip, a 22.05 kHz clip (torchaudio's resampler) and 53.0 s (tail lost).
    # The 25 Hz v1 also gets 55.0 s (part of the tail lost) and 65.5 s (three full windows).
    keys = ["short", "lj22k", "long53"] + (["long55", "long65.5"] if (version, rate) == ("v1", 25) else [])
    chosen = {k: paths[k] for k in keys}
    ours = audiotok_tokens(weights, version, rate, chosen, "s3tokenizer")
    theirs = {k: s3tokenizer_tokens(model, s3tokenizer_load_audio(p)) for k, p in chosen.items()}
    problems = {k: mismatches(ours[k], theirs[k]) for k in keys}
    with capsys.disabled():
        total = sum(len(t) for t in theirs.values())
        print(
            f"\n  s3tokenizer {NAMES[(version, rate)]}: {total} tokens, "
            f"{sum(len(set(t)) for t in theirs.values())} distinct per clip summed, problems {problems}"
        )
    assert not any(problems.values()), problems
    assert len(theirs["long53"]) == (1275 if rate == 25 else 2550)  # s3tokenizer loses the last 2 s
    for key in keys:
        assert len(set(theirs[key])) >= 0.2 * len(theirs[key]), f"{key}: too few distinct codes for a meaningful comparison"
    if (version, rate) == ("v1", 25):
        assert len(theirs["long55"]) == 1375 - 25  # the last window is 3 s: 1 s before its start + 2 s is lost
        assert len(theirs["long65.5"]) == 1638  # 13.5 s last window: nothing lost


def test_batched_and_one_at_a_time_agree_in_s3tokenizer_mode(models, recordings):
    paths, _, _ = recordings
    _, weights = models[("v1", 25)]
    chosen = {k: paths[k] for k in ("short", "lj22k", "long55")}
    assert audiotok_tokens(weights, "v1", 25, chosen, "s3tokenizer", batch_seconds=0.0) == audiotok_tokens(
        weights, "v1", 25, chosen, "s3tokenizer", batch_seconds=200.0
    )


def test_step_audio_mode_equals_step_audio_vq06_token_for_token(models, recordings):
    paths, _, _ = recordings
    model, weights = models[("v1", 25)]
    chosen = {k: paths[k] for k in ("short", "long65.5")}
    ours = audiotok_tokens(weights, "v1", 25, chosen, "step-audio")
    theirs = {k: step_audio_vq06(model, torch.from_numpy(sf.read(p, dtype="float32")[0])[None]) for k, p in chosen.items()}
    assert {k: mismatches(ours[k], theirs[k]) for k in chosen} == {k: "" for k in chosen}
    assert len(theirs["long65.5"]) == 750 + 750 + 138  # 30 s + 30 s + 5.5 s, each chunk on its own
    # Not the same as s3tokenizer's layout past 30 s: the floor and the windows differ.
    other = audiotok_tokens(weights, "v1", 25, {"long65.5": paths["long65.5"]}, "s3tokenizer")["long65.5"]
    assert len(other) == len(theirs["long65.5"]) and other != theirs["long65.5"]
