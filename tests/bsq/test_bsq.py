"""Audio BSQ-ViT: bit layout, quantizer gradients, utterance windows, exact resume,
DDP parity, and the four commands end to end (tiny config, generated audio)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audiotok.bsq import config as bsq_config
from audiotok.bsq.model import AudioBSQModel
from audiotok.bsq.quantizer import BinarySphericalQuantizer, bits_to_ids, ids_to_bits
from audiotok.bsq.tokens import decode_utterance, encode_utterance
from tests.conftest import ROOT, write_audio


def tiny(**model) -> dict:
    config = bsq_config.load("tiny")
    config["model"].update(model)
    return config


def corpus(directory: Path, count: int = 6) -> Path:
    """Chirps and tones with a slow amplitude envelope, 1.2 s each."""
    rate, t = 16000, np.arange(int(1.2 * 16000)) / 16000
    rng = np.random.default_rng(0)
    for i in range(count):
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t + 40 * i * t * t) * (1 + np.sin(2 * np.pi * (2 + i) * t)) / 2
        write_audio(directory / f"utt{i}.wav", (wave + 0.003 * rng.normal(size=t.size)).astype(np.float32), rate)
    return directory


def metric_lines(output: Path, field: str) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[field]) for r in rows if field in r]


# ------------------------------------------------------------------ tokens and quantizer


def test_ids_and_bits_round_trip_over_the_whole_9_bit_range():
    ids = torch.arange(512)
    bits = ids_to_bits(ids, 9)
    assert bits.shape == (512, 9) and set(bits.unique().tolist()) == {0, 1}
    assert torch.equal(bits_to_ids(bits), ids)
    assert bits[5].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0]  # bit k is worth 2**k
    wide = torch.tensor([2**36 - 1, 2**35 + 3])
    assert torch.equal(bits_to_ids(ids_to_bits(wide, 36)), wide)


def test_token_ids_are_the_signs_of_the_latent_and_codes_lie_on_the_sphere():
    quantizer = BinarySphericalQuantizer(9)
    z = torch.randn(64, 9)
    quantized, _, info = quantizer(z)
    assert torch.equal(info["ids"], bits_to_ids(z > 0))
    assert int(info["ids"].min()) >= 0 and int(info["ids"].max()) < 512
    assert torch.allclose(quantized, torch.sign(z) / 3.0, atol=1e-6)
    assert torch.allclose(quantizer.codes_from_ids(info["ids"]), quantized, atol=1e-6)
    assert torch.allclose(quantized.norm(dim=-1), torch.ones(64), atol=1e-5)


def test_straight_through_gradient_is_the_gradient_of_the_normalised_latent():
    quantizer = BinarySphericalQuantizer(9, commit_weight=0.0, entropy_weight=0.0)
    z = torch.randn(16, 9, requires_grad=True)
    weights = torch.randn(16, 9)
    quantized, _, _ = quantizer(z)
    (quantized * weights).sum().backward()
    through = z.grad.clone()
    z.grad = None
    (torch.nn.functional.normalize(z, dim=-1) * weights).sum().backward()
    assert through.abs().sum() > 0
    assert torch.allclose(through, z.grad, atol=1e-6)


def test_entropy_terms_reward_spread_codes_and_confident_bits():
    quantizer = BinarySphericalQuantizer(4, group_size=2)
    same = quantizer.entropies(torch.nn.functional.normalize(torch.ones(32, 4), dim=-1))
    spread_z = torch.nn.functional.normalize(ids_to_bits(torch.arange(16).repeat(2), 4).float() * 2 - 1, dim=-1)
    spread = quantizer.entropies(spread_z)
    assert spread[1] > same[1] + 1.0  # codebook entropy: 2 groups x ln 4 when every code is used
    assert abs(spread[1].item() - 2 * np.log(4)) < 1e-3
    assert same[0] < 1e-3 and spread[0] < 1e-3  # corners of the cube: confident bits


def test_model_api_shapes_and_encode_equals_forward_ids():
    model = AudioBSQModel(tiny()["model"]).eval()
    mel = torch.rand(3, 64, 32) * 2 - 1
    reconstruction, quant_loss, info = model(mel)
    assert reconstruction.shape == mel.shape and quant_loss.ndim == 0
    ids = model.encode_ids(mel)
    assert ids.shape == (3, 8, 4) and ids.dtype == torch.int64
    assert torch.equal(ids, info["ids"])
    assert int(ids.max()) < 2**6
    assert model.decode_codes(ids).shape == mel.shape


def test_utterances_of_any_length_encode_and_decode_deterministically():
    torch.manual_seed(0)
    model = AudioBSQModel(tiny()["model"]).eval()
    mel = torch.rand(150, 32) * 2 - 1  # 150 frames: windows of 64, 64 and 22 (padded to 24)
    ids = encode_utterance(model, mel)
    assert ids.shape == (19, 4)
    assert torch.equal(ids, encode_utterance(model, mel.clone()))
    # windows are independent: the last one alone gives the same tokens
    tail = encode_utterance(model, mel[128:])
    assert torch.equal(ids[16:], tail)
    first = decode_utterance(model, ids, 150)
    assert first.shape == (150, 32)
    assert torch.equal(first, decode_utterance(model, ids.clone(), 150))


def test_gradient_checkpointing_gives_the_same_gradients_and_batch_norm_statistics():
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AudioBSQModel(tiny(grad_checkpointing=checkpointing)["model"]).train()
        mel = torch.rand(2, 64, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
        reconstruction, quant_loss, _ = model(mel)
        (((reconstruction - mel) ** 2).mean() + quant_loss).backward()
        results.append(
            {name: p.grad.clone() for name, p in model.named_parameters()} | {name: b.clone() for name, b in model.named_buffers() if "running" in name}
        )
    plain, checkpointed = results
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6), name


def test_unknown_config_key_names_the_key():
    with pytest.raises(Exception, match=r"unknown config key 'model\.widht'"):
        bsq_config.resolve({"preset": "tiny", "model": {"widht": 8}})
    shipped = {name: bsq_config.load(name)["model"] for name in ("small", "base", "large")}
    assert [(m["embed_dim"], m["width"], m["layers"], m["heads"]) for m in shipped.values()] == [(9, 512, 6, 8), (18, 768, 12, 12), (36, 1024, 24, 16)]


def test_common_voice_tables_and_rank_shares_of_a_global_batch(tmp_path):
    from audiotok.bsq.data import MelCorpus, list_utterances, training_batch
    from audiotok.bsq.mel import MelFrontend

    root = tmp_path / "cv"
    corpus(root / "clips", count=3)
    (root / "train.tsv").write_text("client_id\tpath\tsentence\n" + "".join(f"c{i}\tutt{i}.wav\tsentence {i}\n" for i in (2, 0, 1)))
    utterances = list_utterances(f"commonvoice:{root / 'train.tsv'}")
    assert [u.key for u in utterances] == ["utt0", "utt1", "utt2"]
    config = tiny()
    config["optim"]["batch_size"] = 4
    mels = MelCorpus(utterances, MelFrontend(n_mels=32))
    whole = training_batch(mels, config, step=3)
    shares = [training_batch(mels, config, step=3, rank=r, world=2) for r in (0, 1)]
    for part in range(3):  # inputs, targets, masks: rank r holds slots r, r + 2
        assert torch.equal(whole[part][0::2], shares[0][part]) and torch.equal(whole[part][1::2], shares[1][part])
    assert whole[0].shape == (4, 64, 32) and not torch.equal(whole[0], whole[1])  # SpecAugment on inputs only
    assert torch.equal(training_batch(mels, config, step=3)[1], whole[1])


# ------------------------------------------------------------------ training: resume and DDP


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    return corpus(tmp_path_factory.mktemp("bsq_audio"))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, audio_dir) -> Path:
    path = tmp_path_factory.mktemp("bsq_conf") / "tiny.yaml"
    path.write_text(f"preset: tiny\ndata:\n  train: {audio_dir}\n  valid_count: 2\noptim:\n  max_steps: 5\n  checkpoint_every: 2\n  valid_every: 5\n")
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, config_file) -> Path:
    from audiotok.bsq.train import train

    output = tmp_path_factory.mktemp("bsq_full")
    train(bsq_config.load(config_file), output, device="cpu")
    return output


def test_a_stopped_and_resumed_run_logs_the_uninterrupted_loss_curve(tmp_path, config_file, uninterrupted):
    from audiotok.bsq.train import train

    output = tmp_path / "run"
    train(bsq_config.load(config_file), output, device="cpu", stop_after=3)
    assert len(metric_lines(output, "loss")) == 3
    (output / "metrics.jsonl").write_text((output / "metrics.jsonl").read_text() + '{"step": 4, "loss": 9.0}\n')  # a killed run's stray line
    train(bsq_config.load(config_file), output, device="cpu")
    expected = metric_lines(uninterrupted, "loss")
    assert len(expected) == 5
    assert metric_lines(output, "loss") == expected
    assert metric_lines(output, "valid_mse") == metric_lines(uninterrupted, "valid_mse")
    assert (output / "loss_curve.png").stat().st_size > 0


def test_two_ddp_processes_train_the_same_parameters_as_one(tmp_path, config_file):
    """torchrun, gloo, 2 ranks x 2 utterances against 1 process x 4 utterances.

    In float64: in float32 the two runs' forwards differ by rounding (different
    matrix shapes), and a latent that close to zero takes the other sign bit,
    which is a different code rather than a small error. float64 makes such
    flips practically impossible, so any real difference (gradient averaging,
    sharding, the synchronised batch norm, the global codebook entropy) shows.
    """
    from safetensors.torch import load_file

    from audiotok.bsq.train import train

    ddp_config = tmp_path / "ddp.yaml"
    ddp_config.write_text(config_file.read_text() + "  dtype: float64\n")
    train(bsq_config.load(ddp_config), tmp_path / "one", device="cpu")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "audiotok",
        "bsq-train",
        str(ddp_config),
        "--output-dir",
        str(tmp_path / "ddp"),
        "--device",
        "cpu",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 process(es) on cpu" in proc.stderr
    single, ddp = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "ddp" / "model.safetensors"))
    assert single.keys() == ddp.keys()
    for name in single:
        assert torch.allclose(single[name], ddp[name], atol=1e-6, rtol=0), name
    losses = [loss for _, loss in metric_lines(tmp_path / "ddp", "loss")]
    assert len(losses) == 5
    assert np.allclose(losses, [loss for _, loss in metric_lines(tmp_path / "one", "loss")], atol=1e-9, rtol=0)


# ------------------------------------------------------------------ the commands


def test_cli_train_encode_decode_eval(cli, tmp_path, audio_dir, config_file):
    model = tmp_path / "model"
    result = cli("bsq-train", config_file, "--output-dir", model, "--max-steps", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert {"model.safetensors", "config.json", "metrics.jsonl", "loss_curve.png", "valid_keys.txt"} <= {p.name for p in model.iterdir()}

    text = cli("bsq-encode", "--model", model, audio_dir, "-o", tmp_path / "tokens.txt")
    assert text.returncode == 0, text.stderr
    lines = (tmp_path / "tokens.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == [f"utt{i}" for i in range(6)]
    frames = 1.2 * 16000 // 160 + 1  # 121 frames -> 16 time patches of 8 frames, 4 bands
    assert all(len(line.split()) == 1 + 16 * 4 for line in lines) and frames == 121
    assert all(0 <= int(v) < 64 for line in lines for v in line.split()[1:])
    jsonl = cli("bsq-encode", "--model", model, "--format", "jsonl", audio_dir / "utt0.wav")
    record = json.loads(jsonl.text)
    assert record["grid"] == [16, 4] and record["frames"] == 121 and record["tokens"] == [int(v) for v in lines[0].split()[1:]]

    (tmp_path / "one.jsonl").write_text(jsonl.text)
    decoded = cli("bsq-decode", "--model", model, tmp_path / "one.jsonl", "-o", tmp_path / "dec", "--griffin-lim", "--iterations", "4")
    assert decoded.returncode == 0, decoded.stderr
    mel = np.load(tmp_path / "dec" / "utt0.npy")
    assert mel.shape == (121, 32) and mel.min() >= -80 and mel.max() <= 0
    import soundfile as sf

    wave, rate = sf.read(tmp_path / "dec" / "utt0.wav")
    assert rate == 16000 and len(wave) == 120 * 160

    (tmp_path / "mixed.txt").write_text(lines[1] + "\nwide " + " ".join(["64"] * 64) + "\nragged 1 2 3\n")
    mixed = cli("bsq-decode", "--model", model, tmp_path / "mixed.txt", "-o", tmp_path / "mixed")
    assert mixed.returncode == 1 and "done 1/3" in mixed.stderr
    assert "wide: tokens must be within [0, 64) for a 6-bit model" in mixed.stderr and "ragged: 3 tokens is not a whole number" in mixed.stderr
    assert np.load(tmp_path / "mixed" / "utt1.npy").shape == (128, 32)  # text input: no frame count, whole patches

    scores = cli("bsq-eval", "--model", model, audio_dir, "--json", "--iterations", "4")
    assert scores.returncode == 0, scores.stderr
    summary = json.loads(scores.text)
    assert summary["utterances"] == 6 and summary["mse"] > 0 and np.isfinite(summary["si_snr"])
    assert summary["mse_over_baseline"] == pytest.approx(summary["mse"] / summary["baseline_mse"])
    table = cli("bsq-eval", "--model", model, "--keys", model / "valid_keys.txt", audio_dir, "--iterations", "0")
    assert table.returncode == 0 and "mel MSE" in table.text and table.text.rstrip().endswith("2")


def test_cli_errors_are_one_line(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: tiny\nmodel:\n  widht: 8\n")
    result = cli("bsq-train", bad, "--output-dir", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown config key 'model.widht'")
    assert "Traceback" not in result.stderr
    from audiotok.bsq import modeldir
    from audiotok.errors import AudiotokError

    with pytest.raises(AudiotokError, match="is not a BSQ model directory"):
        modeldir.load(tmp_path / "nowhere")
