"""The two BiCodec quantizers, tokenize direction only.

- FactorizedVQ (semantic tokens): a 1x1 convolution down to `codebook_dim`, then the
  nearest codeword after L2-normalising both the latent and the codebook (Spark-TTS
  normalises unconditionally; `use_l2_normlize` in the config is never read).
- ResidualFSQ (global tokens): a Linear down to len(levels) dims, then finite scalar
  quantization per stage: bound each dim with tanh to (levels-1)/2 (even levels shifted
  by a half), round, and read the digits as a mixed-radix number (basis = cumulative
  product of the levels). Stage q quantizes the residual scaled by (levels-1)^-q.
"""

import torch
from torch import nn
from torch.nn import functional as F


class FactorizedVQ(nn.Module):
    """latents [B, input_dim, T] -> codeword indices [B, T]."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        # Weight norm is folded into a plain weight when the checkpoint is loaded.
        self.in_project = nn.Conv1d(input_dim, codebook_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        encodings = self.in_project(latents).transpose(1, 2).float()  # [B, T, D]
        batch, frames, dim = encodings.shape
        encodings = F.normalize(encodings.reshape(-1, dim))
        codebook = F.normalize(self.codebook.weight.float())
        # Spark-TTS's distance, term for term, so that near-ties break the same way.
        distance = encodings.pow(2).sum(1, keepdim=True) - 2 * encodings @ codebook.t() + codebook.pow(2).sum(1, keepdim=True).t()
        return (-distance).max(1)[1].reshape(batch, frames)


class FSQ(nn.Module):
    """Finite scalar quantization of [..., len(levels)] -> (codes in [-1, 1], indices)."""

    def __init__(self, levels: list[int]):
        super().__init__()
        levels_tensor = torch.tensor(levels, dtype=torch.int32)
        self.register_buffer("levels", levels_tensor, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor([1] + levels[:-1]), dim=0, dtype=torch.int32), persistent=False)
        self.codebook_size = int(levels_tensor.prod())

    def bound(self, z: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        half_l = (self.levels - 1) * (1 + eps) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half_width = self.levels // 2
        codes = self.bound(z).round() / half_width
        indices = ((codes * half_width + half_width) * self.basis).sum(dim=-1).to(torch.int32)
        return codes, indices


class ResidualFSQ(nn.Module):
    """x [B, dim, N] (channels first) -> indices [B, num_quantizers, N]."""

    def __init__(self, levels: list[int], num_quantizers: int, dim: int):
        super().__init__()
        self.project_in = nn.Linear(dim, len(levels))
        self.layers = nn.ModuleList(FSQ(levels) for _ in range(num_quantizers))
        levels_tensor = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("scales", torch.stack([(levels_tensor - 1) ** -q for q in range(num_quantizers)]), persistent=False)
        self.codebook_size = self.layers[0].codebook_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.project_in(x.transpose(1, 2)).float()  # FSQ runs in fp32, as Spark-TTS forces it
        indices = []
        for layer, scale in zip(self.layers, self.scales, strict=True):
            codes, layer_indices = layer(residual / scale)
            residual = residual - codes * scale
            indices.append(layer_indices)
        return torch.stack(indices, dim=1)
