"""The official CosyVoice S3 tokenizer ONNX files through onnxruntime.

Inputs are taken by position from the session's metadata, as every known
caller does (MODELS.md): input 0 = log-mel float32 [B, 128, T], input 1 =
lengths (int32 in the official files) [B]; output 0 = tokens, rank 2 or 3.
Nothing says the official graphs mask padding, so a batch holds windows of
one length only: no padding, tokens equal to one-at-a-time runs.
"""

from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError
from audiotok.units.onnx_session import make_session
from audiotok.units.s3 import token_count

# SHA-256 of the official files [S3 s3tokenizer/__init__.py]: which model a path really holds.
OFFICIAL = {
    "23b5a723ed9143aebfd9ffda14ac4c21231f31c35ef837b6a13bb9e5488abb1e": ("v1", 50),
    "56285ddd4a83e883ee0cb9f8d69c1089b53a94b1f78ff7e4a0224a27eb4cb486": ("v1", 25),
    "d43342aa12163a80bf07bffb94c9de2e120a8df2f9917cd2f642e7f4219c6f71": ("v2", 25),
}
PROBE_FRAMES = 100  # 1 s of mel: 25 tokens at 25 Hz, 50 at 50 Hz


class S3Onnx:
    padding_safe = False

    def __init__(self, path: str | Path, device: str = "cpu", version: str | None = None, rate: int | None = None, threads: int | None = None):
        from audiotok.io.digests import file_digest

        path = Path(path)
        if not path.is_file():
            raise AudiotokError(f"no such ONNX model: {path}", "give the path of an S3 tokenizer .onnx file (audiotok model list shows the presets)")
        self.session = make_session(path, device, threads)
        inputs = self.session.get_inputs()
        mel_ok = len(inputs) == 2 and inputs[0].type == "tensor(float)" and len(inputs[0].shape) == 3 and inputs[0].shape[1] in (128, "128")
        if not mel_ok or "int" not in inputs[1].type:
            found = ", ".join(f"{i.type} {i.shape}" for i in inputs)
            raise AudiotokError(f"{path} does not take S3 tokenizer inputs (found {found})", "expected log-mel float [B, 128, T] and lengths int [B]")
        self.feeds = inputs[0].name, inputs[1].name
        self.length_type = np.int64 if inputs[1].type == "tensor(int64)" else np.int32
        self.output = self.session.get_outputs()[0].name
        self.digest = file_digest(path)
        self.version, self.rate = OFFICIAL.get(self.digest, (version, None))
        if version and self.version and version != self.version:
            raise AudiotokError(f"--version {version}, but {path} is the official S3 {self.version} tokenizer", "drop --version: the file says which it is")
        probed = self._probe_rate()
        if rate and rate != probed:
            raise AudiotokError(f"--rate {rate}, but {path} gives {probed} tokens a second", "drop --rate: the model says its own")
        self.rate = probed
        self.frames_per_token = 100 // probed

    def _probe_rate(self) -> int:
        # Both v1 files share a name; only what the model does tells 25 Hz from 50 Hz.
        noise = np.random.default_rng(0).standard_normal((1, 128, PROBE_FRAMES)).astype(np.float32)
        tokens = self._run(noise, PROBE_FRAMES).size
        for rate in (25, 50):
            if tokens == token_count(PROBE_FRAMES, 100 // rate):
                return rate
        raise AudiotokError(f"the ONNX model gives {tokens} tokens for 1 s: not an S3 tokenizer (25 or 50 a second)")

    def _run(self, feats: np.ndarray, frames: int) -> np.ndarray:
        lengths = np.full(len(feats), frames, dtype=self.length_type)
        out = self.session.run([self.output], {self.feeds[0]: feats, self.feeds[1]: lengths})[0]
        return out.reshape(len(feats), -1)

    def __call__(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """Token arrays for mels [T, 128] (time-major) of one length."""
        frames = len(mels[0])
        if any(len(m) != frames for m in mels):
            raise ValueError("S3 ONNX batches hold mels of one length only")
        feats = np.ascontiguousarray(np.stack(mels).transpose(0, 2, 1), dtype=np.float32)
        return [row[: token_count(frames, self.frames_per_token)].astype(np.int64) for row in self._run(feats, frames)]


def export_onnx(model, path: str | Path, frames: tuple[int, ...] = (400, 300)) -> Path:
    """An S3 PyTorch model (units.s3.build_model) as an ONNX file laid out like the official ones
    (feats [B, 128, T] and feats_len [B] in, tokens out; batch and length dynamic), traced on a
    batch of random log-mel of these lengths. For tests and benches: models with chosen weights."""
    import warnings

    import torch

    feats = torch.randn(len(frames), 128, max(frames))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (feats, torch.tensor(frames, dtype=torch.int32)),
            str(path),
            input_names=["feats", "feats_len"],
            output_names=["tokens"],
            dynamic_axes={"feats": {0: "batch", 2: "frames"}, "feats_len": {0: "batch"}, "tokens": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )
    return Path(path)
