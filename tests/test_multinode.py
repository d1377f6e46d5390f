"""Multi-node training: bsq-train and taste-train launched as two torchrun "nodes" on this
machine (one agent per node, static rendezvous at 127.0.0.1, gloo) train the weights and log
the losses of one process over the same global batches.

In float64 (optim.dtype), as the bsq DDP test: the two shares of a batch pad to other lengths
than the whole batch, so the same sums come out in another order; in float32 that rounding can
flip a sign bit (BSQ) or a nearest code (RVQ), which is another token, not a small error. In
float64 only the rounding itself is left, hence allclose with tight tolerances, not equality.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from tests.bsq.test_bsq import corpus
from tests.conftest import ROOT
from tests.taste.test_train import make_store


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_on_two_nodes(*args) -> str:
    """`torchrun --nnodes 2 ... -m audiotok ARGS` for node ranks 0 and 1 at once, as `srun` would
    start them on two machines; both must exit 0. Returns node 0's stderr (rank 0 logs)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    port = str(free_port())
    nodes = [
        subprocess.Popen(
            [torchrun, "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank), "--master_addr", "127.0.0.1", "--master_port", port]
            + ["-m", "audiotok", *map(str, args), "--device", "cpu"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for rank, (node, (_, stderr)) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f"node {rank} exited {node.returncode}: {stderr[-3000:]}"
    return outputs[0][1]


def metrics(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def assert_same_training(single: Path, nodes: Path, fields: tuple[str, ...]) -> None:
    from safetensors.torch import load_file

    one, two = load_file(str(single / "model.safetensors")), load_file(str(nodes / "model.safetensors"))
    assert one.keys() == two.keys()
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-6, rtol=0), name
    one_rows, two_rows = metrics(single), metrics(nodes)
    assert [sorted(r) for r in one_rows] == [sorted(r) for r in two_rows]  # same lines, same steps
    for field in fields:
        values = [(r["step"], r[field]) for r in one_rows if field in r]
        assert values, field
        assert np.allclose([v for _, v in values], [r[field] for r in two_rows if field in r], atol=1e-9, rtol=0), field


def test_bsq_train_on_two_nodes_trains_what_one_process_trains(tmp_path):
    from audiotok.bsq import config as bsq_config
    from audiotok.bsq.train import train

    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "preset": "tiny",
                "data": {"train": str(corpus(tmp_path / "audio")), "valid_count": 2},
                "optim": {"max_steps": 4, "checkpoint_every": 2, "valid_every": 4, "dtype": "float64"},
            }
        )
    )
    train(bsq_config.load(config), tmp_path / "one", device="cpu")
    log = train_on_two_nodes("bsq-train", config, "--output-dir", tmp_path / "nodes")
    assert "2 process(es) on cpu" in log
    assert_same_training(tmp_path / "one", tmp_path / "nodes", ("loss", "recon_mse", "quant_loss", "valid_mse"))


def test_taste_train_on_two_nodes_trains_what_one_process_trains(tmp_path):
    from audiotok.taste import config as taste_config
    from audiotok.taste.train import train

    store, units = make_store(tmp_path, count=6)
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                # The tiny preset has no dropout (a share's masks are not the whole batch's).
                # Codes unused for 2 steps restart (random picks that must be rank 0's everywhere).
                # 8 codes, not 16: codebooks start from ~18 vectors picked with repeats, and
                # two equal codes tie exactly, a tie that rounding (which differs with the batch
                # shapes) breaks one way or the other; with these seeds no nonzero code repeats.
                "preset": "tiny",
                "rvq": {"size": 8, "dead_code_threshold": 0.985},
                "data": {"train": {"features": str(store), "units": str(units)}},
                "optim": {"max_steps": 6, "dtype": "float64"},
                "eval_every": 3,
                "checkpoint_every": 3,
            }
        )
    )
    summary = train(taste_config.load(config), tmp_path / "one", device="cpu")
    assert summary["steps"] == 6
    log = train_on_two_nodes("taste-train", config, "--output-dir", tmp_path / "nodes")
    assert "in each of 2 processes" in log and "train accuracy" in log
    assert_same_training(tmp_path / "one", tmp_path / "nodes", ("loss", "ce", "quant_loss", "accuracy", "grad_norm", "train_loss", "train_accuracy"))
    assert json.loads((tmp_path / "nodes" / "summary.json").read_text())["steps"] == 6


def test_a_global_batch_that_does_not_split_over_the_processes_is_a_one_line_error(tmp_path):
    store, units = make_store(tmp_path, count=3)
    config = tmp_path / "odd.yaml"
    config.write_text(yaml.safe_dump({"preset": "tiny", "data": {"train": {"features": str(store), "units": str(units)}}, "optim": {"batch_size": 3}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    command = [
        torchrun,
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "audiotok",
        "taste-train",
        str(config),
        "--output-dir",
        str(tmp_path / "x"),
        "--device",
        "cpu",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1
    # A process says why in one line (torchrun may stop the other before it does, and then adds
    # its own report of the failed processes).
    assert "error: optim.batch_size 3 does not split over 2 processes (hint: make it a multiple of the process count)" in result.stderr.splitlines()
    assert not (tmp_path / "x" / "checkpoints").exists()
