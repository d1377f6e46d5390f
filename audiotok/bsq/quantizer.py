"""Binary Spherical Quantization (Zhao, Xiong and Kraehenbuehl, 2024).

A latent is L2-normalised to the unit sphere in `embed_dim` dimensions; its code
is the corner of the hypercube inscribed in that sphere with the same signs,
sign(z) / sqrt(embed_dim), so every code is a unit vector too (`unit_codes`;
without it the code is sign(z) itself, the seed's post_q_l2_norm=False). Gradients pass
straight through the rounding. The bits of a token id are the signs: bit k
(value 2**k) is 1 where dimension k is positive.

Entropy terms, on a soft assignment q(c|z) proportional to exp(-inv_temperature
* ||z - c||^2): that distribution factorises over the bits, so the per-sample
entropy (minimised: confident codes) is exactly a sum of binary entropies. The
codebook entropy H(E_batch[q]) (maximised: every code used) does not factorise;
it is approximated by the sum over groups of `entropy_group_size` bits of each
group's entropy, which needs only 2**group_size probabilities per group.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _global_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over DDP ranks with gradients flowing back to every rank; identity alone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        import warnings

        from torch.distributed.nn.functional import all_reduce  # differentiable; the newer functional collectives are not

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return all_reduce(tensor)
    return tensor


def bits_to_ids(bits: torch.Tensor) -> torch.Tensor:
    """(..., embed_dim) of 0/1 -> int64 ids, bit k worth 2**k."""
    weights = 2 ** torch.arange(bits.shape[-1], device=bits.device, dtype=torch.int64)
    return (bits.to(torch.int64) * weights).sum(-1)


def ids_to_bits(ids: torch.Tensor, embed_dim: int) -> torch.Tensor:
    """int64 ids -> (..., embed_dim) of 0/1."""
    shifts = torch.arange(embed_dim, device=ids.device, dtype=torch.int64)
    return (ids.to(torch.int64).unsqueeze(-1) >> shifts) & 1


class BinarySphericalQuantizer(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        inv_temperature: float = 100.0,
        group_size: int = 9,
        commit_weight: float = 0.25,
        entropy_weight: float = 0.1,
        codebook_entropy_weight: float = 1.0,
        l2_norm: bool = True,
        unit_codes: bool = True,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.inv_temperature = inv_temperature
        self.group_size = min(group_size, embed_dim)
        self.commit_weight, self.entropy_weight, self.codebook_entropy_weight = commit_weight, entropy_weight, codebook_entropy_weight
        self.l2_norm = l2_norm
        self.scale = 1.0 / math.sqrt(embed_dim) if unit_codes else 1.0
        codes = ids_to_bits(torch.arange(2**self.group_size), self.group_size).float()
        self.register_buffer("group_bits", codes, persistent=False)  # (2**g, g)

    def codes_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids_to_bits(ids, self.embed_dim).float() * 2.0 - 1.0) * self.scale

    def forward(self, z: torch.Tensor):
        """z (..., embed_dim) -> (quantised z, loss, info with ids and entropies)."""
        z = z if z.dtype == torch.float64 else z.float()
        if self.l2_norm:
            z = F.normalize(z, dim=-1)
        signs = torch.where(z > 0, 1.0, -1.0)
        hard = signs * self.scale
        quantized = z + (hard - z).detach()  # straight-through
        commitment = F.mse_loss(z, hard.detach(), reduction="none").sum(-1).mean()
        per_sample, codebook = self.entropies(z.reshape(-1, self.embed_dim))
        loss = self.commit_weight * commitment + self.entropy_weight * (per_sample - self.codebook_entropy_weight * codebook)
        info = {
            "ids": bits_to_ids(signs > 0),
            "commitment": commitment.detach(),
            "per_sample_entropy": per_sample.detach(),
            "codebook_entropy": codebook.detach(),
        }
        return quantized, loss, info

    def entropies(self, z: torch.Tensor):
        # log q(bit = 1) and log q(bit = 0) for every dimension: logits 4 * inv_T * z * scale
        logits = 4.0 * self.inv_temperature * self.scale * z
        log_one, log_zero = F.logsigmoid(logits), F.logsigmoid(-logits)
        p_one = log_one.exp()
        per_sample = -(p_one * log_one + (1.0 - p_one) * log_zero).sum(-1).mean()
        codebook = z.new_zeros(())
        count = _global_sum(z.new_tensor(float(z.shape[0])))
        for start in range(0, self.embed_dim, self.group_size):
            g = min(self.group_size, self.embed_dim - start)
            bits = self.group_bits[: 2**g, :g]
            log_q = log_one[:, start : start + g] @ bits.T + log_zero[:, start : start + g] @ (1.0 - bits).T  # (N, 2**g)
            mean_q = _global_sum(log_q.exp().sum(0)) / count
            codebook = codebook - (mean_q * torch.log(mean_q.clamp_min(1e-12))).sum()
        return per_sample, codebook
