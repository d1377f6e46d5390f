"""BiCodec's speaker encoder, tokenize direction: mel -> ECAPA-TDNN frame latents ->
Perceiver resampler (32 latents) -> residual FSQ indices (the global tokens).

ECAPA-TDNN (c512, global-context ASTP pooling) follows the wespeaker layout that Spark-TTS
ships: Conv1d+ReLU+BN blocks (in that order), three SE-Res2 blocks (scale 8, dilation 2/3/4),
a 1x1 conv over their concatenation to 1536 channels with ReLU (the latent the tokens use),
then attentive statistics pooling, BN and a Linear (the x-vector, not needed for tokens but
part of the checkpoint, so it is built and loaded). Reference clips all have one length, so
this branch batches without padding.
"""

import torch
from torch import nn
from torch.nn import functional as F

from audiotok.bicodec.quantizers import ResidualFSQ


class Conv1dReluBn(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, 1, padding, dilation)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x):
        return self.bn(F.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    """Split channels into `scale` groups; each but the last goes through a conv fed by the previous one."""

    def __init__(self, channels: int, kernel_size: int, padding: int, dilation: int, scale: int):
        super().__init__()
        self.width = channels // scale
        self.nums = scale - 1 if scale > 1 else 1
        self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, kernel_size, 1, padding, dilation) for _ in range(self.nums))
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(self.nums))

    def forward(self, x):
        pieces = torch.split(x, self.width, 1)
        out, current = [], pieces[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            if i >= 1:
                current = current + pieces[i]
            current = bn(F.relu(conv(current)))
            out.append(current)
        if len(pieces) > self.nums:
            out.append(pieces[self.nums])
        return torch.cat(out, dim=1)


class SEConnect(nn.Module):
    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x):
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class SERes2Block(nn.Module):
    def __init__(self, channels: int, dilation: int, scale: int = 8):
        super().__init__()
        self.se_res2block = nn.Sequential(
            Conv1dReluBn(channels, channels),
            Res2Conv1dReluBn(channels, 3, padding=dilation, dilation=dilation, scale=scale),
            Conv1dReluBn(channels, channels),
            SEConnect(channels),
        )

    def forward(self, x):
        return x + self.se_res2block(x)


class AttentiveStatsPool(nn.Module):
    """ASTP with global context: attention weights from [x, mean(x), std(x)]; returns [mean, std] per channel."""

    def __init__(self, in_dim: int, bottleneck: int = 128):
        super().__init__()
        self.linear1 = nn.Conv1d(in_dim * 3, bottleneck, kernel_size=1)
        self.linear2 = nn.Conv1d(bottleneck, in_dim, kernel_size=1)

    def forward(self, x):
        context_mean = x.mean(dim=-1, keepdim=True).expand_as(x)
        context_std = torch.sqrt(torch.var(x, dim=-1, keepdim=True) + 1e-7).expand_as(x)
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(torch.cat((x, context_mean, context_std), dim=1)))), dim=2)
        mean = torch.sum(alpha * x, dim=2)
        var = torch.sum(alpha * x**2, dim=2) - mean**2
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-7))], dim=1)


class EcapaTdnn(nn.Module):
    """mel [B, T, feat_dim] -> (x-vector [B, embed_dim], frame latent [B, 1536, T])."""

    def __init__(self, feat_dim: int, embed_dim: int, channels: int = 512):
        super().__init__()
        self.layer1 = Conv1dReluBn(feat_dim, channels, kernel_size=5, padding=2)
        self.layer2 = SERes2Block(channels, dilation=2)
        self.layer3 = SERes2Block(channels, dilation=3)
        self.layer4 = SERes2Block(channels, dilation=4)
        self.conv = nn.Conv1d(channels * 3, 512 * 3, kernel_size=1)  # 1536 whatever the channel count
        self.pool = AttentiveStatsPool(512 * 3)
        self.bn = nn.BatchNorm1d(512 * 3 * 2)
        self.linear = nn.Linear(512 * 3 * 2, embed_dim)

    def latent(self, mel: torch.Tensor) -> torch.Tensor:
        out1 = self.layer1(mel.transpose(1, 2))
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        return F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.latent(mel)
        return self.linear(self.bn(self.pool(latent))), latent


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class CrossAttention(nn.Module):
    """Latents attend to [latents; context] (no biases)."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim_head * heads, bias=False)
        self.to_kv = nn.Linear(dim, dim_head * heads * 2, bias=False)
        self.to_out = nn.Linear(dim_head * heads, dim, bias=False)

    def forward(self, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        context = torch.cat((latents, context), dim=-2)
        q, k, v = (self.to_q(latents), *self.to_kv(context).chunk(2, dim=-1))
        batch = latents.shape[0]
        q, k, v = (t.reshape(batch, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attention = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return self.to_out((attention @ v).transpose(1, 2).reshape(batch, latents.shape[1], -1))


class GEGLUFeedForward(nn.Sequential):
    """Linear to 2 x inner, GELU(gate) * value, Linear back; indices 0 and 2 as in the checkpoint."""

    def __init__(self, dim: int, mult: int = 4):
        inner = int(dim * mult * 2 / 3)
        super().__init__(nn.Linear(dim, inner * 2), GEGLU(), nn.Linear(inner, dim))


class GEGLU(nn.Module):
    def forward(self, x):
        value, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * value


class PerceiverResampler(nn.Module):
    """context [B, T, dim_context] -> [B, num_latents, dim]."""

    def __init__(self, dim: int, dim_context: int, num_latents: int, depth: int = 2, dim_head: int = 64, heads: int = 8, ff_mult: int = 4):
        super().__init__()
        self.proj_context = nn.Linear(dim_context, dim)
        self.latents = nn.Parameter(torch.zeros(num_latents, dim))
        self.layers = nn.ModuleList(nn.ModuleList([CrossAttention(dim, dim_head, heads), GEGLUFeedForward(dim, ff_mult)]) for _ in range(depth))
        self.norm = RMSNorm(dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        context = self.proj_context(context)
        latents = self.latents.expand(context.shape[0], -1, -1)
        for attention, feed_forward in self.layers:
            latents = attention(latents, context) + latents
            latents = feed_forward(latents) + latents
        return self.norm(latents)


class SpeakerTokenizer(nn.Module):
    """mel [B, n_mels, T] -> global tokens [B, num_quantizers, token_num]."""

    def __init__(self, input_dim: int, out_dim: int, latent_dim: int, token_num: int, fsq_levels: list[int], fsq_num_quantizers: int):
        super().__init__()
        self.speaker_encoder = EcapaTdnn(input_dim, out_dim)
        self.perceiver_sampler = PerceiverResampler(latent_dim, 512 * 3, token_num)
        self.quantizer = ResidualFSQ(fsq_levels, fsq_num_quantizers, latent_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        latent = self.speaker_encoder.latent(mel.transpose(1, 2))
        return self.quantizer(self.perceiver_sampler(latent.transpose(1, 2)).transpose(1, 2))
