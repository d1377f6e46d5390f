"""Shell scripts pass shellcheck; the mini recipe runs end to end on its own corpus."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def shell_scripts():
    scripts = [ROOT / "bin" / "audiotok", ROOT / ".ci" / "run"]
    scripts += sorted(p for p in (ROOT / "recipes").rglob("*.sh") if not p.is_symlink() and "utils" not in p.relative_to(ROOT / "recipes").parts[1:])
    return scripts


def test_every_shell_script_passes_shellcheck():
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not os.path.exists(shellcheck):
        pytest.skip("shellcheck is not installed (it comes with requirements.txt)")
    result = subprocess.run([shellcheck, "-x", *map(str, shell_scripts())], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_parse_options_grammar(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(f"""#!/usr/bin/env bash
set -euo pipefail
stage=0; stop_stage=100; nj_max=1
help_message="usage: s.sh"
. {ROOT}/recipes/utils/parse_options.sh
echo "$stage $stop_stage $nj_max $*"
""")
    run = lambda *a: subprocess.run(["bash", str(script), *a], capture_output=True, text=True)  # noqa: E731
    assert run("--stage", "2", "--stop-stage=3", "--nj_max", "4", "pos").stdout == "2 3 4 pos\n"
    assert run("--help").stdout == "usage: s.sh\n"
    bad = run("--nope", "1")
    assert bad.returncode == 2 and "unknown option --nope" in bad.stderr


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make system-deps)")
def test_mini_recipe_end_to_end(tmp_path):
    recipe = tmp_path / "mini"
    shutil.copytree(ROOT / "recipes" / "mini", recipe, symlinks=True, ignore=shutil.ignore_patterns("data", "exp", "dump"))
    # The copy's relative links (utils, path.sh's ../../bin) must point into this checkout.
    (recipe / "utils").unlink()
    (recipe / "utils").symlink_to(ROOT / "recipes" / "utils")
    (recipe / "path.sh").write_text((recipe / "path.sh").read_text().replace('"$recipe_root/../../bin', f'"{ROOT}/bin'))
    env = {**os.environ, "AUDIOTOK_PYTHON": sys.executable}
    result = subprocess.run(["./run.sh"], cwd=recipe, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "Stage 5: units" in result.stderr
    clean = recipe / "data" / "mini_clean"
    keys = [line.split()[0] for line in (clean / "wav.scp").read_text().splitlines()]
    assert len(keys) == 12 and keys == sorted(keys)
    assert [line.split()[0] for line in (clean / "utt2dur").read_text().splitlines()] == keys
    assert (clean / "text").read_text().splitlines()[0].startswith("spk0-utt00 the quick brown fox")
    rerun = subprocess.run(["./run.sh", "--stage", "1"], cwd=recipe, capture_output=True, text=True, env=env)
    assert rerun.returncode == 0 and rerun.stderr.count("already done") == 9  # every command of stages 1-5
    report = (recipe / "exp" / "km50_mfcc" / "report.txt").read_text()
    assert "codebook_usage" in report and len((recipe / "exp" / "km50_mfcc" / "units.txt").read_text().splitlines()) == 12
