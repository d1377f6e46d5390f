"""One reading of --device for every command: spellings, auto, missing GPUs, worker pools, DDP ranks."""

import pytest
import torch

from audiotok import device
from audiotok.errors import AudiotokError


def gpus(monkeypatch, count: int) -> list:
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(device, "_gpu_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    return chosen


@pytest.mark.parametrize("spelling", ["gpu", "cuda:", "cuda:x", "CPU", "mps0"])
def test_unknown_spellings_are_one_error_naming_the_choices(spelling):
    with pytest.raises(AudiotokError, match=f"unknown device '{spelling}'") as caught:
        device.resolve(spelling)
    assert caught.value.hint == "auto, cpu, cuda or cuda:N"


def test_auto_is_the_gpu_when_there_is_one(monkeypatch):
    gpus(monkeypatch, 0)
    assert device.resolve("auto") == "cpu"
    assert device.resolve("cpu") == "cpu"
    with pytest.raises(AudiotokError, match="--device cuda:1: no CUDA device is available"):
        device.resolve("cuda:1")
    gpus(monkeypatch, 2)
    assert device.resolve("auto") == "cuda"
    assert device.resolve("cuda:1") == "cuda:1"
    with pytest.raises(AudiotokError, match=r"--device cuda:2: only 2 CUDA device\(s\) are visible"):
        device.resolve("cuda:2")


def test_ddp_ranks_take_their_local_gpu(monkeypatch):
    chosen = gpus(monkeypatch, 4)
    assert device.for_rank("cuda", 3) == "cuda:3"
    assert device.for_rank("auto", 1) == "cuda:1"
    assert device.for_rank("cuda:2", 0) == "cuda:2"
    assert chosen == [3, 1, 2]
    gpus(monkeypatch, 0)
    assert device.for_rank("auto", 1) == "cpu"
