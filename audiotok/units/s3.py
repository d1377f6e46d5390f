"""CosyVoice S3 speech tokenizer (v1 VQ, v2 FSQ) in PyTorch, and the loop that runs
either backend (this one or s3_onnx) over an audio table.

The network follows MODELS.md section 1 (S3Tokenizer's model.py and
model_v2.py): two GELU convolutions, six pre-LN attention blocks whose
key has no bias and whose q and k are each scaled by head_dim^-0.25, then
v1's nearest codeword of the L2-normalised hidden state or v2's 8-digit
base-3 FSQ code. Padded frames are masked before each convolution and in
attention, so a padded batch gives each item its own tokens.

The log-mel floor at max - 8 depends on what one call sees: recordings over
30 s are cut and joined the way a chosen reference does it
(audiotok.units.s3_long_audio).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiotok.errors import AudiotokError, ItemError
from audiotok.units.s3_long_audio import DEFAULT_MODE, SAMPLE_RATE, Layout

MIN_SAMPLES = 480  # Step-Audio skips shorter chunks; the STFT needs > 200 samples anyway
HEAD_DIM = 64  # both official models; v2's rotary table is 64 wide
# v2's attention LayerNorm epsilon: 1e-5 in the s3tokenizer release on PyPI (0.3.0, the one
# users install), 1e-6 at S3Tokenizer's git commit 2abe1c5. It decides ~1% of tokens (those
# near an FSQ rounding edge); an ONNX file carries its own.
V2_ATTN_LN_EPS = 1e-5
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


@dataclass
class S3Config:
    version: str = "v1"  # v1: VQ codebook; v2: FSQ, 3^8 codes
    rate: int = 25  # tokens a second: 25 (conv1 stride 2) or 50 (stride 1, v1 only)
    n_mels: int = 128
    n_ctx: int = 1500  # v1 positional embedding rows
    n_state: int = 1280
    n_head: int = 20
    n_layer: int = 6
    codebook_size: int = 4096  # v1 only
    attn_ln_eps: float = V2_ATTN_LN_EPS  # v2 only: see V2_ATTN_LN_EPS

    def __post_init__(self):
        if self.version not in ("v1", "v2"):
            raise AudiotokError(f"unknown S3 tokenizer version {self.version!r}", "choose v1 or v2")
        if self.rate not in (25, 50) or (self.version == "v2" and self.rate != 25):
            raise AudiotokError(f"S3 {self.version} has no {self.rate} Hz variant", "v1: 25 or 50; v2: 25")

    @property
    def frames_per_token(self) -> int:
        return 100 // self.rate


def token_count(frames, frames_per_token: int):
    """Tokens for `frames` mel frames: (L - 1) // stride + 1 per convolution (ints or tensors)."""
    if frames_per_token == 4:
        frames = (frames - 1) // 2 + 1
    return (frames - 1) // 2 + 1


def build_model(config: S3Config):
    """An S3 tokenizer network whose state-dict keys are the official ones."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def keep_mask(lengths, size):
        return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]

    class Attention(nn.Module):
        def __init__(self, fsmn: bool):
            super().__init__()
            n = config.n_state
            self.n_head = config.n_head
            self.query, self.key, self.value, self.out = nn.Linear(n, n), nn.Linear(n, n, bias=False), nn.Linear(n, n), nn.Linear(n, n)
            if fsmn:
                self.fsmn_block = nn.Conv1d(n, n, 31, padding=15, groups=n, bias=False)

        def forward(self, x, bias, keep, rotary):
            batch, time, width = x.shape
            shape = (batch, time, self.n_head, width // self.n_head)
            q, k, v = self.query(x).view(shape), self.key(x).view(shape), self.value(x).view(shape)
            if rotary is not None:
                cos, sin = rotary
                q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            scale = (width // self.n_head) ** -0.25
            scores = (q.permute(0, 2, 1, 3) * scale) @ (k.permute(0, 2, 3, 1) * scale) + bias
            mixed = (scores.softmax(-1) @ v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3).reshape(batch, time, width)
            out = self.out(mixed)
            if rotary is not None:  # v2's FSMN memory: a depthwise convolution over v, plus v
                memory = v.reshape(batch, time, width) * keep
                out = out + (self.fsmn_block(memory.transpose(1, 2)).transpose(1, 2) + memory) * keep
            return out

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    class Block(nn.Module):
        def __init__(self, v2: bool):
            super().__init__()
            n = config.n_state
            self.attn = Attention(fsmn=v2)
            self.attn_ln = nn.LayerNorm(n, eps=config.attn_ln_eps if v2 else 1e-5)
            self.mlp = nn.Sequential(nn.Linear(n, 4 * n), nn.GELU(), nn.Linear(4 * n, n))
            self.mlp_ln = nn.LayerNorm(n)

        def forward(self, x, bias, keep, rotary):
            x = x + self.attn(self.attn_ln(x), bias, keep, rotary)
            return x + self.mlp(self.mlp_ln(x))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            n, v2 = config.n_state, config.version == "v2"
            self.stride = 2 if config.frames_per_token == 4 else 1
            self.conv1 = nn.Conv1d(config.n_mels, n, 3, stride=self.stride, padding=1)
            self.conv2 = nn.Conv1d(n, n, 3, stride=2, padding=1)
            if v2:
                head = n // config.n_head
                angles = torch.outer(torch.arange(2048).float(), 1.0 / 10000 ** (torch.arange(0, head, 2).float() / head))
                angles = torch.cat((angles, angles), dim=-1)[:, None, :]  # [positions, 1 (heads), head_dim]
                self.register_buffer("rotary_cos", angles.cos(), persistent=False)
                self.register_buffer("rotary_sin", angles.sin(), persistent=False)
            else:
                self.register_buffer("positional_embedding", torch.zeros(config.n_ctx, n))
            self.blocks = nn.ModuleList(Block(v2) for _ in range(config.n_layer))

        def forward(self, x, lengths):
            x = F.gelu(self.conv1(x * keep_mask(lengths, x.shape[-1])[:, None, :]))
            lengths = (lengths - 1) // self.stride + 1
            x = F.gelu(self.conv2(x * keep_mask(lengths, x.shape[-1])[:, None, :]))
            lengths = (lengths - 1) // 2 + 1
            x = x.transpose(1, 2)
            keep = keep_mask(lengths, x.shape[1])
            bias = torch.zeros(keep.shape, dtype=x.dtype, device=x.device).masked_fill(~keep, -1e10)[:, None, None, :]
            rotary = None
            if config.version == "v2":
                rotary = self.rotary_cos[: x.shape[1]], self.rotary_sin[: x.shape[1]]
            else:
                x = x + self.positional_embedding[: x.shape[1]]
            for block in self.blocks:
                x = block(x, bias, keep[:, :, None].to(x.dtype), rotary)
            return x

    class Codebook(nn.Module):
        def __init__(self):
            super().__init__()
            if config.version == "v2":
                self.project_down = nn.Linear(config.n_state, 8)
            else:
                self.register_buffer("embed", torch.zeros(config.codebook_size, config.n_state))

    class Quantizer(nn.Module):
        def __init__(self):
            super().__init__()
            self._codebook = Codebook()

        def forward(self, hidden):
            book = self._codebook
            if config.version == "v2":
                digits = (book.project_down(hidden).tanh() * 0.999).round() + 1  # each 0, 1 or 2
                powers = 3.0 ** torch.arange(8, device=hidden.device, dtype=hidden.dtype)
                return (digits * powers).sum(-1).round().long()
            unit = F.normalize(hidden, p=2.0, dim=-1)
            # The nearest codeword, with S3Tokenizer's own arithmetic (|x|^2 - 2xe + |e|^2, negated,
            # the largest): dropping the constant |x|^2 rounds differently and can flip a near tie.
            embed = book.embed.t()
            distance = -(unit.pow(2).sum(-1, keepdim=True) - 2 * unit @ embed + embed.pow(2).sum(0, keepdim=True))
            return distance.max(-1).indices

    class S3Tokenizer(nn.Module):
        """forward(feats [B, n_mels, T] float32, feats_len [B] int) -> tokens [B, T'] (past each length: padding)."""

        def __init__(self):
            super().__init__()
            self.config = config
            self.encoder = Encoder()
            self.quantizer = Quantizer()

        def forward(self, feats, feats_len):
            return self.quantizer(self.encoder(feats, feats_len.long()))

    return S3Tokenizer()


# ---------------------------------------------------------------- loading weights


def weights_file(path: Path) -> Path:
    """The weights file itself, or the only one in a directory."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise AudiotokError(f"no such S3 model: {path}", "give a .onnx file, or a .safetensors/.pt file or directory of S3Tokenizer weights")
    found = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise AudiotokError(f"{path} holds {what} weight files ({', '.join(WEIGHT_SUFFIXES)})", "give the weights file itself")
    return found[0]


def read_state_dict(path: Path) -> dict:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            # weights_only: a checkpoint from a stranger must not run code when unpickled.
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch and safetensors raise many types for bad files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise AudiotokError(f"cannot read S3 weights {path}: {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AudiotokError(f"{path} is not a state dict of tensors")
    return state


def config_from_state(state: dict, version: str | None, rate: int | None, where: str) -> S3Config:
    """Sizes from the tensors' shapes; the version from the quantizer's keys; the rate from the caller."""
    for key in ("encoder.conv1.weight", "encoder.conv2.weight"):
        if key not in state:
            raise AudiotokError(f"{where} is not an S3 tokenizer state dict: no {key}")
    found = "v2" if "quantizer._codebook.project_down.weight" in state else "v1"
    if version and version != found:
        raise AudiotokError(f"--version {version}, but {where} holds S3 {found} weights", "drop --version: the weights say which they are")
    if rate is None:
        if found == "v1":
            # Both v1 files have the same shapes; guessing would silently give the wrong stride.
            hint = "give --rate 25 (CosyVoice-300M-25Hz, Step-Audio) or --rate 50 (CosyVoice-300M)"
            raise AudiotokError(f"{where}: S3 v1 weights do not say their token rate", hint)
        rate = 25
    n_mels, n_state = state["encoder.conv1.weight"].shape[1], state["encoder.conv1.weight"].shape[0]
    layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.blocks.")}
    extra = {}
    if found == "v1":
        extra["codebook_size"] = state["quantizer._codebook.embed"].shape[0] if "quantizer._codebook.embed" in state else 4096
        if "encoder.positional_embedding" in state:
            extra["n_ctx"] = state["encoder.positional_embedding"].shape[0]
    return S3Config(found, rate, n_mels=n_mels, n_state=n_state, n_head=max(1, n_state // HEAD_DIM), n_layer=len(layers), **extra)


def load_torch_model(path: str | Path, version: str | None = None, rate: int | None = None, n_head: int | None = None, attn_ln_eps: float | None = None):
    """The PyTorch S3 tokenizer from a local weights file (or a directory holding one)."""
    file = weights_file(Path(path))
    state = read_state_dict(file)
    config = config_from_state(state, version, rate, str(file))
    if n_head is not None:
        config.n_head = n_head
    if attn_ln_eps is not None:
        config.attn_ln_eps = attn_ln_eps
    model = build_model(config)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = [f"{what} {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}" for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise AudiotokError(f"{file} does not fit an S3 {config.version} model: {'; '.join(parts)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        shape_line = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), str(err).splitlines()[0])
        raise AudiotokError(f"{file} does not fit an S3 {config.version} model: {shape_line}") from None
    from audiotok.io.digests import file_digest

    model.digest = file_digest(file)
    return model.eval()


class S3Torch:
    """The PyTorch backend: padded batches with lengths (masked, so padding does not change tokens)."""

    padding_safe = True

    def __init__(self, model, device: str):
        import torch

        self.torch = torch
        self.digest = getattr(model, "digest", None)
        self.device = device
        self.model = model.to(device)
        self.config = model.config
        self.rate, self.frames_per_token = self.config.rate, self.config.frames_per_token

    def __call__(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """Token arrays for mels [T_i, n_mels] (time-major)."""
        torch = self.torch
        lengths = [len(m) for m in mels]
        batch = np.zeros((len(mels), self.config.n_mels, max(lengths)), np.float32)
        for row, mel in zip(batch, mels, strict=True):
            row[:, : len(mel)] = mel.T
        with torch.inference_mode():
            tokens = self.model(torch.from_numpy(batch).to(self.device), torch.tensor(lengths, device=self.device)).cpu().numpy()
        return [row[: token_count(n, self.frames_per_token)] for row, n in zip(tokens, lengths, strict=True)]


# ---------------------------------------------------------------- one opener for every command


@dataclass
class S3Options:
    """What picks an S3 tokenizer and how it is run: s3-extract's options, tokenize-shards' s3: spec."""

    model: str  # a preset, an .onnx file, or S3Tokenizer weights (file or directory)
    version: str | None = None  # v1 or v2: checked against the model
    rate: int | None = None  # 25 or 50: needed for v1 PyTorch weights, checked for ONNX
    long_audio: str = DEFAULT_MODE  # audiotok.units.s3_long_audio.MODES
    resampler: str = "torchaudio"  # audiotok.dsp.resample.RESAMPLERS: both references use torchaudio's
    attn_ln_eps: float | None = None  # PyTorch v2 weights only; None: V2_ATTN_LN_EPS

    def check(self) -> None:
        """Refuse bad values before anything loads (usage errors)."""
        from audiotok.dsp.resample import RESAMPLERS
        from audiotok.errors import UsageError
        from audiotok.units.s3_long_audio import MODES

        if self.version not in (None, "v1", "v2"):
            raise UsageError(f"unknown S3 version {self.version!r}", "choose v1 or v2")
        if self.rate not in (None, 25, 50):
            raise UsageError(f"S3 rate {self.rate}: S3 tokenizers give 25 or 50 tokens a second")
        if self.long_audio not in MODES:
            raise UsageError(f"unknown long-audio mode {self.long_audio!r}", f"choose one of {', '.join(MODES)}")
        if self.resampler not in RESAMPLERS:
            raise UsageError(f"unknown resampler {self.resampler!r}", f"choose one of {', '.join(RESAMPLERS)}")
        if self.attn_ln_eps is not None and not 0 < self.attn_ln_eps < 1e-2:
            hint = "1e-5 (s3tokenizer 0.3.0) or 1e-6 (S3Tokenizer's git)"
            raise UsageError(f"attention LayerNorm epsilon {self.attn_ln_eps:g} is not a small positive number", hint)


def units_recipe(backend, options: S3Options, dedup: bool = False) -> dict:
    """What made a unit table: recorded beside it (UNITS.recipe.json) for the tools that read it."""
    from audiotok import __version__
    from audiotok.units.s3_long_audio import REFERENCES

    torch_model = isinstance(backend, S3Torch)
    version = backend.config.version if torch_model else backend.version
    recipe = {
        "tokenizer": "s3",
        "backend": "pytorch" if torch_model else "onnx",
        "model": str(options.model),
        "model_hash": backend.digest,
        "version": version,
        "frame_rate": backend.rate,
        "codebook_size": {"v1": backend.config.codebook_size if torch_model else 4096, "v2": 6561}.get(version),
        "sample_rate": SAMPLE_RATE,
        "resampler": options.resampler,
        "long_audio": options.long_audio,
        "long_audio_reference": REFERENCES[options.long_audio],
        "dedup": dedup,  # runs collapsed: frame_rate is the rate before collapsing
        "audiotok": __version__,
    }
    if torch_model and version == "v2":
        recipe["attn_ln_eps"] = backend.config.attn_ln_eps
    return recipe


# ---------------------------------------------------------------- running over a table


@dataclass
class S3Result:
    key: str
    tokens: np.ndarray | ItemError
    seconds: float = 0.0


def step_audio_check(tokens: int, seconds: float, rate: int) -> bool:
    """Step-Audio's assertion: within 2 tokens of rate x duration."""
    return abs(tokens - rate * seconds) <= 2


def s3_tokens(
    items: Iterable, backend, *, channel=None, batch_seconds=60.0, block=64, skip=None, long_audio=DEFAULT_MODE, resampler="torchaudio"
) -> Iterator[S3Result]:
    """Tokens for each item in input order; failures as ItemError in place. skip(key) leaves an item out.

    long_audio: how recordings over 30 s are cut and joined (audiotok.units.s3_long_audio);
    resampler: how audio not at 16 kHz gets there (audiotok.dsp.resample methods).
    """
    import torch

    from audiotok.dsp.resample import resample, resampled_stream
    from audiotok.engine.batching import long_stream, map_pieces
    from audiotok.units.features import WhisperLogMel

    mel = WhisperLogMel(128, SAMPLE_RATE)
    layout = Layout(long_audio, backend.frames_per_token)

    def log_mel(samples: np.ndarray) -> np.ndarray:
        return mel.log_mel(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))).T.numpy()

    def prepare(item):
        stream = long_stream(item, channel)
        streamed = None if stream is None else resampled_stream(stream, SAMPLE_RATE, method=resampler)
        if streamed is not None:  # a long recording: its windows are read from its blocks as their batches run
            pieces, windows = layout.streamed_windows(streamed, mel, log_mel)
            return pieces, (windows, len(streamed) / SAMPLE_RATE)
        audio = item.load(channel)
        samples = resample(audio.samples, audio.rate, SAMPLE_RATE, method=resampler)
        if len(samples) < MIN_SAMPLES:
            raise ItemError(f"too short: {len(samples)} samples at 16 kHz (at least {MIN_SAMPLES})")
        windows = layout.windows(samples, log_mel)
        return [window.mel for window in windows], (windows, len(samples) / SAMPLE_RATE)

    # Lengths are mel frames (100 a second); the ONNX backend is not padding-safe: it batches
    # only windows of equal length.
    for key, outputs, prepared in map_pieces(
        items, prepare, backend, batch_seconds=batch_seconds, rate=100, padding_safe=backend.padding_safe, block=block, skip=skip
    ):
        if isinstance(outputs, ItemError):
            yield S3Result(key, outputs)
            continue
        windows, seconds = prepared
        yield S3Result(key, layout.join(windows, outputs), seconds)
