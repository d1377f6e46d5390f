"""Residual vector quantisation of the speech embeddings: the text-aligned tokens.

Codebook c quantises what codebooks 0..c-1 left over; a text token's tokens are
the `codebooks` indices. The output is straight-through (the forward value is the
sum of the chosen codes, the gradient flows to the embedding unchanged). The
codebooks learn either by their own loss (||sg(z) - q||^2) or, with `ema`, as
exponential moving averages of the vectors assigned to them; both add the
commitment loss ||z - sg(q)||^2. Codebooks start from vectors of the first
training batch (random vectors would sit far from the data and never be chosen),
and with `dead_code_threshold` a code whose EMA usage falls below it restarts
at a vector of the current batch. Padding positions neither choose codes that
count nor move the codebooks.

Under DDP every process sees the vectors of the whole global batch when it starts or
updates a codebook (they are gathered in rank order), so the codebooks stay the same in
every process and equal to those of one process over the same batches; the random picks
(start, restarts) are then rank 0's, since dropout may have moved the processes' RNGs apart.
"""

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.distributed import broadcast_from_first, gather_rows


class ResidualVQ(nn.Module):
    def __init__(
        self,
        dim: int,
        codebooks: int,
        size: int,
        commitment: float = 0.25,
        codebook_weight: float = 1.0,
        ema: bool = True,
        decay: float = 0.99,
        dead_code_threshold: float = 0.0,
    ):
        super().__init__()
        self.dim, self.codebooks, self.size = dim, codebooks, size
        self.commitment, self.codebook_weight = commitment, codebook_weight
        self.ema, self.decay, self.dead_code_threshold = ema, decay, dead_code_threshold
        embed = torch.randn(codebooks, size, dim)
        if ema:
            self.register_buffer("embed", embed)
            self.register_buffer("cluster_size", torch.ones(codebooks, size))
            self.register_buffer("embed_sum", embed.clone())
        else:
            self.embed = nn.Parameter(embed)
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _init_from(self, vectors: torch.Tensor) -> None:
        """Each codebook starts at `size` vectors of the batch (with repeats when the batch is smaller),
        codebook c from the residuals the codebooks before it leave."""
        residual = vectors
        for c in range(self.codebooks):
            chosen = residual[torch.randint(0, len(residual), (self.size,), device=residual.device)]
            self.embed.data[c] = chosen
            if self.ema:
                self.embed_sum[c] = chosen
                self.cluster_size[c] = 1.0
            residual = residual - chosen[self._nearest(residual, chosen)]
        self.initialised.fill_(True)
        self._same_everywhere()

    def _same_everywhere(self) -> None:
        """Rank 0's codebooks in every process (after a random pick)."""
        broadcast_from_first(self.embed.data, *((self.cluster_size, self.embed_sum) if self.ema else ()))

    @staticmethod
    def _nearest(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        distances = (vectors * vectors).sum(-1, keepdim=True) - 2 * vectors @ codebook.t() + (codebook * codebook).sum(-1)
        return distances.argmin(-1)

    @torch.no_grad()
    def _ema_update(self, c: int, vectors: torch.Tensor, codes: torch.Tensor) -> None:
        vectors, codes = gather_rows(vectors), gather_rows(codes)
        onehot = F.one_hot(codes, self.size).to(vectors.dtype)
        self.cluster_size[c].mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_sum[c].mul_(self.decay).add_(onehot.t() @ vectors, alpha=1 - self.decay)
        total = self.cluster_size[c].sum()
        smoothed = (self.cluster_size[c] + 1e-5) / (total + self.size * 1e-5) * total
        self.embed[c] = self.embed_sum[c] / smoothed.unsqueeze(-1)
        if self.dead_code_threshold > 0:
            dead = self.cluster_size[c] < self.dead_code_threshold
            count = int(dead.sum())
            if count:
                fresh = vectors[torch.randint(0, len(vectors), (count,), device=vectors.device)]
                self.embed[c][dead] = fresh
                self.embed_sum[c][dead] = fresh
                self.cluster_size[c][dead] = 1.0
                self._same_everywhere()

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [B, N, D], mask [B, N] (True: a real text token) -> (quantised z, codes [B, N, C], loss)."""
        if torch.is_autocast_enabled(z.device.type):
            # Nearest-code search and the EMA statistics in fp32: bf16 distances would pick other codes.
            with torch.autocast(z.device.type, enabled=False):
                return self.forward(z.float(), mask)
        valid = mask.unsqueeze(-1).to(z.dtype)
        count = valid.sum().clamp(min=1) * self.dim
        if self.training and not bool(self.initialised):
            self._init_from(gather_rows(z.detach()[mask]))
        residual = z
        quantised = torch.zeros_like(z)
        codes, loss = [], z.new_zeros(())
        for c in range(self.codebooks):
            codebook = self.embed[c]
            index = self._nearest(residual.detach(), codebook.detach())
            chosen = F.embedding(index, codebook)
            loss = loss + self.commitment * (((residual - chosen.detach()) ** 2) * valid).sum() / count
            if not self.ema:
                loss = loss + self.codebook_weight * (((residual.detach() - chosen) ** 2) * valid).sum() / count
            elif self.training:
                self._ema_update(c, residual.detach()[mask], index[mask])
            quantised = quantised + chosen
            residual = residual - chosen.detach()
            codes.append(index)
        out = z + (quantised - z).detach()  # straight-through
        return out, torch.stack(codes, -1), loss

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """[..., D] -> codes [..., C] (no state changes)."""
        residual, codes = z, []
        for c in range(self.codebooks):
            index = self._nearest(residual, self.embed[c])
            residual = residual - self.embed[c][index]
            codes.append(index)
        return torch.stack(codes, -1)
