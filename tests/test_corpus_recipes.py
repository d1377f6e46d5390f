"""The corpus recipes (librispeech, commonvoice, tarshards) on small corpora built from the
shared real recordings, run in copies of the recipe directories."""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import ROOT

AUDIO = os.environ.get("AUDIOTOK_TEST_AUDIO")
needs_audio = pytest.mark.skipif(not AUDIO, reason="set AUDIOTOK_TEST_AUDIO to the shared speech recordings (/work/shared/data/speech)")

# Short LibriSpeech utterances (2.5-7 s) keep the runs quick.
DEV = ["1688-142285-0002", "1688-142285-0003", "2033-164914-0001", "533-1066-0000"]
TEST = ["2414-128291-0000", "2414-128291-0003"]
OPTS = ["--k", "8", "--feat-conf", "conf/feats_mfcc.conf"]


def copy_recipe(name: str, dest: Path) -> Path:
    """The recipe in dest, its links (utils, steps, path.sh's bin) pointing into this checkout."""
    recipe = dest / name
    shutil.copytree(ROOT / "recipes" / name, recipe, symlinks=True, ignore=shutil.ignore_patterns("data", "exp", "dump"))
    for link in ("utils", "steps"):
        (recipe / link).unlink()
        (recipe / link).symlink_to(ROOT / "recipes" / link)
    (recipe / "path.sh").write_text((recipe / "path.sh").read_text().replace('"$recipe_root/../../bin', f'"{ROOT}/bin'))
    return recipe


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUDIOTOK_PYTHON": sys.executable}
    result = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result


def keys(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines()]


def snapshot(recipe: Path) -> dict[str, int]:
    return {str(p.relative_to(recipe)): p.stat().st_mtime_ns for d in ("data", "dump", "exp") for p in (recipe / d).rglob("*")}


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory) -> Path:
    """A LibriSpeech layout: SET/SPK/CHAP/SPK-CHAP-UTT.flac and SPK-CHAP.trans.txt."""
    root = tmp_path_factory.mktemp("LibriSpeech")
    for subset, utts in (("dev-clean", DEV), ("test-clean", TEST)):
        for utt in utts:
            spk, chap, _ = utt.split("-")
            chapter = root / subset / spk / chap
            chapter.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(AUDIO) / f"{utt}.flac", chapter)
            with open(chapter / f"{spk}-{chap}.trans.txt", "a") as trans:
                trans.write(f"{utt} PLACEHOLDER TRANSCRIPT OF {utt}\n")
    return root


@needs_audio
def test_librispeech_stages_rerun_and_nj(tmp_path, librispeech):
    recipe = copy_recipe("librispeech", tmp_path / "nj2")
    first = run(recipe, "--corpus", str(librispeech), "--nj", "2", "--stop-stage", "2", *OPTS)
    assert "Stage 2: features" in first.stderr and "Stage 3" not in first.stderr
    assert not (recipe / "exp").exists()
    data = recipe / "data" / "dev-clean"
    assert keys(data / "wav.scp") == sorted(DEV) == keys(data / "utt2dur") == keys(data / "text")
    assert (data / "spk2utt").read_text().splitlines()[0] == "1688-142285 1688-142285-0002 1688-142285-0003"
    assert len(list((recipe / "dump" / "mfcc" / "dev-clean").glob("feats.[12].ark"))) == 2  # two jobs

    rest = run(recipe, "--stage", "3", "--nj", "2", *OPTS)  # no --corpus: stage 0 does not run
    assert "Stage 0" not in rest.stderr and "Stage 5: reports" in rest.stderr
    km = recipe / "exp" / "km8_mfcc"
    for subset, utts in (("dev-clean", DEV), ("test-clean", TEST)):
        assert keys(km / subset / "units.txt") == sorted(utts)
        assert "codebook_usage" in (km / subset / "report.txt").read_text()
    assert (km / "run_config.txt").exists() and "fit-kmeans" in (km / "command.txt").read_text()

    # A rerun of every stage skips every step and touches no file.
    before = snapshot(recipe)
    again = run(recipe, "--corpus", str(librispeech), "--nj", "2", *OPTS)
    assert again.stderr.count("already done") == 9  # 2 data dirs, 2 dumps, 1 bundle, 2 unit tables, 2 reports
    assert snapshot(recipe) == before

    # One job gives the same bundle and units as two.
    one = copy_recipe("librispeech", tmp_path / "nj1")
    run(one, "--corpus", str(librispeech), "--nj", "1", *OPTS)
    assert (one / "exp/km8_mfcc/centroids.npy").read_bytes() == (km / "centroids.npy").read_bytes()
    for subset in ("dev-clean", "test-clean"):
        assert (one / "exp/km8_mfcc" / subset / "units.txt").read_bytes() == (km / subset / "units.txt").read_bytes()


@needs_audio
def test_commonvoice_data_prep_and_features(tmp_path):
    corpus = tmp_path / "cv-corpus"
    (corpus / "clips").mkdir(parents=True)
    clips = {"common_voice_en_651325.mp3": "aa11", "LJ002-0020.wav": "bb22", "LJ002-0035.wav": "bb22", "spk1_snt1.wav": "cc33"}
    for clip in clips:
        shutil.copy(Path(AUDIO) / clip, corpus / "clips" / clip)
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent\n"
    rows = lambda names: "".join(f"{clips[n]}\t{n}\tsentence of {n}\t2\t0\t\t\t\n" for n in names)  # noqa: E731
    (corpus / "train.tsv").write_text(header + rows(["common_voice_en_651325.mp3", "LJ002-0020.wav", "LJ002-0035.wav"]))
    (corpus / "dev.tsv").write_text(header + rows(["spk1_snt1.wav"]))
    recipe = copy_recipe("commonvoice", tmp_path)
    run(recipe, "--corpus", str(corpus), "--sets", "train dev", "--nj", "2", "--stop-stage", "2")
    train = recipe / "data" / "train"
    assert keys(train / "wav.scp") == ["aa11-common_voice_en_651325", "bb22-LJ002-0020", "bb22-LJ002-0035"]
    assert (train / "text").read_text().splitlines()[1] == "bb22-LJ002-0020 sentence of LJ002-0020.wav"
    assert (train / "spk2utt").read_text() == "aa11 aa11-common_voice_en_651325\nbb22 bb22-LJ002-0020 bb22-LJ002-0035\n"
    assert keys(recipe / "dump/mfcc/train/feats.scp") == keys(train / "wav.scp")
    assert keys(recipe / "dump/mfcc/dev/feats.scp") == ["cc33-spk1_snt1"]  # one utterance: one job


@needs_audio
def test_tarshards_to_units(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    names = ["spk1_snt1", "spk1_snt2", "spk1_snt3", "spk1_snt4", "LJ002-0020"]
    for shard, part in enumerate((names[:3], names[3:])):
        with tarfile.open(shards / f"shard-{shard:06d}.tar", "w") as tar:
            for i, name in enumerate(part):
                flac = io.BytesIO()
                samples, rate = sf.read(Path(AUDIO) / f"{name}.wav")
                sf.write(flac, samples, rate, format="FLAC")
                key = f"s{shard}_{i:03d}"
                for member, payload in ((f"{key}.flac", flac.getvalue()), (f"{key}.json", json.dumps({"text": name}).encode())):
                    info = tarfile.TarInfo(member)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    recipe = copy_recipe("tarshards", tmp_path)
    result = run(recipe, "--corpus", str(shards), "--nj", "2", *OPTS)
    assert "Stage 5: reports" in result.stderr
    expected = ["s0_000", "s0_001", "s0_002", "s1_000", "s1_001"]
    assert keys(recipe / "data/train/wav.scp") == expected == keys(recipe / "data/train/utt2dur")
    assert keys(recipe / "exp/km8_mfcc/train/units.txt") == expected

    # Stage 6: the shards straight to JSONL in a 2-task array, the same units as stage 4's
    # (stage 0 wrote the audio at 16 kHz as FLAC; the shards hold the original rates).
    tokens = recipe / "exp/km8_mfcc/shard_tokens"
    assert sorted(p.name for p in tokens.glob("*.jsonl")) == ["shards_1of2_0.jsonl", "shards_2of2_0.jsonl"]
    assert sorted(p.name for p in (tokens / "log").glob("*.log")) == ["tokenize.1.log", "tokenize.2.log"]
    # Stage 7: every sample exactly once, merged in shard then key order.
    assert "5 samples: 5 tokenized, 0 skipped, 0 missing, 0 duplicated" in result.stdout
    lines = [json.loads(line) for line in (recipe / "exp/km8_mfcc/shard_tokens.jsonl").read_text().splitlines()]
    assert [line["key"] for line in lines] == expected
    assert sorted(line["key"] for line in lines) == expected
    assert {line["key"]: line["text"] for line in lines}["s1_001"] == "LJ002-0020"
    stage4 = {line.split()[0]: len(line.split()) - 1 for line in (recipe / "exp/km8_mfcc/train/units.txt").read_text().splitlines()}
    assert {line["key"]: len(line["units"]) for line in lines} == stage4
