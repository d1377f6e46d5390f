"""taste-train's unit rate: read from the recipe s3-extract records beside the units
(UNITS.recipe.json), data.unit_rate only for tables without one, a contradiction refused."""

import json
import logging

import numpy as np
import pytest

from audiotok.errors import AudiotokError, UsageError
from audiotok.taste import config as taste_config
from audiotok.taste.data import UnitCorpus
from tests.taste.test_train import make_store, write_units_recipe


def tiny_config(**data) -> dict:
    return taste_config.resolve({"preset": "tiny", "data": data})


def rate_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "a second" in r.getMessage() or "unit rate" in r.getMessage()]


@pytest.fixture(scope="module")
def s3_50hz_units(tmp_path_factory, tiny_whisper_dir, tiny_corpus):
    """The tiny corpus through a tiny random S3 v1 at 50 Hz (s3-extract's library calls and its
    writer, so units.txt.recipe.json is the real one) and through taste-extract."""
    import torch

    from audiotok.io.audio_table import open_audio_source
    from audiotok.io.unit_writer import UnitWriter
    from audiotok.taste.extract import TasteExtractor, extract_corpus, open_corpus
    from audiotok.tokenizers.s3 import open_backend
    from audiotok.units.s3 import S3Options, s3_tokens, units_recipe
    from tests.units.test_s3 import tiny_state

    root = tmp_path_factory.mktemp("taste-50hz")
    torch.save(tiny_state("v1", 50), root / "s3_v1_50.pt")
    options = S3Options(str(root / "s3_v1_50.pt"), "v1", 50)
    backend = open_backend(options, "cpu")
    units = root / "units.txt"
    source, _ = open_audio_source(str(tiny_corpus.data_dir))
    with UnitWriter(str(units), "text", False, None, {}, True, units_recipe(backend, options)) as writer:
        for result in s3_tokens(list(source), backend):
            writer.write(result.key, result.tokens)
    extract_corpus(TasteExtractor(str(tiny_whisper_dir), device="cpu"), open_corpus(str(tiny_corpus.manifest)), root / "store")
    return root / "store", units


def test_50hz_s3_units_train_without_a_rate_warning(s3_50hz_units, tmp_path, caplog):
    from audiotok.taste.train import train

    store, units = s3_50hz_units
    assert json.loads(units.with_name("units.txt.recipe.json").read_text())["frame_rate"] == 50
    caplog.set_level(logging.INFO, logger="audiotok")
    config = tiny_config(train={"features": str(store), "units": str(units)}, examples=0)
    config["optim"]["max_steps"] = 2
    train(config, tmp_path / "exp", device="cpu")
    assert "far from" not in caplog.text
    assert rate_lines(caplog) == [f"train: 50 units a second, as {units}.recipe.json records"]
    assert json.loads((tmp_path / "exp" / "config.json").read_text())["units"] == {"rate": 50.0, "rate_from": f"{units}.recipe.json"}
    assert json.loads((tmp_path / "exp" / "baselines.json").read_text())["data"]["train"]["off_rate"] == []
    # The same table checked at 25 a second, the old default: most items are named.
    units.with_name("units.txt.recipe.json").rename(tmp_path / "kept.json")
    try:
        corpus = UnitCorpus(str(store), str(units), tiny_config(unit_rate=25), "train")
    finally:
        (tmp_path / "kept.json").rename(units.with_name("units.txt.recipe.json"))
    assert len(corpus.report["off_rate"]) >= 4 and "far from 25 a second" in caplog.text


def test_without_a_recipe_the_config_rate_is_used_and_said_once(tmp_path, caplog):
    store, units = make_store(tmp_path, count=4, off_rate=("utt02",), rate=50, recorded=False)
    caplog.set_level(logging.INFO, logger="audiotok")
    corpus = UnitCorpus(str(store), str(units), tiny_config(unit_rate=50), "train")
    assert (corpus.unit_rate, corpus.report["unit_rate_from"], corpus.report["off_rate"]) == (50.0, "data.unit_rate", ["utt02"])
    assert (
        rate_lines(caplog)[0]
        == f"train: 50 units a second from the config's data.unit_rate ({units}.recipe.json records none; s3-extract -o FILE records it in FILE.recipe.json)"
    )
    assert len([line for line in rate_lines(caplog) if "data.unit_rate" in line]) == 1


def test_without_a_recipe_or_a_config_rate_the_counts_are_not_checked(tmp_path, caplog):
    store, units = make_store(tmp_path, count=4, off_rate=("utt02",), recorded=False)
    corpus = UnitCorpus(str(store), str(units), tiny_config(), "valid")
    assert (corpus.unit_rate, corpus.report["off_rate"]) == (None, [])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"valid: unit rate unknown ({units}.recipe.json records none, data.unit_rate is not set): unit "
        "counts are not checked against the audio (s3-extract -o FILE records it in FILE.recipe.json)"
    ]


def test_a_config_rate_against_the_recorded_one_is_refused(tmp_path):
    store, units = make_store(tmp_path, count=3, rate=50)
    with pytest.raises(AudiotokError) as caught:
        UnitCorpus(str(store), str(units), tiny_config(unit_rate=25), "train")
    assert str(caught.value) == f"data.unit_rate is 25 but {units}.recipe.json records 50 units a second"
    assert "leave data.unit_rate out" in caught.value.hint
    assert UnitCorpus(str(store), str(units), tiny_config(unit_rate=50.0), "train").unit_rate == 50.0  # agreeing is fine


@pytest.mark.parametrize(
    "recipe, message",
    [
        ("[50]", ".recipe.json is not a JSON object"),
        ('{"frame_rate": 50', ".recipe.json is not a JSON object"),
        ('{"frame_rate": "fifty"}', ".recipe.json: frame_rate must be a positive number, got 'fifty'"),
        ('{"frame_rate": 50, "codebook_size": 6561}', ".recipe.json records a codebook of 6561 units, decoder.unit_vocab is 64"),
    ],
)
def test_a_bad_recipe_is_a_one_line_error(tmp_path, recipe, message):
    store, units = make_store(tmp_path, count=3)
    units.with_name("units.txt.recipe.json").write_text(recipe)
    with pytest.raises(AudiotokError) as caught:
        UnitCorpus(str(store), str(units), tiny_config(), "train")
    assert str(caught.value) == f"{units}{message}" and caught.value.hint


def test_a_recipe_without_a_rate_falls_back_to_the_config(tmp_path):
    store, units = make_store(tmp_path, count=3)
    write_units_recipe(units, frame_rate=None)
    assert UnitCorpus(str(store), str(units), tiny_config(unit_rate=25), "train").report["unit_rate_from"] == "data.unit_rate"


@pytest.mark.parametrize("rate", [0, -25, "fast", True])
def test_config_unit_rate_must_be_a_positive_number(rate):
    with pytest.raises(UsageError, match="data.unit_rate must be a positive number"):
        tiny_config(unit_rate=rate)


def test_jsonl_and_ark_t_tables_find_their_recipe(tmp_path):
    store, units = make_store(tmp_path, count=3, rate=50)
    rows = [line.split() for line in units.read_text().splitlines()]
    jsonl = tmp_path / "units.jsonl"
    jsonl.write_text("".join(json.dumps({"key": r[0], "tokens": list(map(int, r[1:]))}) + "\n" for r in rows))
    write_units_recipe(jsonl, frame_rate=50)
    for spec in (f"jsonl:{jsonl}", str(jsonl), f"ark,t:{units}"):
        corpus = UnitCorpus(str(store), spec, tiny_config(), "train")
        assert (corpus.unit_rate, corpus.report["off_rate"]) == (50.0, []), spec
        np.testing.assert_array_equal(corpus.units["utt00"], np.array(rows[0][1:], dtype=np.int64))


def test_deduplicated_units_are_not_checked_against_the_rate(tmp_path, caplog):
    """s3-extract --dedup records dedup: true; collapsed runs cannot match rate x seconds."""
    store, units = make_store(tmp_path, count=3, off_rate=("utt01",), rate=50)
    write_units_recipe(units, frame_rate=50, dedup=True)
    caplog.set_level(logging.INFO, logger="audiotok")
    corpus = UnitCorpus(str(store), str(units), tiny_config(), "train")
    assert (corpus.unit_rate, corpus.report["off_rate"]) == (None, [])
    assert rate_lines(caplog) == []  # no rate claimed
    assert f"train: {units}.recipe.json records run-length deduplicated units (--dedup): unit counts are not checked against the audio" in caplog.text
