import json

import numpy as np
import soundfile as sf

from audiotok.io.tables import read_matrices
from audiotok.units.bundle import Bundle
from tests.conftest import make_data_dir, sine, write_audio


def bundle_from(features_ark, out, k=8, drop=()):
    """A bundle whose centroids are k of the frames, with the features' recipe less `drop`."""
    feats = np.concatenate([m for _, m in read_matrices(f"ark:{features_ark}")])
    recipe = json.loads((features_ark.parent / (features_ark.name + ".recipe.json")).read_text())
    recipe = {name: value for name, value in recipe.items() if name not in drop}
    Bundle(feats[:: max(1, len(feats) // k)][:k].copy(), recipe, {"seed": 0}).save(out)
    return out


def corpus(tmp_path):
    items = {
        f"u{i}": write_audio(
            tmp_path / "in" / f"u{i}.wav", sine(150 + 90 * i, 16000, 0.6 + 0.2 * i) + 0.05 * np.sin(np.arange(int(16000 * (0.6 + 0.2 * i))) / 7), 16000
        )
        for i in range(3)
    }
    return make_data_dir(tmp_path / "data", items)


def speech_like(rate, lead, tail, seed, seconds=0.8):
    """Quiet noise around a part whose spectrum changes every frame (frames far from ties between units)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    voiced = 0.3 * np.sin(2 * np.pi * (120 + 80 * seed) * t * (1 + t)) + 0.1 * np.cumsum(rng.normal(0, 0.05, len(t))) * np.sin(7 * t)
    return np.concatenate([rng.normal(0, 1e-4, int(lead * rate)), voiced, rng.normal(0, 1e-4, int(tail * rate))]).astype(np.float32)


def test_tokenize_equals_extract_then_quantize(cli, tmp_path):
    data = corpus(tmp_path)
    assert cli("extract-feats", "--backend", "mfcc", "--deltas", data, f"ark:{tmp_path}/f.ark").returncode == 0
    # A bundle as written before the audio front end was recorded: it means resampling alone.
    bundle = bundle_from(tmp_path / "f.ark", tmp_path / "km", drop=("front_end",))
    two_step = cli("quantize", bundle, f"ark:{tmp_path}/f.ark")
    one_step = cli("tokenize", bundle, data)
    assert one_step.returncode == 0, one_step.stderr
    assert one_step.text == two_step.text and len(one_step.text.splitlines()) == 3


def test_tokenize_with_an_encoder_checks_its_weights(cli, tmp_path, tiny_hubert, tiny_wav2vec2):
    data = corpus(tmp_path)
    assert cli("extract-feats", "--model", tiny_hubert, "--layer", 1, data, f"ark:{tmp_path}/h.ark").returncode == 0
    bundle = bundle_from(tmp_path / "h.ark", tmp_path / "km")
    one_step = cli("tokenize", bundle, data, "--dedup", "--format", "jsonl")
    assert one_step.returncode == 0, one_step.stderr
    two_step = cli("quantize", bundle, f"ark:{tmp_path}/h.ark", "--dedup", "--format", "jsonl")
    assert one_step.text == two_step.text
    wrong = cli("tokenize", bundle, data, "--model", tiny_wav2vec2)
    assert wrong.returncode == 1 and "the bundle was made with" in wrong.stderr


def test_tokenize_replays_the_recorded_front_end(cli, tmp_path):
    """seed004 at 22.05 kHz: tokenize equals the seed's processor by hand, then extract-feats and quantize."""
    from tests.units.seed004_reference import seed_processor

    waves = {f"u{i}": speech_like(22050, lead=0.2 + 0.3 * i, tail=0.6 - 0.2 * i, seed=i) for i in range(3)}
    data = make_data_dir(tmp_path / "data", {key: write_audio(tmp_path / "in" / f"{key}.wav", wave, 22050) for key, wave in waves.items()})
    made = cli("extract-feats", "--backend", "mfcc", "--deltas", "--front-end", "seed004", data, f"ark:{tmp_path}/f.ark")
    assert made.returncode == 0, made.stderr
    bundle = bundle_from(tmp_path / "f.ark", tmp_path / "km")
    assert json.loads((bundle / "config.json").read_text())["recipe"]["front_end"]["name"] == "seed004"
    one_step = cli("tokenize", bundle, data)
    assert one_step.returncode == 0, one_step.stderr
    assert one_step.text == cli("quantize", bundle, f"ark:{tmp_path}/f.ark").text
    # By hand: the seed's processor on the samples audiotok reads, as float WAVs at 16 kHz, then no front end.
    by_hand = {}
    for key in waves:
        samples, rate = sf.read(tmp_path / "in" / f"{key}.wav", dtype="float32")
        by_hand[key] = write_audio(tmp_path / "hand" / f"{key}.wav", seed_processor(samples, rate), 16000, subtype="FLOAT")
    hand_data = make_data_dir(tmp_path / "hand_data", by_hand)
    assert cli("extract-feats", "--backend", "mfcc", "--deltas", hand_data, f"ark:{tmp_path}/h.ark").returncode == 0
    two_steps = cli("quantize", bundle, "-", input=(tmp_path / "h.ark").read_bytes())
    assert two_steps.returncode == 0 and one_step.text == two_steps.text and len(one_step.text.splitlines()) == 3
    # Features whose recipe records another front end are refused.
    refused = cli("quantize", bundle, f"ark:{tmp_path}/h.ark")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith(
        f"error: ark:{tmp_path}/h.ark: features were made with the audio front end none (soxr VHQ resampling), the bundle {bundle} with seed004"
    )
