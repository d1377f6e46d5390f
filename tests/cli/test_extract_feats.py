import json

import kaldiio

from tests.conftest import gated_item, make_data_dir, sine, start_cli, wait_for, write_audio


def corpus(tmp_path, count=4, gate=None):
    """count items; with `gate`, u2 waits until the file `gate` exists."""
    items = {}
    for i in range(count):
        path = write_audio(tmp_path / "in" / f"u{i}.wav", sine(200 + 40 * i, 16000, 0.5 + 0.25 * i), 16000)
        items[f"u{i}"] = gated_item(path, gate) if gate and i == 2 else path
    return make_data_dir(tmp_path / "data", items)


def test_mfcc_to_ark_scp_with_recipe(cli, tmp_path):
    data = corpus(tmp_path)
    ark, scp = tmp_path / "f.ark", tmp_path / "f.scp"
    result = cli("extract-feats", "--backend", "mfcc", "--deltas", data, f"ark,scp:{ark},{scp}")
    assert result.returncode == 0, result.stderr
    table = dict(kaldiio.load_scp(str(scp)))
    assert list(table) == ["u0", "u1", "u2", "u3"]
    assert [table[k].shape for k in table] == [(48, 39), (73, 39), (98, 39), (123, 39)]
    recipe = json.loads((tmp_path / "f.ark.recipe.json").read_text())
    assert recipe["backend"] == "mfcc" and recipe["dim"] == 39 and recipe["frame_rate"] == 100.0
    again = cli("extract-feats", "--backend", "mfcc", "--deltas", data, f"ark,scp:{ark},{scp}")
    assert "already done" in again.stderr
    text = cli("extract-feats", "--backend", "mfcc", "--deltas", data, f"ark,t:{tmp_path / 'f.txt'}")
    assert text.returncode == 0, text.stderr
    read_back = dict(kaldiio.load_ark(str(tmp_path / "f.txt")))  # Kaldi's text form, which kaldiio reads too
    assert list(read_back) == list(table) and all(abs(read_back[k] - table[k]).max() < 1e-4 * (1 + abs(table[k]).max()) for k in table)


def test_shards_together_equal_the_whole(cli, tmp_path):
    data = corpus(tmp_path, count=5)
    whole = cli("extract-feats", "--backend", "fbank", data, "ark:-").stdout
    parts = [cli("extract-feats", "--backend", "fbank", "--shard", f"{j}/2", data, "ark:-") for j in (1, 2)]
    assert all(p.returncode == 0 for p in parts)
    assert parts[0].stdout + parts[1].stdout == whole
    assert "2 items (shard 1/2)" in parts[0].stderr and "3 items (shard 2/2)" in parts[1].stderr


def finished_entries(index):
    try:
        return len(index.read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_killed_extraction_resumes_to_identical_bytes(cli, tmp_path):
    gate = tmp_path / "gate"
    data = corpus(tmp_path, count=6, gate=gate)
    whole, killed = tmp_path / "whole.ark", tmp_path / "killed.ark"
    proc = start_cli("extract-feats", "--backend", "mfcc", data, f"ark,scp:{killed},{tmp_path}/killed.scp")
    index = tmp_path / "killed.ark.partial.idx"
    wait_for(lambda: finished_entries(index) == 2, "two finished entries (the third waits on its gate)", proc)
    proc.kill()
    proc.wait()
    gate.touch()
    assert cli("extract-feats", "--backend", "mfcc", data, f"ark,scp:{whole},{tmp_path}/whole.scp").returncode == 0
    assert not killed.exists() and (tmp_path / "killed.ark.partial").exists()
    resumed = cli("extract-feats", "--backend", "mfcc", data, f"ark,scp:{killed},{tmp_path}/killed.scp")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "already done" in resumed.stderr
    assert killed.read_bytes() == whole.read_bytes()
    assert (tmp_path / "killed.scp").read_text() == (tmp_path / "whole.scp").read_text().replace("whole.ark", "killed.ark")
    assert not (tmp_path / "killed.ark.partial").exists() and not index.exists()


def test_bad_items_and_usage_errors(cli, tmp_path):
    data = corpus(tmp_path, count=3)
    with open(data / "wav.scp", "a") as handle:
        handle.write(f"u9 {tmp_path}/missing.wav\n")
    result = cli("extract-feats", "--backend", "fbank", "--min-success", 0.5, data, "ark:-")
    assert result.returncode == 0 and "u9: no such file" in result.stderr and "done 3/4" in result.stderr
    assert cli("extract-feats", data, "ark:-").returncode == 2  # neither --model nor a backend
    bad = cli("extract-feats", "--backend", "logmel", "--num-mels", 64, data, "ark:-")
    assert bad.returncode == 2 and "80 or 128" in bad.stderr
    missing = cli("extract-feats", "--model", tmp_path / "nowhere" / "x" / "y", "--layer", 1, data, "ark:-")
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1].startswith("error: no model directory")


def test_encoder_features_through_the_cli(cli, tmp_path, tiny_hubert):
    data = corpus(tmp_path, count=2)
    result = cli("extract-feats", "--model", tiny_hubert, "--layer", 2, data, f"ark:{tmp_path}/h.ark")
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr  # no progress bars from transformers
    table = dict(kaldiio.load_ark(str(tmp_path / "h.ark")))
    assert table["u0"].shape == (24, 32) and table["u1"].shape == (37, 32)
    recipe = json.loads((tmp_path / "h.ark.recipe.json").read_text())
    assert recipe["backend"] == "hf" and recipe["layer"] == 2 and len(recipe["model_hash"]) == 16


def test_a_precision_layout_runs_through_the_cli(cli, tmp_path, tiny_hubert):
    """The option reaches the encoder; what each layout keeps in float32 is tested on the encoders
    themselves (tests/units/test_extract.py), without a process each."""
    data = corpus(tmp_path, count=2)
    runs = {"float32": (), "bfloat16": ("--dtype", "bfloat16")}  # --dtype bfloat16 alone: the default layout, uniform
    runs["fp32-last"] = ("--dtype", "bfloat16", "--precision-layout", "fp32-last")
    tables = {}
    for name, options in runs.items():
        result = cli("extract-feats", "--model", tiny_hubert, "--layer", 2, *options, data, f"ark:{tmp_path}/{name}.ark")
        assert result.returncode == 0, result.stderr
        tables[name] = dict(kaldiio.load_ark(str(tmp_path / f"{name}.ark")))
    reference = tables["float32"]
    for name, table in tables.items():
        assert list(table) == ["u0", "u1"], name
        for key, features in table.items():
            assert features.dtype == reference[key].dtype and features.shape == reference[key].shape, name
            assert abs(features - reference[key]).max() < 0.05 * abs(reference[key]).max(), name
    refused = cli("extract-feats", "--backend", "mfcc", "--precision-layout", "fp32-cnn", data, f"ark:{tmp_path}/m.ark")
    assert refused.returncode == 2 and "error: --precision-layout applies to encoders (--model), not to --backend mfcc" in refused.stderr
