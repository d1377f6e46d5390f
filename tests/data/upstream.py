"""Regenerating a golden file from its upstream package, as CI does (tests/data/README.md).

`make venv` installs requirements-reference.txt (exact pins, no dependencies) into
.venv/reference, off the venv's path. A golden maker runs in a subprocess with that
directory on PYTHONPATH, so the upstream modules (and the stand-ins a maker installs for
modules it does not need) never enter the test session itself.
"""

import os
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(sys.prefix) / "reference"
PINS = ROOT / "requirements-reference.txt"


def pinned_version(package: str) -> str:
    for line in PINS.read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name == package:
            return version
    raise KeyError(f"{package} is not pinned in {PINS}")


def regenerate(maker: Path, output: Path, package: str) -> None:
    """Run `maker OUTPUT` with the pinned upstream `package` importable; skip when it is not installed."""
    wanted = pinned_version(package)
    found = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in distributions(path=[str(REFERENCE)])}
    if package not in found:
        pytest.skip(f"{package} {wanted} is not installed in {REFERENCE} (make venv installs requirements-reference.txt there)")
    assert found[package] == wanted, f"{REFERENCE} holds {package} {found[package]}, requirements-reference.txt pins {wanted}: run make venv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REFERENCE), str(ROOT)]), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([sys.executable, str(maker), str(output)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, f"{maker.name} failed:\n{run.stderr[-3000:]}"
