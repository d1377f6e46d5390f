"""The TASTE model: shapes, the prefix-LM mask, RVQ codes, batch = one at a time, both decoders, config checks."""

import numpy as np
import pytest
import torch

from audiotok.errors import UsageError
from audiotok.taste import config as taste_config
from audiotok.taste.data import Item, collate
from audiotok.taste.model import IGNORE, TasteModel, prefix_lm_layout, trainable_state, unit_scores
from audiotok.taste.rvq import ResidualVQ

TEXT_DIM, WHISPER_DIM = 12, 16


def random_items(count=3, seed=0, vocab=64, text_dim=TEXT_DIM, whisper_dim=WHISPER_DIM):
    """Utterances of different lengths: text tokens, Whisper frames and units all differ."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        n, t, u = 3 + i, 20 + 7 * i, 6 + 3 * i
        items.append(
            Item(
                f"utt{i}",
                f"text {i}",
                np.arange(n),
                rng.standard_normal((n, text_dim)).astype(np.float32),
                rng.standard_normal((t, whisper_dim)).astype(np.float32),
                rng.integers(0, vocab, u),
            )
        )
    return items


def tiny_model(seed=0, **overrides) -> TasteModel:
    config = taste_config.resolve({"preset": "tiny", **overrides})
    torch.manual_seed(seed)
    return TasteModel(config, TEXT_DIM, WHISPER_DIM)


def test_shapes_and_code_range():
    model = tiny_model()
    items = random_items()
    out = model(collate(items))
    b, u = len(items), max(len(i.units) for i in items)
    assert out["logits"].shape == (b, u + 1, 64 + 1)  # units u1..uU + EOS; classes: 64 units + EOS
    assert out["codes"].shape == (b, max(len(i.text_ids) for i in items), 2)
    assert out["codes"].min() >= 0 and out["codes"].max() < 16
    assert torch.isfinite(out["loss"]) and out["quant_loss"] > 0
    targets = out["targets"]
    for row, item in zip(targets, items):
        assert row[: len(item.units)].tolist() == item.units.tolist() and row[len(item.units)] == model.eos
        assert (row[len(item.units) + 1 :] == IGNORE).all()


def test_prefix_lm_mask_prefix_sees_itself_units_are_causal():
    allowed, positions, is_prefix, valid = prefix_lm_layout(torch.tensor([2, 1]), torch.tensor([1, 3]))
    # utterance 0: P P B u1 (+1 padding); utterance 1: P B u1 u2 u3
    expected0 = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    expected1 = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(allowed[0], expected0) and torch.equal(allowed[1], expected1)
    assert valid.tolist() == [[True] * 4 + [False], [True] * 5] and positions[1].tolist() == [0, 1, 2, 3, 4]


def test_changing_a_future_unit_leaves_earlier_logits_unchanged():
    model = tiny_model().eval()
    item = random_items(1)[0]
    batch = collate([item])
    before = model(batch)["logits"][0]
    k = 4
    batch.units[0, k] = (batch.units[0, k] + 1) % 64
    after = model(batch)["logits"][0]
    # logits[j] predicts unit j from units < j: unit k is an input from position k + 1 on.
    assert torch.equal(before[: k + 1], after[: k + 1])
    assert not torch.allclose(before[k + 1 :], after[k + 1 :])


def test_speech_reaches_the_prefix_and_zeroing_it_changes_the_logits():
    model = tiny_model().eval()
    batch = collate(random_items(1))
    plain, zeroed = model(batch)["logits"], model(batch, zero_speech=True)["logits"]
    batch.whisper += 1.0
    moved = model(batch)["logits"]
    assert not torch.allclose(plain, zeroed) and not torch.allclose(plain, moved)


@pytest.mark.parametrize("rvq", [True, False])
def test_a_batch_equals_its_items_one_at_a_time(rvq):
    model = tiny_model(rvq={"enabled": rvq}).eval()
    items = random_items(3)
    together = model(collate(items))
    for i, item in enumerate(items):
        alone = model(collate([item]))
        u = len(item.units)
        torch.testing.assert_close(together["logits"][i, : u + 1], alone["logits"][0], rtol=0, atol=1e-5)
        if rvq:
            assert torch.equal(together["codes"][i, : len(item.text_ids)], alone["codes"][0])
    assert model.generate(collate(items), 4) == [model.generate(collate([item]), 4)[0] for item in items]


def test_hf_decoder_frozen_batch_equality_and_saved_state(tiny_text_model_dir):
    model = tiny_model(decoder={"type": "hf", "path": str(tiny_text_model_dir), "freeze": True})
    backbone = [p for n, p in model.named_parameters() if n.startswith("decoder.backbone.")]
    assert backbone and not any(p.requires_grad for p in backbone)
    items = random_items(3)
    model.train()
    model(collate(items))["loss"].backward()
    assert all(p.grad is None for p in backbone) and model.unit_embedding.weight.grad is not None
    assert not any(k.startswith("decoder.backbone.") for k in trainable_state(model))
    model.eval()
    together = model(collate(items))["logits"]
    for i, item in enumerate(items):
        torch.testing.assert_close(together[i, : len(item.units) + 1], model(collate([item]))["logits"][0], rtol=0, atol=1e-5)
    unfrozen = tiny_model(decoder={"type": "hf", "path": str(tiny_text_model_dir), "freeze": False})
    assert any(k.startswith("decoder.backbone.") for k in trainable_state(unfrozen))


def test_hf_decoder_prefix_mask_is_respected(tiny_text_model_dir):
    model = tiny_model(decoder={"type": "hf", "path": str(tiny_text_model_dir)}).eval()
    batch = collate(random_items(1))
    before = model(batch)["logits"][0]
    batch.units[0, 3] = (batch.units[0, 3] + 1) % 64
    after = model(batch)["logits"][0]
    torch.testing.assert_close(before[:4], after[:4], rtol=0, atol=1e-6)
    assert not torch.allclose(before[4:], after[4:])


def test_rvq_codes_straight_through_and_padding():
    torch.manual_seed(0)
    rvq = ResidualVQ(8, codebooks=3, size=5, ema=True, decay=0.5)
    z = torch.randn(2, 4, 8, requires_grad=True)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    out, codes, loss = rvq(z, mask)
    assert codes.shape == (2, 4, 3) and codes.min() >= 0 and codes.max() < 5 and bool(rvq.initialised)
    out.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through: identity gradient
    rvq.eval()
    assert torch.equal(rvq.encode(z.detach()), rvq(z.detach(), mask)[1])
    # Each codebook quantises what the earlier ones left: the reconstruction error never grows.
    errors = []
    residual = z.detach()
    for c in range(3):
        residual = residual - rvq.embed[c][codes[..., c]]
        errors.append(float((residual[mask] ** 2).sum()))
    assert errors == sorted(errors, reverse=True)
    # Padding moves no codebook: an EMA step gives the same codebooks whatever the padded positions hold.
    rvq.train()
    state = {k: v.clone() for k, v in rvq.state_dict().items()}
    rvq(z.detach(), mask)
    plain = rvq.embed.clone()
    rvq.load_state_dict(state)
    z2 = z.detach().clone()
    z2[~mask] = 100.0
    rvq(z2, mask)
    assert torch.equal(rvq.embed, plain) and not torch.equal(plain, state["embed"])


def test_rvq_without_ema_learns_codebooks_by_gradient():
    torch.manual_seed(0)
    rvq = ResidualVQ(4, codebooks=2, size=3, ema=False)
    z = torch.randn(1, 5, 4)
    _, _, loss = rvq(z, torch.ones(1, 5, dtype=torch.bool))
    loss.backward()
    assert rvq.embed.grad is not None and rvq.embed.grad.abs().sum() > 0


def test_unit_scores_count_units_not_eos():
    logits = torch.tensor([[[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])  # predicts 1, 0, EOS(2)
    targets = torch.tensor([[1, 1, 2]])
    assert unit_scores(logits, targets, eos=2, top_k=2) == {"correct": 1, "top_k": 2, "total": 2}


def test_unknown_config_key_names_it_and_presets_load():
    with pytest.raises(UsageError, match="unknown config key 'rvq.codebook'"):
        taste_config.resolve({"rvq": {"codebook": 3}})
    with pytest.raises(UsageError, match="model.dim .* multiple of model.heads"):
        taste_config.resolve({"model": {"dim": 30, "heads": 4}})
    with pytest.raises(UsageError, match="decoder.path"):
        taste_config.resolve({"decoder": {"type": "hf"}})
    for preset in taste_config.PRESETS:
        assert taste_config.load(preset)["decoder"]["type"] == "transformer"


def test_rvq_under_bf16_autocast_searches_in_fp32():
    torch.manual_seed(0)
    rvq = ResidualVQ(16, 3, 8, ema=True).eval()
    rvq.initialised.fill_(True)
    z, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    plain, plain_codes, plain_loss = rvq(z, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed, mixed_codes, mixed_loss = rvq(z.to(torch.bfloat16), mask)
    assert mixed.dtype == torch.float32 and torch.equal(mixed_codes, rvq(z.to(torch.bfloat16).float(), mask)[1])
    assert torch.equal(plain_codes, rvq.encode(z)) and plain.shape == mixed.shape and float(mixed_loss) >= 0 and float(plain_loss) >= 0


@pytest.mark.parametrize("decoder", ["transformer", "hf"])
def test_a_bf16_autocast_step_runs_and_stays_close_to_fp32(decoder, tiny_text_model_dir):
    # What taste-train does on a GPU (optim.mixed_precision), checked here with the CPU's autocast.
    overrides = {"decoder": {"type": "hf", "path": str(tiny_text_model_dir), "freeze": False}} if decoder == "hf" else {}
    model = tiny_model(**overrides).eval()  # eval: the RVQ's EMA codebooks stay put between the two passes
    batch = collate(random_items())
    with torch.no_grad():
        reference = model(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(batch)
    assert abs(float(mixed["ce"]) - float(reference["ce"])) < 0.05 * float(reference["ce"])
    assert mixed["codes"].shape == reference["codes"].shape
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        step = model(batch)
    step["loss"].backward()
    assert torch.isfinite(step["loss"]) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
