"""taste-train: overfitting a tiny random set, exact resume, key/rate reports, outputs, one-line CLI errors."""

import json

import numpy as np
import pytest
import yaml

from audiotok.io.feature_store import FeatureStoreWriter, TasteFeatures
from audiotok.taste import config as taste_config
from audiotok.taste.data import UnitCorpus, baselines
from audiotok.taste.train import train
from tests.conftest import assert_no_traceback

META = {
    "whisper_model": "random",
    "whisper_digest": "0",
    "layer": 1,
    "whisper_dim": 16,
    "text_model": "random",
    "text_digest": "0",
    "text_dim": 12,
    "add_special_tokens": False,
    "frame_rate": 50,
    "sample_rate": 16000,
    "dtype": "float32",
    "store_dtype": "float32",
}


def write_units_recipe(units, **fields):
    """UNITS.recipe.json as s3-extract writes it beside a unit table (the fields taste-train reads, and a few more)."""
    recipe = {"tokenizer": "s3", "backend": "pytorch", "version": "v1", "frame_rate": 25, "codebook_size": 64, "sample_rate": 16000, **fields}
    units.with_name(units.name + ".recipe.json").write_text(json.dumps(recipe))


def make_store(directory, count=6, seed=0, vocab=64, extra_units=(), missing_units=(), off_rate=(), rate=25, recorded=True):
    """A feature store of random utterances (Whisper frames at 50 a second) and a unit table at
    `rate` units a second; with `recorded`, the table's recipe beside it says so."""
    rng = np.random.default_rng(seed)
    writer = FeatureStoreWriter(directory / "store", META, shard_items=4)
    lines = []
    for i in range(count):
        key = f"utt{i:02d}"
        n, t = 3 + i % 4, 30 + 6 * i
        writer.add(
            TasteFeatures(key, f"words {i}", np.arange(n), rng.standard_normal((n, 12)).astype(np.float32), rng.standard_normal((t, 16)).astype(np.float32))
        )
        units = rng.integers(0, vocab, t * rate // 50 if key not in off_rate else t * 2)
        units[units % 3 == 0] = 7  # a frequent unit: the majority baseline is not trivial
        if key not in missing_units:
            lines.append(" ".join([key, *map(str, units)]))
    writer.close()
    lines += [f"{key} 1 2 3" for key in extra_units]
    (directory / "units.txt").write_text("\n".join(lines) + "\n")
    if recorded:
        write_units_recipe(directory / "units.txt", frame_rate=rate, codebook_size=vocab)
    return directory / "store", directory / "units.txt"


def config_for(store, units, **optim):
    raw = {
        "preset": "tiny",
        "data": {"train": {"features": str(store), "units": str(units)}},
        "optim": {"max_steps": 6, **optim},
        "eval_every": 3,
        "checkpoint_every": 2,
    }
    return taste_config.resolve(raw)


def test_overfits_a_tiny_random_set_well_above_the_baselines(tmp_path):
    store, units = make_store(tmp_path, count=4)
    config = config_for(store, units, max_steps=120, lr=1e-2, warmup_steps=5, log_every=20)
    config["eval_every"] = config["checkpoint_every"] = 120
    summary = train(config, tmp_path / "exp", device="cpu")
    assert summary["train_accuracy"] > 0.9, summary
    assert summary["train_accuracy"] > summary["train_majority_accuracy"] + 0.4
    assert summary["train_accuracy"] > summary["train_copy_previous_accuracy"] + 0.4
    assert 0.0 <= summary["train_accuracy_speech_zeroed"] <= 1.0
    exp = tmp_path / "exp"
    for name in ("model.safetensors", "config.json", "metrics.jsonl", "loss_curve.png", "examples.txt", "summary.json", "baselines.json", "train_config.yaml"):
        assert (exp / name).is_file(), name
    examples = (exp / "examples.txt").read_text().splitlines()
    assert examples[0].startswith("utt00: words 0") and "true" in examples[1] and "teacher-forced" in examples[2] and "free-running" in examples[3]
    saved = json.loads((exp / "config.json").read_text())
    assert saved["features"]["whisper_model"] == "random" and saved["trained_steps"] == 120 and saved["model"]["text_dim"] == 12


def test_a_stopped_and_resumed_run_writes_the_uninterrupted_metrics(tmp_path):
    store, units = make_store(tmp_path)
    config = config_for(store, units)
    config["data"]["valid"] = {"features": str(store), "units": str(units)}
    config["model"]["dropout"] = config["decoder"]["dropout"] = 0.1  # RNG in the loop: resume must restore it
    train(config, tmp_path / "whole", device="cpu")
    assert train(config, tmp_path / "parts", device="cpu", stop_after=3) == {"stopped_at": 3}
    partial = (tmp_path / "parts" / "metrics.jsonl").read_text()
    assert max(json.loads(line)["step"] for line in partial.splitlines()) == 3
    train(config, tmp_path / "parts", device="cpu")
    whole = (tmp_path / "whole" / "metrics.jsonl").read_text()
    assert (tmp_path / "parts" / "metrics.jsonl").read_text() == whole
    assert (tmp_path / "parts" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    rows = [json.loads(line) for line in whole.splitlines()]
    assert [r["step"] for r in rows if "train_accuracy" in r] == [3, 6]
    assert {"train_top5_accuracy", "valid_accuracy", "valid_top5_accuracy", "valid_loss"} <= set(rows[-1])
    summary = json.loads((tmp_path / "parts" / "summary.json").read_text())
    evals = [r for r in rows if "valid_accuracy" in r]
    best = max(evals, key=lambda r: r["valid_accuracy"])  # the first of equals, as the summary keeps
    assert (summary["best_valid_accuracy"], summary["best_valid_step"]) == (best["valid_accuracy"], best["step"])
    assert 0.0 <= summary["valid_accuracy_speech_zeroed"] <= 1.0


def test_a_frozen_hf_decoder_trains_resumes_and_is_not_saved(tmp_path, tiny_text_model_dir):
    store, units = make_store(tmp_path, count=3)
    config = config_for(store, units, max_steps=4)
    config["decoder"].update(type="hf", path=str(tiny_text_model_dir), freeze=True)
    train(config, tmp_path / "whole", device="cpu")
    train(config, tmp_path / "parts", device="cpu", stop_after=2)
    train(config, tmp_path / "parts", device="cpu")
    assert (tmp_path / "parts" / "metrics.jsonl").read_text() == (tmp_path / "whole" / "metrics.jsonl").read_text()
    from safetensors import safe_open

    with safe_open(str(tmp_path / "whole" / "model.safetensors"), "pt") as saved:
        names = list(saved.keys())
    assert "unit_embedding.weight" in names and not any(n.startswith("decoder.backbone.") for n in names)


def test_keys_on_one_side_and_off_rate_items_are_counted(tmp_path, caplog):
    store, units = make_store(tmp_path, count=5, extra_units=("ghost1", "ghost2"), missing_units=("utt01",), off_rate=("utt03",))
    corpus = UnitCorpus(str(store), str(units), taste_config.load("tiny"), "train")
    assert corpus.keys == ["utt00", "utt02", "utt03", "utt04"]
    assert corpus.report == {
        "items": 4,
        "features_without_units": 1,
        "units_without_features": 2,
        "off_rate": ["utt03"],
        "too_long": 0,
        "unit_rate": 25.0,
        "unit_rate_from": f"{units}.recipe.json",
    }
    config = taste_config.resolve({"preset": "tiny", "model": {"max_text_tokens": 4}})  # utt03 has 6 text tokens, utt02 5
    assert UnitCorpus(str(store), str(units), config, "train").keys == ["utt00", "utt04"]
    assert "2 items are longer than model.max_text_tokens (4)" in caplog.text
    text = caplog.text
    assert "1 feature items have no units" in text and "2 unit items have no features" in text and "utt03" in text and "far from 25" in text


def test_baselines_majority_and_copy_previous():
    train_units = [np.array([1, 1, 2, 1]), np.array([3, 3])]
    out = baselines(train_units, {"train": train_units})
    assert out["majority_unit"] == 1
    assert out["train_majority_accuracy"] == pytest.approx(3 / 6)
    # copy-previous: [1(maj) 1 2 1] -> right at 0, 1; [3 3] -> first gets the majority (wrong), then right.
    assert out["train_copy_previous_accuracy"] == pytest.approx(3 / 6)


def test_cli_trains_with_overrides_and_errors_are_one_line(cli, tmp_path):
    store, units = make_store(tmp_path, count=3)
    result = cli("taste-train", "tiny", "--features", store, "--units", units, "--output-dir", tmp_path / "exp", "--max-steps", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "baselines (no model)" in result.stderr and "train accuracy" in result.stderr and result.stdout == b""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"preset": "tiny", "optim": {"max_step": 3}}))
    rate_50 = tmp_path / "rate50.yaml"  # the units' recipe says 25 a second
    rate_50.write_text(yaml.safe_dump({"preset": "tiny", "data": {"unit_rate": 50}}))
    cases = [
        (
            ("taste-train", rate_50, "--features", store, "--units", units, "--output-dir", tmp_path / "x"),
            1,
            f"error: data.unit_rate is 50 but {units}.recipe.json records 25 units a second (hint: leave data.unit_rate out",
        ),
        (("taste-train", bad, "--output-dir", tmp_path / "x"), 2, "error: unknown config key 'optim.max_step'"),
        (("taste-train", "tiny", "--output-dir", tmp_path / "x"), 1, "error: no training data"),
        (("taste-train", "tiny", "--features", tmp_path / "nowhere", "--units", units, "--output-dir", tmp_path / "x"), 1, "error: no such feature store"),
        (("taste-train", "tiny", "--features", store, "--units", tmp_path / "none.txt", "--output-dir", tmp_path / "x"), 1, "error: no such unit table"),
        (("taste-train", "tiny", "--features", store, "--output-dir", tmp_path / "x"), 2, "error: data.train needs both features and units"),
    ]
    for args, code, message in cases:
        result = cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert_no_traceback(result.stderr)
        assert message in result.stderr.strip().splitlines()[-1], result.stderr
    units.write_text("utt00 1 2 99\n")
    result = cli("taste-train", "tiny", "--features", store, "--units", units, "--output-dir", tmp_path / "y")
    assert result.returncode == 1 and "outside [0, 64)" in result.stderr and "decoder.unit_vocab" in result.stderr
    assert_no_traceback(result.stderr)
