"""Step-Audio's vq02 encoder: FunASR's streaming Paraformer, checked against FunASR itself.

tests/data/paraformer_tiny/golden.npz was made by FunASR's own SANMEncoderChunkOpt and
WavFrontendOnline driven as Step-Audio's infer_encoder drives them
(tests/data/make_paraformer_golden.py); these tests need no FunASR, except the one that
makes the golden again from FunASR 1.4.16 (installed by `make venv`, tests/data/README.md).
"""

import json
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from audiotok.errors import AudiotokError
from audiotok.units.encoders import load_encoder
from audiotok.units.funasr_dir import load_paraformer
from audiotok.units.paraformer import EncoderConfig
from tests.builders.paraformer import random_encoder, save_funasr_dir
from tests.conftest import write_audio

TINY = Path(__file__).resolve().parents[1] / "data" / "paraformer_tiny"
SMALL = EncoderConfig(output_size=8, attention_heads=2, linear_units=16, num_blocks=3)


def read_golden(directory: Path) -> dict:
    """name -> (wave, FunASR's encoder output) from a golden.npz."""
    data = np.load(directory / "golden.npz")
    waves = np.split(data["audio"].astype(np.float32) / 32768, np.cumsum(data["lengths"])[:-1])
    expected = np.split(data["enc_out"], np.cumsum(data["frames"])[:-1])
    return dict(zip((str(n) for n in data["names"]), zip(waves, expected, strict=True), strict=True))


@pytest.fixture(scope="module")
def golden():
    return read_golden(TINY)


@pytest.fixture(scope="module")
def tiny():
    return load_paraformer(TINY)[0]


def test_offline_batch_equals_funasr_run_the_step_audio_way(tiny, golden):
    outputs = tiny.encode([wave for wave, _ in golden.values()])
    for (name, (wave, expected)), got in zip(golden.items(), outputs, strict=True):
        assert got.shape == expected.shape, name
        assert tiny.frame_count(len(wave)) == len(expected), name
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0, err_msg=name)


def test_golden_made_again_from_funasr_equals_the_stored_one_and_audiotok(tmp_path, golden):
    from tests.data.upstream import regenerate

    regenerate(TINY.parent / "make_paraformer_golden.py", tmp_path, "funasr")
    for name in ("am.mvn", "config.yaml"):
        assert (tmp_path / name).read_bytes() == (TINY / name).read_bytes(), name
    fresh_weights, stored_weights = (torch.load(d / "model.pt", weights_only=True) for d in (tmp_path, TINY))
    assert fresh_weights.keys() == stored_weights.keys() and all(torch.equal(fresh_weights[k], stored_weights[k]) for k in fresh_weights)
    fresh = read_golden(tmp_path)
    assert fresh.keys() == golden.keys()
    outputs = load_paraformer(tmp_path)[0].encode([wave for wave, _ in fresh.values()])
    for (name, (wave, expected)), got in zip(fresh.items(), outputs, strict=True):
        np.testing.assert_array_equal(wave, golden[name][0], err_msg=name)
        assert got.shape == expected.shape == golden[name][1].shape, name
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0, err_msg=name)
        np.testing.assert_allclose(expected, golden[name][1], atol=1e-5, rtol=0, err_msg=name)


def test_frame_count_follows_step_audio_not_a_plain_ceil(golden, tiny):
    # 2 steps + 600 samples: the fork's frontend emits nothing for the last 600 samples.
    wave, expected = golden["tail_600_dropped"]
    fbank_frames = (len(wave) - 400) // 160 + 1
    assert len(expected) == 8 and -(-fbank_frames // 6) == 9
    assert [tiny.frame_count(n) for n in (0, 399, 879, 880, 3840, 3840 + 879, 3840 + 880, 2 * 3840 + 3800)] == [0, 0, 0, 1, 4, 4, 5, 12]


def test_streamed_in_random_pieces_equals_offline(tiny, golden):
    rng = np.random.default_rng(7)
    for name, (wave, _) in golden.items():
        offline = tiny.encode([wave])[0]
        stream, parts, start = tiny.stream(), [], 0
        while start < len(wave):
            size = int(rng.choice([1, 7, 159, 400, 961, 3840, 5000]))  # smaller and larger than one step
            parts.append(stream.feed(wave[start : start + size]))
            start += size
        parts.append(stream.finish())
        streamed = np.concatenate(parts)
        assert streamed.shape == offline.shape, name
        np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0, err_msg=name)


def test_stream_state_stays_bounded(tiny, golden):
    wave, _ = golden["long_5_steps"]
    stream = tiny.stream()
    for start in range(0, len(wave), 480):
        stream.feed(wave[start : start + 480])
        assert len(stream.pending) < 4 and len(stream.frontend.pending_samples) < 400 + 480
        assert len(stream.frontend.rows) <= 7 + 3
        assert all(k.shape[0] == 4 for k in stream.state.keys)


def test_batched_equals_one_at_a_time_and_long_recordings_in_blocks(tiny, golden):
    waves = [wave for wave, _ in golden.values()]
    together = tiny.encode(waves)
    alone = [tiny.encode([w])[0] for w in waves]
    tiny.max_windows = 2  # forces several batches and the carried-state blocks of long recordings
    try:
        blocks = tiny.encode(waves)
    finally:
        tiny.max_windows = 1024
    for a, b, c in zip(together, alone, blocks, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
        np.testing.assert_allclose(c, b, atol=1e-5, rtol=0)


def test_save_and_load_round_trip_through_the_real_loader(tmp_path):
    encoder = random_encoder(SMALL, seed=3)
    rng = np.random.default_rng(0)
    shift, scale = -rng.uniform(6, 14, 560).astype(np.float32), rng.uniform(0.1, 0.4, 560).astype(np.float32)
    save_funasr_dir(tmp_path / "plain", encoder, shift, scale)
    model = load_paraformer(tmp_path / "plain")[0]
    for key, value in encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    np.testing.assert_array_equal(model.frontend.shift.numpy(), shift)
    # A training checkpoint: wrapped in state_dict, DDP's module. prefixes, other parts of the model.
    wrapped = tmp_path / "wrapped"
    shutil.copytree(tmp_path / "plain", wrapped)
    state = torch.load(wrapped / "model.pt", weights_only=True)
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()} | {"module.decoder.w": torch.zeros(2)}}, wrapped / "model.pt")
    wave = np.random.default_rng(1).normal(0, 0.1, 9000).astype(np.float32)
    np.testing.assert_array_equal(load_paraformer(wrapped)[0].encode([wave])[0], model.encode([wave])[0])


def test_configuration_json_names_the_files(tmp_path):
    save_funasr_dir(tmp_path / "m", random_encoder(SMALL), np.zeros(560, np.float32), np.ones(560, np.float32))
    for old, new in (("config.yaml", "conf.yaml"), ("model.pt", "weights.pt"), ("am.mvn", "cmvn.txt")):
        (tmp_path / "m" / old).rename(tmp_path / "m" / new)
    metas = {"file_path_metas": {"init_param": "weights.pt", "config": "conf.yaml", "frontend_conf": {"cmvn_file": "cmvn.txt"}}}
    (tmp_path / "m" / "configuration.json").write_text(json.dumps(metas))
    assert load_paraformer(tmp_path / "m")[0].dim == 8
    metas["file_path_metas"]["init_param"] = "../weights.pt"
    (tmp_path / "m" / "configuration.json").write_text(json.dumps(metas))
    with pytest.raises(AudiotokError, match="points outside the model directory"):
        load_paraformer(tmp_path / "m")


def broken_copy(tmp_path, change):
    directory = tmp_path / "broken"
    shutil.copytree(TINY, directory)
    (directory / "golden.npz").unlink()
    change(directory)
    return directory


def drop_key(key):
    def change(directory):
        state = torch.load(directory / "model.pt", weights_only=True)
        del state[key]
        torch.save(state, directory / "model.pt")

    return change


def reshape_key(key):
    def change(directory):
        state = torch.load(directory / "model.pt", weights_only=True)
        state[key] = state[key][:, :-1]
        torch.save(state, directory / "model.pt")

    return change


def short_cmvn(directory):
    text = (directory / "am.mvn").read_text().splitlines()
    text[4] = text[4].rsplit(" ", 2)[0] + " ]"  # one value fewer after <AddShift>
    (directory / "am.mvn").write_text("\n".join(text))


def set_config(section, key, value):
    def change(directory):
        config = yaml.safe_load((directory / "config.yaml").read_text())
        config[section][key] = value
        (directory / "config.yaml").write_text(yaml.safe_dump(config))

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d / "am.mvn").unlink(), r"no am\.mvn \(the CMVN file\)"),
        (short_cmvn, r"<AddShift> has 559 values and <Rescale> 560; expected 560"),
        (drop_key("encoder.encoders.1.self_attn.fsmn_block.weight"), r"model\.pt: missing encoder\.encoders\.1\.self_attn\.fsmn_block\.weight"),
        (reshape_key("encoder.encoders0.0.self_attn.linear_q_k_v.weight"), r"encoder\.encoders0\.0\.self_attn\.linear_q_k_v\.weight has shape \[24, 559\]"),
        (set_config("encoder_conf", "num_blocks", 2), r"unexpected encoder\.encoders\.1\.self_attn\.linear_out\.weight and 12 more"),
        (set_config("frontend_conf", "lfr_m", 5), r"frontend_conf\.lfr_m is 5"),
        (lambda d: (d / "model.pt").write_bytes(b"not a checkpoint"), r"cannot read .*model\.pt"),
    ],
)
def test_loader_refuses_broken_directories_naming_file_and_key(tmp_path, change, message):
    with pytest.raises(AudiotokError, match=message):
        load_paraformer(broken_copy(tmp_path, change))


def test_config_dither_is_ignored_and_logged(tmp_path, caplog, tiny, golden):
    directory = broken_copy(tmp_path, set_config("frontend_conf", "dither", 1.0))
    with caplog.at_level("INFO", logger="audiotok"):
        model = load_paraformer(directory)[0]
    assert "dither 1 ignored" in caplog.text
    wave, expected = golden["tail_1000"]
    np.testing.assert_array_equal(model.encode([wave])[0], model.encode([wave])[0])
    np.testing.assert_allclose(model.encode([wave])[0], expected, atol=1e-5, rtol=0)


def test_extract_feats_tokenize_and_errors_on_the_cli(cli, tmp_path, golden):
    names = ["first_2000", "long_5_steps", "tail_600_dropped"]
    paths = [write_audio(tmp_path / f"{n}.wav", (golden[n][0] * 32768).astype(np.int16), 16000, subtype="PCM_16") for n in names]
    # --window 1 would cut 1.3 s recordings into pieces: the Paraformer takes them whole.
    result = cli("extract-feats", "--model", TINY, "--window", "1", *paths, f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp")
    assert result.returncode == 0, result.stderr
    recipe = json.loads((tmp_path / "f.ark.recipe.json").read_text())
    assert recipe["backend"] == "paraformer" and recipe["frame_rate"] == pytest.approx(1 / 0.06) and recipe["dim"] == 8
    features = dict(kaldiio.load_ark(str(tmp_path / "f.ark")))
    for name in names:
        np.testing.assert_allclose(features[name], golden[name][1], atol=1e-5, rtol=0)
    assert len(features["long_5_steps"]) == len(golden["long_5_steps"][0]) // 960 == 22  # 60 ms a frame

    assert cli("fit-kmeans", "--k", "3", f"scp:{tmp_path}/f.scp", tmp_path / "km").returncode == 0
    tokenized = cli("tokenize", tmp_path / "km", *paths)
    assert tokenized.returncode == 0, tokenized.stderr
    centroids = np.load(tmp_path / "km" / "centroids.npy")
    for line in tokenized.text.splitlines():
        key, *units = line.split()
        nearest = ((features[key][:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
        assert [int(u) for u in units] == nearest.tolist(), key

    no_cmvn = broken_copy(tmp_path, lambda d: (d / "am.mvn").unlink())
    missing = cli("extract-feats", "--model", no_cmvn, paths[0], "ark,t:-")
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr.strip().splitlines()[-1].startswith(f"error: {no_cmvn}: no am.mvn (the CMVN file) (hint:")


def test_layer_other_than_the_last_is_refused():
    assert load_encoder(str(TINY), 3, "cpu", "float32").recipe.backend == "paraformer"
    with pytest.raises(AudiotokError) as error:
        load_encoder(str(TINY), 1, "cpu", "float32")
    assert error.value.one_line() == "error: --layer 1: a Paraformer gives the output of its last block only (3) (hint: leave --layer out)"
