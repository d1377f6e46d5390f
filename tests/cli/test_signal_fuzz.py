"""SIGINT and SIGTERM at seeded random moments of real runs: never a traceback, exit 130 or 143
(or, for a signal after the work was done, a finished output), and a rerun ends exactly where an
uninterrupted run ends.

The moments are drawn from the start of audiotok's own code (its handlers are in place: the
process's caught-signal mask says so) to the end of an uninterrupted run. Before that, the Python
interpreter itself is starting and handles SIGINT its own way. AUDIOTOK_FUZZ_SEED picks other moments.
"""

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import make_data_dir, run_cli, sine, start_cli, write_audio
from tests.pipeline.shards import make_mfcc_bundle

ROUNDS = 1  # moments for each command and signal (AUDIOTOK_FUZZ_SEED picks others; raise it to search longer)
COMMANDS = {
    "info": ["info", "{data}", "-o", "{out}/info.txt"],
    "resample": ["resample", "--rate", "16000", "{data}", "{out}/resampled"],
    "normalize": ["normalize", "--method", "rms", "{data}", "{out}/normalized"],
    "extract-feats": ["extract-feats", "--backend", "mfcc", "{data}", "ark,scp:{out}/mfcc.ark,{out}/mfcc.scp"],
    "tokenize": ["tokenize", "{bundle}", "{data}", "-o", "{out}/units.txt"],
}


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    items = {f"u{i}": write_audio(root / "in" / f"u{i}.wav", sine(200 + 40 * i, 22050, 1.0 + 0.25 * i), 22050) for i in range(6)}
    return {"data": make_data_dir(root / "data", items), "bundle": make_mfcc_bundle(root / "km"), "root": root}


def command(name: str, setting: dict, out: Path) -> list[str]:
    return [part.format(data=setting["data"], bundle=setting["bundle"], out=out) for part in COMMANDS[name]]


def outputs(out: Path) -> dict[str, bytes]:
    """What a run wrote, with the output directory's own path taken out of path tables."""
    found = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            found[str(path.relative_to(out))] = path.read_bytes().replace(str(out).encode(), b"OUT")
    return found


def handlers_installed(pid: int) -> bool:
    """audiotok's SIGTERM handler is in place (bit 15 of the caught-signal mask), or the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):  # ESRCH: reaped between the open and the read
        return True
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_signals_at_random_moments(setting, tmp_path, name):
    reference = tmp_path / "reference"
    started = time.monotonic()
    whole = run_cli(*command(name, setting, reference))
    length = time.monotonic() - started
    assert whole.returncode == 0, whole.stderr
    expected = outputs(reference)
    rng = random.Random(f"{os.environ.get('AUDIOTOK_FUZZ_SEED', '17')}-{name}")
    runs = []
    for number in range(ROUNDS):
        for signum in (signal.SIGINT, signal.SIGTERM):
            out = tmp_path / f"run{number}-{signum.name}"
            moment = rng.uniform(0, length)
            proc = start_cli(*command(name, setting, out))
            while not handlers_installed(proc.pid):
                time.sleep(0.001)
            time.sleep(moment)
            proc.send_signal(signum)
            _, stderr = proc.communicate(timeout=300)
            stderr = stderr.decode()
            code = 128 + signum
            where = f"{name} {signum.name} at {moment:.3f} s of {length:.2f} s: exit {proc.returncode}\n{stderr}"
            assert "Traceback" not in stderr and "Exception ignored" not in stderr, where
            # Exit 128+N after a clean stop; 0 or death by the signal only once the output was finished.
            assert proc.returncode in (code, 0, -signum), where
            if proc.returncode == code:
                assert stderr.rstrip().endswith("error: interrupted" if signum == signal.SIGINT else "error: terminated"), where
                rerun = run_cli(*command(name, setting, out))
                assert rerun.returncode == 0, rerun.stderr
            assert outputs(out) == expected, where
            runs.append(proc.returncode)
    print(f"{name}: {len(runs)} signalled runs, exits {sorted(runs)}")
