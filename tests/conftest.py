"""Shared fixtures: signals written in any format, and running the real CLI in a subprocess."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    x = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x * (c + 1) / channels for c in range(channels)], axis=1)


def write_audio(path, samples, rate, subtype=None, format=None) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype=subtype, format=format)
    return str(path)


def tone_burst(rate=16000, lead=0.5, tone=1.0, tail=0.7, freq=440.0, noise=1e-4, seed=0) -> np.ndarray:
    """Quiet noise, a tone, quiet noise: a recording with known silence around its 'speech'."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(0, noise, int(lead * rate)), sine(freq, rate, tone, 0.5), rng.normal(0, noise, int(tail * rate))]
    return np.concatenate(parts).astype(np.float32)


def make_data_dir(directory: Path, items: dict[str, str], **extra_files: dict[str, str]) -> Path:
    """A Kaldi data dir: wav.scp from {key: value} (sorted), plus other key->value files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(items.items())))
    for name, table in extra_files.items():
        (directory / name).write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())))
    return directory


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode()


def run_cli(*args, input: bytes | None = None, cwd=None, env=None) -> Result:
    """Run `python -m audiotok ARGS` as a user would, capturing exit code, stdout bytes and stderr."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("AUDIOTOK_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "audiotok", *map(str, args)], input=input, capture_output=True, cwd=cwd, env=environment, timeout=300)
    return Result(proc.returncode, proc.stdout, proc.stderr.decode())


@pytest.fixture
def cli():
    return run_cli


def start_cli(*args, env=None, new_session=False, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """`python -m audiotok ARGS` in the background; stderr is a pipe (read it with communicate() or lines_until())."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("AUDIOTOK_DEBUG", None)
    command = [sys.executable, "-m", "audiotok", *map(str, args)]
    return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=environment, start_new_session=new_session)


def wait_for(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = 240.0) -> None:
    """Poll until condition() is true: an explicit event (a file, a line, a count), never a guess at how
    long something takes. Fails at once if `proc` ends first, and after a generous deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}: {proc.stderr.read().decode() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.02)


def lines_until(proc: subprocess.Popen, text: str) -> list[str]:
    """stderr lines of a running process, read up to the first that holds `text`."""
    lines = []
    for raw in proc.stderr:
        lines.append(raw.decode())
        if text in lines[-1]:
            return lines
    raise AssertionError(f"the process ended without printing {text!r}: {''.join(lines)}")


def gated_item(path: str, gate: Path) -> str:
    """A wav.scp command that reads `path` once the file `gate` exists: a run that reaches this item
    waits there until the test creates the file (`gate.touch()`), however slow or fast the machine.
    The wait also ends when the run that started it is gone, so a failed test leaves no process behind."""
    return f"while [ ! -e {gate} ] && kill -0 $PPID 2> /dev/null; do sleep 0.01; done; cat {path} |"


def plain_and_gated_corpus(tmp_path: Path, seconds: float) -> tuple[Path, Path, Path]:
    """Data dirs of u0..u3 (16 kHz tones): `plain`, and `gated`, where u2 waits until the file `gate` exists."""
    paths = {f"u{i}": write_audio(tmp_path / "in" / f"u{i}.wav", sine(300 + 60 * i, 16000, seconds), 16000) for i in range(4)}
    gate = tmp_path / "u2.gate"
    plain = make_data_dir(tmp_path / "plain", paths)
    gated = make_data_dir(tmp_path / "gated", {**paths, "u2": gated_item(paths["u2"], gate)})
    return plain, gated, gate


def holds_lock(output, pid: int) -> bool:
    """True once process `pid` holds the output lock of `output` (audiotok.io.locks)."""
    from audiotok.io.locks import lock_path

    try:
        return lock_path(output).read_text().strip() == str(pid)
    except FileNotFoundError:
        return False


@pytest.fixture
def speech_dir() -> Path:
    """The shared real recordings (AUDIOTOK_TEST_AUDIO, set by .ci/run)."""
    value = os.environ.get("AUDIOTOK_TEST_AUDIO")
    if not value:
        pytest.skip("AUDIOTOK_TEST_AUDIO is not set (point it at ../shared/data/speech)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"AUDIOTOK_TEST_AUDIO={value} is not a directory")
    return path


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def _save_tiny(directory: Path, kind: str, seed: int = 0) -> Path:
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    common = dict(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    if kind == "hubert":  # group-norm front end, post-LN encoder: like HuBERT-base
        HubertModel(HubertConfig(feat_extract_norm="group", do_stable_layer_norm=False, **common)).save_pretrained(directory)
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=False).save_pretrained(directory)
    else:  # layer-norm front end, pre-LN encoder: like XLS-R / wav2vec2-large
        Wav2Vec2Model(Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, **common)).save_pretrained(directory)
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("tiny-hubert"), "hubert")


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("tiny-w2v"), "wav2vec2")


@pytest.fixture(scope="session")
def whisper_dir() -> Path:
    value = os.environ.get("AUDIOTOK_TEST_WHISPER")
    if not value or not Path(value, "config.json").is_file():
        pytest.skip("AUDIOTOK_TEST_WHISPER is not set (point it at ../shared/models/whisper-tiny.en)")
    return Path(value)
