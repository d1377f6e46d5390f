import subprocess
import sys

import pytest

from tests.conftest import ROOT, assert_no_traceback

COMMANDS = [
    "resample",
    "trim",
    "normalize",
    "wav-to-duration",
    "info",
    "extract-feats",
    "fit-kmeans",
    "import-centroids",
    "quantize",
    "copy-feats",
    "feat-info",
    "tokenize",
    "stream",
    "report",
    "interleave",
    "deinterleave",
    "export",
    "s3-extract",
    "bsq-train",
    "bsq-encode",
    "bsq-decode",
    "bsq-eval",
    "tokenize-shards",
    "check-shard-tokens",
    "bicodec-extract",
    "taste-extract",
    "taste-train",
    "taste-encode",
]


def test_top_level_help_lists_every_command_without_heavy_imports(cli):
    result = cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.text
    # `audiotok --help` must stay instant: the whole entry point runs, and imports no numpy, soundfile, torch.
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "audiotok", "--help"], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert probe.returncode == 0, probe.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if line.startswith("import time:")}
    assert "audiotok.cli" in imported
    assert not imported & {"torch", "numpy", "soundfile", "transformers", "onnxruntime"}, sorted(imported)


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_help_has_usage_example_and_see_also(cli, name):
    result = cli(name, "--help")
    assert result.returncode == 0
    assert f"Usage: audiotok {name}" in result.text
    assert "Example:" in result.text and f"audiotok {name}" in result.text.split("Example:")[1]
    assert "See also:" in result.text
    assert result.stderr == ""  # no log line for --help


def test_bin_wrapper_runs_from_a_checkout(tmp_path):
    result = subprocess.run([str(ROOT / "bin" / "audiotok"), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("audiotok ")


def test_usage_errors_exit_2_with_one_line(cli, tmp_path):
    result = cli("resample", str(tmp_path), "out")  # --rate missing
    assert result.returncode == 2 and "Missing option '--rate'" in result.stderr
    result = cli("frobnicate")
    assert result.returncode == 2 and "No such command" in result.stderr
    result = cli("info", "ark,scp:a,b")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: cannot read from 'ark,scp:a,b': read either the ark or the scp"


def test_failures_exit_1_with_one_line_and_no_traceback(cli, tmp_path):
    result = cli("info", str(tmp_path / "nothing-here"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no such file or directory: {tmp_path / 'nothing-here'} "
        "(hint: inputs are data dirs, audio files, folders, scp:/ark: specifiers, tar:/jsonl: tables or - for stdin)"
    )
    assert_no_traceback(result.stderr)


def test_first_log_line_echoes_the_command_and_logs_go_to_stderr(cli, tmp_path):
    import numpy as np

    from tests.conftest import write_audio

    path = write_audio(tmp_path / "a.wav", np.zeros(160, np.float32) + 0.1, 16000)
    result = cli("wav-to-duration", path)
    assert result.text == "a 0.01\n"
    assert result.stderr.splitlines()[0].endswith(f"audiotok wav-to-duration {path}")
    assert result.stderr.splitlines()[-1].endswith("done 1/1")
    quiet = cli("-q", "wav-to-duration", path)
    assert quiet.stderr == "" and quiet.text == "a 0.01\n"


@pytest.mark.parametrize(
    "command",
    [
        ["tokenize", "BUNDLE", "a.wav"],
        ["s3-extract", "--model", "m.onnx", "a.wav"],
        ["bsq-encode", "--model", "m", "a.wav"],
        ["tokenize-shards", "--input-dir", "d", "--output-dir", "o", "--tokenizer", "t"],
    ],
)
def test_every_device_option_is_read_the_same_way(cli, command):
    """--device is one declaration: a wrong spelling is a usage error naming the choices, before anything loads."""
    result = cli(*command, "--device", "gpu")
    assert result.returncode == 2
    assert "unknown device 'gpu' (choose auto, cpu, cuda or cuda:N)" in result.stderr
    assert_no_traceback(result.stderr)
