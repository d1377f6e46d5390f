"""A killed run resumes only into an output made the same way: a model replaced at the same path,
or other options, is refused in one line that says how to start over, and --force starts over."""

import json
import signal

import pytest

from audiotok.errors import AudiotokError
from audiotok.io import locks
from audiotok.io.jsonl_writer import ResumableJsonl
from audiotok.io.outputs import make_signature
from tests.conftest import _save_tiny, plain_and_gated_corpus, run_cli, start_cli, wait_for


@pytest.fixture
def corpus(tmp_path):
    return plain_and_gated_corpus(tmp_path, 0.5)


def killed_half_way(args, progress, proc_what):
    """Start a run, wait until `progress()` says two items are finished (the third waits on its FIFO), kill -9 it."""
    proc = start_cli(*args)
    wait_for(progress, proc_what, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_extract_feats_with_the_model_replaced_at_the_same_path(corpus, tmp_path):
    plain, gated, _ = corpus
    model, ark = _save_tiny(tmp_path / "model", "hubert", seed=0), tmp_path / "f.ark"
    index = tmp_path / "f.ark.partial.idx"
    killed_half_way(
        ["extract-feats", "--model", model, "--layer", 2, gated, f"ark:{ark}"],
        lambda: index.exists() and index.read_text().count("\n") == 2,
        "two entries in the partial archive",
    )
    _save_tiny(model, "hubert", seed=1)  # other weights, same directory
    resumed = run_cli("extract-feats", "--model", model, "--layer", 2, plain, f"ark:{ark}")
    assert resumed.returncode == 1
    assert last_line(resumed) == (
        f"error: {ark} holds results made differently (changed: inputs, recipe); going on would mix two runs' results in one output "
        "(hint: run the first command again to finish it, or --force starts over)"
    )
    again = run_cli("extract-feats", "--model", model, "--layer", 2, plain, f"ark:{ark}", "--force")
    assert again.returncode == 0 and again.stderr.endswith("done 4/4\n"), again.stderr  # none taken from the killed run


def test_a_directory_output_resumed_with_other_options(corpus, tmp_path):
    plain, gated, _ = corpus
    out = tmp_path / "r"
    killed_half_way(
        ["resample", "--rate", 8000, gated, out],
        lambda: len(list((out / "audio").glob("*.flac"))) == 2 if (out / "audio").is_dir() else False,
        "two finished files",
    )
    other = run_cli("resample", "--rate", 12000, gated, out)
    assert other.returncode == 1
    assert last_line(other).startswith(f"error: {out} holds results made differently (changed: rate);")
    assert len(list((out / "audio").glob("*.flac"))) == 2  # the finished files are kept


def test_a_jsonl_store_resumed_by_another_model(tmp_path):
    output = str(tmp_path / "tokens.jsonl")
    first = ResumableJsonl(output, make_signature("bicodec-extract", model="/m", model_content="aaaa"), force=False).open()
    first.write("u0", tokens=[1, 2])
    first.close(completed=False)  # as a killed run leaves it
    refit = make_signature("bicodec-extract", model="/m", model_content="bbbb")
    with pytest.raises(AudiotokError, match=r"holds results made differently \(changed: model_content\)"):
        ResumableJsonl(output, refit, force=False).open()
    fresh = ResumableJsonl(output, refit, force=True).open()
    assert fresh.done_keys == set()
    fresh.write("u1", tokens=[3])
    fresh.close(completed=True)
    assert [json.loads(line)["key"] for line in open(output)] == ["u1"]
    locks.release_all()
