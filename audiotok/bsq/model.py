"""The Audio BSQ-ViT: patch Transformer encoder, BSQ bottleneck, mirrored decoder.

Input: scaled log-mel (batch, frames, mels) in [-1, 1] (mel.py; a mel in dB is
refused), frames a multiple of the patch size and at most `input_length`.
Patches of patch x patch (frames x mel bins) are laid out time-major: token (t, f) is time patch t, mel band f, and the
flat order is t * bands + f. Positions: a learnable table for time patches plus
one for mel bands (summed), so a shorter window uses the first rows of the time
table. Each block is pre-norm attention, an optional Conformer convolution
module (pointwise conv + GLU, depthwise conv along time within each band,
batch norm, SiLU, pointwise conv), and an MLP.

The seed's Python surface works on the same model: AudioBSQModel(audioconfig=...,
embed_dim=...) (its arguments mapped by seed.py), `model(mel)`, `model.encode(mel)`
-> (codes, loss, info) and `model.decode(codes)`; audiotok's own token path is
`encode_ids` / `decode_codes`.
"""

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from audiotok.bsq.mel import check_scaled
from audiotok.bsq.quantizer import BinarySphericalQuantizer, bits_to_ids, ids_to_bits

_recomputing = [False]


@contextlib.contextmanager
def _recomputation():
    """Marks gradient checkpointing's second forward, which must not update running stats again."""
    _recomputing[0] = True
    try:
        yield
    finally:
        _recomputing[0] = False


class TokenBatchNorm(nn.Module):
    """Batch norm over every token of the batch, synchronised across DDP ranks.

    torch's SyncBatchNorm needs a GPU; this one sums the statistics with a
    differentiable all-reduce, so gloo on CPU trains exactly like one process
    holding the whole global batch.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., channels)
        if self.training:
            from audiotok.bsq.quantizer import _global_sum

            flat = x.reshape(-1, x.shape[-1])
            flat = flat if flat.dtype == torch.float64 else flat.float()
            stats = _global_sum(torch.cat([flat.sum(0), (flat * flat).sum(0), flat.new_tensor([flat.shape[0]])]))
            channels = x.shape[-1]
            count = stats[-1]
            mean = stats[:channels] / count
            var = (stats[channels : 2 * channels] / count - mean * mean).clamp_min(0.0)
            if not _recomputing[0]:
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach(), self.momentum)
                    self.running_var.lerp_(var.detach() * count / (count - 1).clamp_min(1.0), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return ((x - mean) * torch.rsqrt(var + self.eps)).to(x.dtype) * self.weight + self.bias


class ConvModule(nn.Module):
    def __init__(self, width: int, kernel_size: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.pointwise_in = nn.Linear(width, 2 * width)
        self.depthwise = nn.Conv1d(
            width, width, kernel_size, padding=kernel_size // 2, groups=width, bias=False
        )  # batch norm follows: a bias would only be noise for Adam
        self.batch_norm = TokenBatchNorm(width)
        self.pointwise_out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        batch, (times, bands) = x.shape[0], grid
        y = F.glu(self.pointwise_in(self.norm(x)), dim=-1)
        # depthwise conv along time, separately in each mel band
        y = y.reshape(batch, times, bands, -1).permute(0, 2, 3, 1).reshape(batch * bands, -1, times)
        y = self.depthwise(y).reshape(batch, bands, -1, times).permute(0, 3, 1, 2).reshape(batch, times * bands, -1)
        return self.pointwise_out(F.silu(self.batch_norm(y)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, conv_kernel: int | None):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        # No key bias: it shifts every score of a query equally, so softmax cancels it and its
        # gradient is rounding noise, which Adam would turn into full-size steps.
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, width)
        self.conv = ConvModule(width, conv_kernel) if conv_kernel else None
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        batch, tokens, width = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        q, k, v = F.linear(self.norm1(x), self.qkv.weight, bias).reshape(batch, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, width))
        if self.conv is not None:
            x = x + self.conv(x, grid)
        return x + self.mlp(self.norm2(x))


class PatchTransformer(nn.Module):
    """Positions + blocks + final norm over a (time patches x bands) token grid."""

    def __init__(self, m: dict):
        super().__init__()
        width = m["width"]
        self.time_position = nn.Parameter(torch.randn(m["input_length"] // m["patch_size"], width) * 0.02)
        self.band_position = nn.Parameter(torch.randn(m["input_size"] // m["patch_size"], width) * 0.02)
        kernel = m["conv_kernel_size"] if m["use_conv_module"] else None
        self.blocks = nn.ModuleList(Block(width, m["heads"], m["mlp_ratio"], kernel) for _ in range(m["layers"]))
        self.norm = nn.LayerNorm(width)
        self.grad_checkpointing = m["grad_checkpointing"]

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        times, bands = grid
        position = (self.time_position[:times, None, :] + self.band_position[None, :bands, :]).reshape(times * bands, -1)
        x = x + position
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, grid, use_reentrant=False, context_fn=lambda: (contextlib.nullcontext(), _recomputation()))
            else:
                x = block(x, grid)
        return self.norm(x)


class AudioBSQModel(nn.Module):
    def __init__(self, model_config: dict | None = None, embed_dim: int | None = None, **seed_arguments):
        """AudioBSQModel(config["model"]): audiotok's model section (bsq-train's YAML, or a model
        directory's config.json). AudioBSQModel(audioconfig=..., embed_dim=18, l2_norm=True, ...):
        the seed's constructor, its arguments mapped onto the same keys by seed.model_config
        (an argument without an audiotok equivalent is refused in one line)."""
        super().__init__()
        from audiotok.bsq.config import DEFAULTS
        from audiotok.errors import UsageError

        if embed_dim is not None or seed_arguments:
            from audiotok.bsq.seed import model_config as from_seed

            if model_config is not None and "audioconfig" in seed_arguments:
                raise UsageError("AudioBSQModel got the audioconfig twice (positional and audioconfig=)")
            model_config = from_seed(seed_arguments.pop("audioconfig", model_config), embed_dim, **seed_arguments)
            from audiotok.bsq.config import resolve

            resolve({"model": model_config})  # audiotok's checks that the sizes fit together, on the mapped values
        if not isinstance(model_config, dict):
            raise UsageError("AudioBSQModel needs audiotok's model config (a dict)", "or the seed's form: AudioBSQModel(audioconfig={...}, embed_dim=18)")
        missing = sorted(set(DEFAULTS["model"]) - set(model_config) - {"unit_codes"})
        if missing:
            raise UsageError(
                f"the model config lacks {', '.join(missing)}",
                "give a whole model section (audiotok.bsq.config.load(...)['model']), or the seed's form: AudioBSQModel(audioconfig={...}, embed_dim=18)",
            )
        m = self.config = dict(model_config)
        m.setdefault("unit_codes", True)  # model directories written before the option existed
        self.patch = m["patch_size"]
        self.embed_dim = m["embed_dim"]
        self.patch_embed = nn.Linear(self.patch * self.patch, m["width"])
        self.encoder = PatchTransformer(m)
        self.to_latent = nn.Linear(m["width"], m["embed_dim"])
        self.quantizer = BinarySphericalQuantizer(
            m["embed_dim"],
            m["inv_temperature"],
            m["entropy_group_size"],
            m["commit_weight"],
            m["entropy_weight"],
            m["codebook_entropy_weight"],
            m["l2_norm"],
            m["unit_codes"],
        )
        self.from_latent = nn.Linear(m["embed_dim"], m["width"])
        self.decoder = PatchTransformer(m)
        self.to_patch = nn.Linear(m["width"], self.patch * self.patch)

    def grid(self, mel: torch.Tensor) -> tuple[int, int]:
        frames, mels = mel.shape[-2:]
        if frames % self.patch or mels != self.config["input_size"] or frames > self.config["input_length"]:
            raise ValueError(
                f"mel of {frames} frames x {mels} bins: need a multiple of {self.patch} frames, "
                f"at most {self.config['input_length']}, and {self.config['input_size']} bins"
            )
        return frames // self.patch, mels // self.patch

    def patchify(self, mel: torch.Tensor) -> torch.Tensor:
        batch, frames, mels = mel.shape
        p = self.patch
        return mel.reshape(batch, frames // p, p, mels // p, p).permute(0, 1, 3, 2, 4).reshape(batch, (frames // p) * (mels // p), p * p)

    def unpatchify(self, patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        (times, bands), p = grid, self.patch
        return patches.reshape(-1, times, bands, p, p).permute(0, 1, 3, 2, 4).reshape(-1, times * p, bands * p)

    def latents(self, mel: torch.Tensor):
        if mel.ndim == 4 and mel.shape[1] == 1:  # (B, 1, T, F), as the seed's encoder also takes
            mel = mel.squeeze(1)
        grid = self.grid(mel)
        check_scaled(mel)
        return self.to_latent(self.encoder(self.patch_embed(self.patchify(mel)), grid)), grid

    def decode_latents(self, quantized: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return self.unpatchify(self.to_patch(self.decoder(self.from_latent(quantized), grid)), grid)

    def _info(self, info: dict, batch: int, grid: tuple[int, int]) -> dict:
        """The quantizer's info with ids as a grid, plus the entries the seed's quantizer returns."""
        ids = info["ids"].reshape(batch, -1)
        indices = bits_to_ids(ids_to_bits(ids, self.embed_dim).flip(-1))  # the seed numbers codes with dimension 0 as the top bit
        return {
            **info,
            "ids": ids.reshape(batch, *grid),
            "indices": indices,
            "H": info["codebook_entropy"],
            "used_codes": None if self.training else torch.unique(indices),
        }

    def forward(self, mel: torch.Tensor):
        """mel (B, T, F) -> (reconstruction (B, T, F), quantizer loss, info: ids (B, T/p, F/p), entropies, the seed's indices)."""
        latent, grid = self.latents(mel)
        quantized, quant_loss, info = self.quantizer(latent)
        return self.decode_latents(quantized.to(latent.dtype), grid), quant_loss, self._info(info, latent.shape[0], grid)

    def encode(self, mel: torch.Tensor, skip_quantize: bool = False):
        """The seed's encode: mel (B, T, F) -> (codes (B, N, embed_dim), quantizer loss, info), N = T/p x F/p
        patches, time-major. info["ids"] (B, T/p, F/p) are audiotok's tokens (bsq-encode's); info["indices"]
        (B, N) number the same codes as the seed's quantizer does. skip_quantize (eval only): the latents."""
        latent, grid = self.latents(mel)
        if skip_quantize:
            if self.training:
                raise ValueError("skip_quantize is for eval mode only: call model.eval() first")
            z = latent.float()
            return (F.normalize(z, dim=-1) if self.quantizer.l2_norm else z), {}, {}
        quantized, quant_loss, info = self.quantizer(latent)
        return quantized, quant_loss, self._info(info, latent.shape[0], grid)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """The seed's decode: codes (B, N, embed_dim) from encode -> mel (B, T, F)."""
        bands = self.config["input_size"] // self.patch
        if codes.ndim != 3 or codes.shape[1] % bands or codes.shape[2] != self.embed_dim:
            raise ValueError(f"codes of shape {tuple(codes.shape)}: need (batch, time patches x {bands} bands, {self.embed_dim})")
        return self.decode_latents(codes.to(self.from_latent.weight.dtype), (codes.shape[1] // bands, bands))

    @torch.no_grad()
    def encode_ids(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, T, F) -> token ids (B, T/p, F/p), int64 in [0, 2**embed_dim): bit k is dimension k > 0."""
        latent, grid = self.latents(mel)
        return bits_to_ids(latent.float() > 0).reshape(latent.shape[0], *grid)

    @torch.no_grad()
    def decode_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """token ids (B, T', F') -> mel (B, T' * p, F' * p)."""
        grid = tuple(ids.shape[-2:])
        codes = self.quantizer.codes_from_ids(ids.reshape(ids.shape[0], -1))
        return self.decode_latents(codes.to(self.from_latent.weight.dtype), grid)
