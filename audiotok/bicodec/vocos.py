"""BiCodec's feature encoder: a Vocos (ConvNeXt) backbone, two refinement stages and a projection.

Spark-TTS runs it on one recording at a time, so its convolutions see zeros past the end.
In a padded batch the padded frames are set to zero before every convolution, which
gives each real frame exactly those zeros: a padded batch equals one-at-a-time runs.
Everything between convolutions (LayerNorm, Linear, GELU) works frame by frame.
Key names follow the checkpoint (`encoder.encoder.*`, `encoder.downsample.{i}.1.*`, `encoder.project.*`).
"""

import torch
from torch import nn


def keep_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, 1, T] float: 1 on real frames, 0 on padding."""
    return (torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]).unsqueeze(1)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k7), LayerNorm, 4x-style MLP with GELU, layer scale, residual; channels first."""

    def __init__(self, dim: int, intermediate_dim: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x * keep).transpose(1, 2)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.transpose(1, 2)


class VocosBackbone(nn.Module):
    """[B, C_in, T] -> [B, T, dim]: embedding conv (k7), LayerNorm, ConvNeXt blocks, final LayerNorm."""

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.convnext = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim) for _ in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(x * keep).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x, keep)
        return self.final_layer_norm(x.transpose(1, 2))


class RefineStage(nn.Module):
    """One `downsample` entry at ratio 1: Spark-TTS's SamplingBlock adds its input to itself
    twice (no parameters), then a 2-layer Vocos backbone. Index 1 keeps the checkpoint's names."""

    def __init__(self, dim: int, intermediate_dim: int):
        super().__init__()
        self.add_module("1", VocosBackbone(dim, dim, intermediate_dim, num_layers=2))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        return getattr(self, "1")(x + x + x, keep)


class FeatureEncoder(nn.Module):
    """wav2vec2 features [B, input_channels, T] -> latents [B, out_channels, T] (same frame rate)."""

    def __init__(self, input_channels: int, vocos_dim: int, vocos_intermediate_dim: int, vocos_num_layers: int, out_channels: int, stages: int = 2):
        super().__init__()
        self.encoder = VocosBackbone(input_channels, vocos_dim, vocos_intermediate_dim, vocos_num_layers)
        self.downsample = nn.Sequential(*(RefineStage(vocos_dim, vocos_intermediate_dim) for _ in range(stages)))
        self.project = nn.Linear(vocos_dim, out_channels)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = keep_mask(lengths, feats.shape[-1]).to(feats.dtype)
        x = self.encoder(feats, keep)
        for stage in self.downsample:
            x = stage(x, keep)
        return self.project(x).transpose(1, 2)
