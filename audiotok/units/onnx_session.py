"""onnxruntime sessions the same way everywhere: quiet, threads from OMP_NUM_THREADS, and
the CUDA provider on the GPU a device string names (`cuda:1` -> device_id 1), so worker
processes spread over GPUs run their ONNX models where their PyTorch models run."""

import os
from pathlib import Path

from audiotok.device import onnx_providers
from audiotok.errors import AudiotokError


def make_session(path: str | Path, device: str, threads: int | None = None, spinning: bool = True):
    """An InferenceSession on `device`; a bad file is one clear error.

    spinning=False: idle worker threads sleep instead of spinning between runs, for callers
    that do work of their own between short runs (on few cores the spinning takes it from them).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else int(os.environ.get("OMP_NUM_THREADS", "0"))
    options.log_severity_level = 3  # no provider warnings on stderr
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=onnx_providers(device))
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for bad files
        raise AudiotokError(f"cannot load ONNX model {path}: {(str(err).strip().splitlines() or ['unreadable'])[0]}") from None
