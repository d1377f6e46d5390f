"""Each BiCodec part against facts that do not come from its own code."""

import numpy as np
import torch

from audiotok.bicodec.quantizers import FSQ, FactorizedVQ, ResidualFSQ
from audiotok.bicodec.speaker import AttentiveStatsPool, PerceiverResampler, SpeakerTokenizer
from audiotok.bicodec.vocos import FeatureEncoder


def test_fsq_level_arithmetic():
    fsq = FSQ([4] * 6)
    assert fsq.codebook_size == 4096
    # Each dim lands on one of 4 levels, digits 0..3, read in base 4 with the first dim least significant.
    z = torch.tensor([[-50.0] * 6, [50.0] * 6, [0.0] * 6, [50.0, -50.0, 0.0, 0.0, 0.0, 0.0]])
    codes, indices = fsq(z)
    assert indices.tolist() == [0, 4095, 2 * sum(4**i for i in range(6)), 3 + 0 * 4 + 2 * (16 + 64 + 256 + 1024)]
    assert set(codes.unique().tolist()) <= {-1.0, -0.5, 0.0, 0.5}
    levels = FSQ([3, 5])
    _, odd = levels(torch.tensor([[0.0, 0.0], [9.0, 9.0], [-9.0, -9.0]]))
    assert odd.tolist() == [1 + 2 * 3, 2 + 4 * 3, 0]  # odd levels are centred: 0 -> the middle level


def test_residual_fsq_indices_cover_the_token_grid():
    torch.manual_seed(0)
    quantizer = ResidualFSQ([4] * 6, 1, dim=16)
    with torch.no_grad():
        quantizer.project_in.weight.normal_(0, 3.0)
    indices = quantizer(torch.randn(2, 16, 32))
    assert indices.shape == (2, 1, 32) and indices.dtype == torch.int32
    assert 0 <= int(indices.min()) and int(indices.max()) < 4096 and len(indices.unique()) > 8


def test_factorized_vq_is_the_nearest_codeword_by_cosine():
    torch.manual_seed(0)
    vq = FactorizedVQ(input_dim=12, codebook_size=300, codebook_dim=8)
    latents = torch.randn(3, 12, 20)
    indices = vq(latents)
    projected = vq.in_project(latents).transpose(1, 2)  # [B, T, 8]
    cosine = torch.nn.functional.cosine_similarity(projected[:, :, None, :], vq.codebook.weight[None, None], dim=-1)
    assert torch.equal(indices, cosine.argmax(-1))
    with torch.no_grad():  # scale-free: scaling a codeword does not move it
        vq.codebook.weight.mul_(torch.rand(300, 1) * 10 + 0.1)
    assert torch.equal(vq(latents), indices)


def test_attentive_stats_pooling_with_flat_attention_is_mean_and_std():
    pool = AttentiveStatsPool(6, bottleneck=4)
    with torch.no_grad():
        pool.linear2.weight.zero_()
        pool.linear2.bias.zero_()
    x = torch.randn(2, 6, 50)
    out = pool(x)
    torch.testing.assert_close(out[:, :6], x.mean(-1))
    torch.testing.assert_close(out[:, 6:], x.std(-1, unbiased=False), atol=1e-5, rtol=1e-5)


def test_speaker_branch_shapes():
    speaker = SpeakerTokenizer(input_dim=128, out_dim=32, latent_dim=16, token_num=32, fsq_levels=[4] * 6, fsq_num_quantizers=1).eval()
    tokens = speaker(torch.rand(3, 128, 301))
    assert tokens.shape == (3, 1, 32)
    resampler = PerceiverResampler(dim=16, dim_context=1536, num_latents=32)
    latents = resampler(torch.randn(2, 301, 1536))
    assert latents.shape == (2, 32, 16)
    # RMSNorm with unit gain: every latent has norm sqrt(dim).
    torch.testing.assert_close(latents.norm(dim=-1), torch.full((2, 32), 4.0))


def test_encoder_padding_does_not_reach_real_frames():
    torch.manual_seed(0)
    encoder = FeatureEncoder(10, 8, 16, 2, 6).eval()
    short, long = torch.randn(1, 10, 7), torch.randn(1, 10, 19)
    batch = torch.zeros(2, 10, 19)
    batch[0, :, :7] = short[0]
    batch[0, :, 7:] = 1e3  # garbage in the padding must not leak
    batch[1] = long[0]
    with torch.no_grad():
        out = encoder(batch, torch.tensor([7, 19]))
        torch.testing.assert_close(out[0, :, :7], encoder(short, torch.tensor([7]))[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(out[1], encoder(long, torch.tensor([19]))[0], atol=1e-5, rtol=0)
    assert np.isfinite(out.numpy()).all()
