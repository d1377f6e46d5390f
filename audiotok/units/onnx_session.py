"""onnxruntime sessions the same way everywhere: quiet, threads from OMP_NUM_THREADS, and
the CUDA provider on the GPU a device string names (`cuda:1` -> device_id 1), so worker
processes spread over GPUs run their ONNX models where their PyTorch models run."""

import os
from pathlib import Path

from audiotok.errors import AudiotokError


def providers_for(device: str) -> list:
    """Execution providers for `device`: CUDA (with its device_id) then CPU, or CPU alone.

    onnxruntime-gpu lists the CUDA provider even on machines without a GPU and prints
    errors before falling back, so it is asked for only when the caller chose a CUDA device.
    """
    import onnxruntime as ort

    if not device.startswith("cuda") or "CUDAExecutionProvider" not in ort.get_available_providers():
        return ["CPUExecutionProvider"]
    _, _, index = device.partition(":")
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]


def make_session(path: str | Path, device: str, threads: int | None = None):
    """An InferenceSession on `device`; a bad file is one clear error."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else int(os.environ.get("OMP_NUM_THREADS", "0"))
    options.log_severity_level = 3  # no provider warnings on stderr
    try:
        return ort.InferenceSession(str(path), options, providers=providers_for(device))
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for bad files
        raise AudiotokError(f"cannot load ONNX model {path}: {(str(err).strip().splitlines() or ['unreadable'])[0]}") from None
