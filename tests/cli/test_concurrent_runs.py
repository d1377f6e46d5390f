"""Two runs on one output: the second is refused in one line naming the first's PID, the first
finishes undisturbed, and nothing is written twice."""

import pytest

from tests.conftest import holds_lock, plain_and_gated_corpus, run_cli, start_cli, wait_for
from tests.plugins.gated import Gate

REFUSED = "is being written by another run (pid {pid}) (hint: wait for that run to end, or stop it; a run that died holds no lock)"


@pytest.fixture
def corpus(tmp_path):
    return plain_and_gated_corpus(tmp_path, 0.4)


@pytest.mark.parametrize(
    "name, args, output",
    [
        ("extract-feats ark", ["extract-feats", "--backend", "mfcc", "{data}", "ark,scp:{out}/m.ark,{out}/m.scp"], "{out}/m.ark"),
        ("resample directory", ["resample", "--rate", "8000", "{data}", "{out}/r"], "{out}/r"),
    ],
)
def test_the_second_run_is_refused_and_the_first_finishes(corpus, tmp_path, name, args, output):
    plain, gated, gate = corpus

    def command(data, out):
        return [a.format(data=data, out=out) for a in args]

    reference = run_cli(*command(plain, tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "out"
    target = output.format(out=out)
    first = start_cli(*command(gated, out))
    wait_for(lambda: holds_lock(target, first.pid), "the first run holding its output", first)
    second = run_cli(*command(plain, out))
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == f"error: {target} " + REFUSED.format(pid=first.pid)
    gate.touch()
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()
    for path in sorted((tmp_path / "reference").rglob("*")):
        if path.is_file() and path.suffix not in (".scp", ".json") and not path.name.startswith("."):
            assert (out / path.relative_to(tmp_path / "reference")).read_bytes() == path.read_bytes(), path
    assert not list(out.parent.glob(".*.lock"))  # released at exit


def test_two_tokenize_runs_on_one_text_table(corpus, tmp_path):
    plain, _, _ = corpus
    gate, units = Gate(tmp_path / "gate"), tmp_path / "units.txt"
    env = {"AUDIOTOK_TOKENIZERS": "tests.plugins.gated"}
    first = start_cli("tokenize", gate.spec, plain, "-o", units, "--batch-seconds", 0, env=env)
    wait_for(lambda: gate.calls() == 1, "the first run inside its tokenizer", first)
    second = run_cli("tokenize", gate.spec, plain, "-o", units, env=env)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == f"error: {units} " + REFUSED.format(pid=first.pid)
    gate.open_wide()
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()
    assert [line.split()[0] for line in units.read_text().splitlines()] == ["u0", "u1", "u2", "u3"]
