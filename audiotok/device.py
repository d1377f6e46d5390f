"""Where models run: one reading of `--device` (cpu, cuda, cuda:N, auto) for every command,
for worker processes spread over GPUs, for DDP ranks, and for onnxruntime sessions."""

import glob
import re

from audiotok.errors import AudiotokError

CHOICES = "auto, cpu, cuda or cuda:N"
HELP = f"Where models run: {CHOICES} (auto: the GPU when there is one)."


# Device files a GPU driver makes (NVIDIA, WSL2's GPU bridge, AMD ROCm). Without any of them no
# CUDA device can be visible, and importing torch (seconds) to learn that is skipped.
DRIVER_FILES = ("/dev/nvidia[0-9]*", "/dev/dxg", "/dev/kfd")


def _gpu_driver_present() -> bool:
    return any(glob.glob(pattern) for pattern in DRIVER_FILES)


def _cuda_count() -> int:
    if not _gpu_driver_present():
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check(device: str) -> str:
    """The spelling alone, without importing torch: for a quick usage error."""
    if device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", device):
        raise AudiotokError(f"unknown device {device!r}", CHOICES)
    return device


def resolve(device: str) -> str:
    """`auto` -> `cuda` when a GPU is visible, else `cpu`; a CUDA device that is not there is one error."""
    check(device)
    if device == "cpu":
        return "cpu"
    count = _cuda_count()
    if device == "auto":
        return "cuda" if count else "cpu"
    if not count:
        raise AudiotokError(f"--device {device}: no CUDA device is available", "use --device cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise AudiotokError(f"--device {device}: only {count} CUDA device(s) are visible", f"cuda:0 .. cuda:{count - 1}")
    return device


def for_worker(requested: str, index: int, procs_per_gpu: int) -> str:
    """Worker `index` of a pool: GPU (index // procs_per_gpu) % count when there are GPUs, else the CPU.

    The worker's default CUDA device is set too, so a plain "cuda" inside a model means this GPU.
    """
    check(requested)
    if requested == "cpu":
        return "cpu"
    count = _cuda_count()
    if count == 0:
        if requested.startswith("cuda"):
            raise AudiotokError(f"--device {requested}: no CUDA device is available", "use --device cpu or auto")
        return "cpu"
    gpu = (index // procs_per_gpu) % count
    import torch

    torch.cuda.set_device(gpu)
    return f"cuda:{gpu}"


def for_rank(device: str, local_rank: int) -> str:
    """A DDP rank's device: `cuda` (or auto with GPUs) -> cuda:LOCAL_RANK; `cuda:N` is taken as given."""
    resolved = resolve(device)
    if resolved == "cuda":
        import torch

        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    if resolved.startswith("cuda:"):
        import torch

        torch.cuda.set_device(int(resolved.partition(":")[2]))
    return resolved


def onnx_providers(device: str) -> list:
    """onnxruntime execution providers for a resolved device: CUDA (with its device_id) then CPU, or CPU.

    onnxruntime-gpu lists the CUDA provider even on machines without a GPU and prints errors
    before falling back, so it is asked for only when the device is a CUDA one.
    """
    import onnxruntime as ort

    if not device.startswith("cuda") or "CUDAExecutionProvider" not in ort.get_available_providers():
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}), "CPUExecutionProvider"]
