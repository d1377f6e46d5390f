"""The TASTE model: text-aligned speech embeddings, their tokens, and the S3-unit decoder.

    text embeddings [N, Dt] ──proj + text positions──► queries ─┐
    Whisper encoder features [T, Dw] ──proj──► keys/values ─────┴► aggregator blocks
        (self-attention among the text queries, cross-attention over the frames)
        ──► a read-out attention over the frames (no residual from the queries)
        ──► one speech embedding per text token [N, d] ──(RVQ)──► codes [N, C]
    fused = (1 - g) * proj(text embedding) + g * speech embedding   (g a learned gate)
    decoder input: [fused prefix (N)] [BOS] [u1 ... uU]  ->  predicts u1 ... uU, EOS

The decoder is a prefix LM: prefix positions see the whole prefix, unit positions
see the prefix and the units before them (teacher forcing). Each utterance is
packed from position 0 (prefix, then units) and right-padded, so an utterance's
positions, and so its outputs, do not depend on what else is in the batch. The
decoder is either a small Transformer built here or a local transformers model fed
`inputs_embeds` with a 4-D mask (frozen or fine-tuned); either way a new unit
embedding table and a new head over the unit vocabulary (+ EOS) are trained.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.taste.rvq import ResidualVQ

IGNORE = -100


@dataclass
class Batch:
    keys: list
    text_emb: torch.Tensor  # [B, N, Dt]
    text_mask: torch.Tensor  # [B, N] bool
    whisper: torch.Tensor  # [B, T, Dw]
    whisper_mask: torch.Tensor  # [B, T] bool
    units: torch.Tensor  # [B, U] long (0 where padded)
    unit_lengths: torch.Tensor  # [B] long

    def to(self, device, dtype=None) -> "Batch":
        def moved(t):
            return t.to(device, dtype) if dtype is not None and t.is_floating_point() else t.to(device)

        return Batch(self.keys, *(moved(t) for t in (self.text_emb, self.text_mask, self.whisper, self.whisper_mask, self.units, self.unit_lengths)))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, context_dim: int | None = None):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(context_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """allowed: bool [B, Lq, Lk] or [B, 1, Lk]; True where a query may look at a key."""
        b, lq, d = x.shape
        h = self.heads
        q = self.query(x).view(b, lq, h, d // h).transpose(1, 2)
        k, v = self.key_value(context).view(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed.unsqueeze(1), dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, lq, d))


def feed_forward(dim: int, ratio: float, dropout: float) -> nn.Sequential:
    hidden = int(dim * ratio)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class AggregatorBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_ratio: float, dropout: float):
        super().__init__()
        self.norm_self, self.norm_cross, self.norm_ffn, self.norm_context = (nn.LayerNorm(dim) for _ in range(4))
        self.self_attention = Attention(dim, heads, dropout)
        self.cross_attention = Attention(dim, heads, dropout)
        self.ffn = feed_forward(dim, ffn_ratio, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, text_allowed, context, context_allowed):
        h = self.norm_self(x)
        x = x + self.drop(self.self_attention(h, h, text_allowed))
        x = x + self.drop(self.cross_attention(self.norm_cross(x), self.norm_context(context), context_allowed))
        return x + self.drop(self.ffn(self.norm_ffn(x)))


class Aggregator(nn.Module):
    """Text tokens as queries over Whisper frames -> one speech embedding per text token."""

    def __init__(self, text_dim: int, whisper_dim: int, dim: int, layers: int, heads: int, ffn_ratio: float, dropout: float, max_text_tokens: int):
        super().__init__()
        self.text_proj = nn.Linear(text_dim, dim)
        self.text_positions = nn.Embedding(max_text_tokens, dim)
        self.speech_proj = nn.Linear(whisper_dim, dim)
        self.blocks = nn.ModuleList(AggregatorBlock(dim, heads, ffn_ratio, dropout) for _ in range(layers))
        # The read-out has no residual from the queries: a speech embedding holds only what was
        # read from the frames (text and position decide where to read, not what comes out),
        # so it cannot pass the text's own identity or position on to the tokens.
        self.norm_query, self.norm_context = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.readout = Attention(dim, heads, dropout)
        self.norm_readout = nn.LayerNorm(dim)
        self.readout_ffn = feed_forward(dim, ffn_ratio, dropout)
        self.norm = nn.LayerNorm(dim)
        self.max_text_tokens = max_text_tokens

    def forward(self, text_emb, text_mask, whisper, whisper_mask) -> torch.Tensor:
        n = text_emb.shape[1]
        if n > self.max_text_tokens:
            raise ValueError(f"{n} text tokens; the model holds positions for {self.max_text_tokens} (model.max_text_tokens)")
        x = self.text_proj(text_emb) + self.text_positions(torch.arange(n, device=text_emb.device))
        context = self.speech_proj(whisper)
        # Padded queries still see the real tokens (never an all-masked row); their outputs are ignored.
        text_allowed = text_mask.unsqueeze(1)
        context_allowed = whisper_mask.unsqueeze(1)
        for block in self.blocks:
            x = block(x, text_allowed, context, context_allowed)
        speech = self.readout(self.norm_query(x), self.norm_context(context), context_allowed)
        return self.norm(speech + self.readout_ffn(self.norm_readout(speech)))


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_ratio: float, dropout: float):
        super().__init__()
        self.norm_attention, self.norm_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = Attention(dim, heads, dropout)
        self.ffn = feed_forward(dim, ffn_ratio, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, allowed):
        h = self.norm_attention(x)
        x = x + self.drop(self.attention(h, h, allowed))
        return x + self.drop(self.ffn(self.norm_ffn(x)))


class TransformerDecoder(nn.Module):
    """A small pre-LN Transformer over given embeddings, with learned positions."""

    def __init__(self, dim: int, layers: int, heads: int, ffn_ratio: float, dropout: float, max_positions: int):
        super().__init__()
        self.hidden_size = dim
        self.positions = nn.Embedding(max_positions, dim)
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, ffn_ratio, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.max_positions = max_positions

    def forward(self, embeds, allowed, positions):
        x = embeds + self.positions(positions)
        for block in self.blocks:
            x = block(x, allowed)
        return self.norm(x)


class HFDecoder(nn.Module):
    """A local transformers model (its base, without the LM head) fed inputs_embeds."""

    def __init__(self, path: str, freeze: bool):
        super().__init__()
        from audiotok.errors import AudiotokError
        from audiotok.units.encoders import quiet_transformers

        quiet_transformers()  # no load report for the LM head a base model leaves out
        try:
            from transformers import AutoModel

            self.backbone = AutoModel.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
        except OSError as err:
            raise AudiotokError(
                f"cannot load the decoder LM from {path}: {str(err).splitlines()[0]}", "decoder.path: a local transformers model directory"
            ) from None
        self.hidden_size = self.backbone.config.hidden_size
        self.max_positions = getattr(self.backbone.config, "max_position_embeddings", None) or 1 << 30
        self.frozen = freeze
        if freeze:
            self.backbone.requires_grad_(False)

    def forward(self, embeds, allowed, positions):
        additive = torch.zeros(allowed.shape, dtype=embeds.dtype, device=embeds.device).masked_fill(~allowed, torch.finfo(embeds.dtype).min)
        return self.backbone(inputs_embeds=embeds, attention_mask=additive.unsqueeze(1), position_ids=positions, use_cache=False).last_hidden_state


def prefix_lm_layout(prefix_lengths: torch.Tensor, unit_lengths: torch.Tensor):
    """Packed positions: prefix (N_b), BOS, units (U_b). -> (allowed [B, L, L], positions [B, L],
    is_prefix [B, L], valid [B, L]) with L = max(N_b + 1 + U_b)."""
    lengths = prefix_lengths + 1 + unit_lengths
    width = int(lengths.max())
    position = torch.arange(width, device=lengths.device).unsqueeze(0)
    valid = position < lengths.unsqueeze(1)
    is_prefix = position < prefix_lengths.unsqueeze(1)
    causal = position.unsqueeze(2) >= position.unsqueeze(1)  # [1, L(query), L(key)]
    both_prefix = is_prefix.unsqueeze(2) & is_prefix.unsqueeze(1)
    allowed = (causal | both_prefix) & valid.unsqueeze(1)
    return allowed, position.expand(len(lengths), -1), is_prefix, valid


class TasteModel(nn.Module):
    def __init__(self, config: dict, text_dim: int, whisper_dim: int):
        super().__init__()
        self.config = {
            "model": dict(config["model"]),
            "rvq": dict(config["rvq"]),
            "decoder": dict(config["decoder"]),
            "text_dim": text_dim,
            "whisper_dim": whisper_dim,
        }
        m, r, dec = config["model"], config["rvq"], config["decoder"]
        self.aggregator = Aggregator(text_dim, whisper_dim, m["dim"], m["layers"], m["heads"], m["ffn_ratio"], m["dropout"], m["max_text_tokens"])
        self.rvq = (
            ResidualVQ(m["dim"], r["codebooks"], r["size"], r["commitment"], r["codebook_weight"], r["ema"], r["decay"], r["dead_code_threshold"])
            if r["enabled"]
            else None
        )
        self.zero_speech = m["zero_speech"]
        self.fusion_text = nn.Linear(text_dim, m["dim"])
        self.fusion_gate = nn.Parameter(torch.zeros(()))  # sigmoid(0) = 0.5: text and speech weighed equally at first
        if dec["type"] == "hf":
            self.decoder = HFDecoder(dec["path"], dec["freeze"])
        else:
            self.decoder = TransformerDecoder(dec["dim"], dec["layers"], dec["heads"], dec["ffn_ratio"], dec["dropout"], dec["max_positions"])
        hidden = self.decoder.hidden_size
        self.unit_vocab = dec["unit_vocab"]
        self.eos, self.bos = self.unit_vocab, self.unit_vocab + 1  # EOS is a head class, BOS only an input
        self.prefix_proj = nn.Linear(m["dim"], hidden)
        self.unit_embedding = nn.Embedding(self.unit_vocab + 2, hidden)  # units, (EOS, unused as input), BOS
        self.head = nn.Linear(hidden, self.unit_vocab + 1)  # units and EOS

    # ---------------------------------------------------------------- the text-aligned side
    def speech_embeddings(self, batch: Batch) -> torch.Tensor:
        return self.aggregator(batch.text_emb, batch.text_mask, batch.whisper, batch.whisper_mask)

    def encode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (speech embeddings [B, N, d], RVQ codes [B, N, C] or None)."""
        speech = self.speech_embeddings(batch)
        return speech, (self.rvq.encode(speech) if self.rvq is not None else None)

    def prefix(self, batch: Batch, zero_speech: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        speech = self.speech_embeddings(batch)
        quant_loss, codes = speech.new_zeros(()), None
        if self.rvq is not None:
            speech, codes, quant_loss = self.rvq(speech, batch.text_mask)
        if zero_speech or self.zero_speech:
            speech = torch.zeros_like(speech)
        gate = torch.sigmoid(self.fusion_gate)
        fused = (1 - gate) * self.fusion_text(batch.text_emb) + gate * speech
        return self.prefix_proj(fused), quant_loss, codes

    # ---------------------------------------------------------------- the decoder
    def unit_logits(self, prefix: torch.Tensor, prefix_lengths: torch.Tensor, units: torch.Tensor, unit_lengths: torch.Tensor) -> torch.Tensor:
        """Logits [B, U+1, vocab+1] for targets u1..uU, EOS of each utterance (teacher forcing)."""
        b = len(prefix_lengths)
        allowed, positions, is_prefix, valid = prefix_lm_layout(prefix_lengths, unit_lengths)
        width = allowed.shape[-1]
        if width > self.decoder.max_positions:
            raise ValueError(f"{width} decoder positions (text tokens + units + 1); decoder.max_positions is {self.decoder.max_positions}")
        inputs = torch.cat([units.new_full((b, 1), self.bos), units], 1)  # BOS u1 .. uU
        offset = (positions - prefix_lengths.unsqueeze(1)).clamp(0, inputs.shape[1] - 1)
        unit_embeds = self.unit_embedding(inputs.gather(1, offset))
        prefix_wide = F.pad(prefix, (0, 0, 0, width - prefix.shape[1]))
        embeds = torch.where(is_prefix.unsqueeze(-1), prefix_wide, unit_embeds) * valid.unsqueeze(-1)
        hidden = self.decoder(embeds, allowed, positions)
        index = (prefix_lengths.unsqueeze(1) + torch.arange(units.shape[1] + 1, device=units.device)).clamp(max=width - 1)
        gathered = hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return self.head(gathered)

    def targets(self, units: torch.Tensor, unit_lengths: torch.Tensor) -> torch.Tensor:
        """[B, U+1]: u1..uU, EOS, then IGNORE."""
        b, u = units.shape
        k = torch.arange(u + 1, device=units.device).unsqueeze(0)
        padded = torch.cat([units, units.new_zeros((b, 1))], 1)
        out = torch.where(k < unit_lengths.unsqueeze(1), padded, torch.full_like(padded, IGNORE))
        return torch.where(k == unit_lengths.unsqueeze(1), torch.full_like(padded, self.eos), out)

    def forward(self, batch: Batch, zero_speech: bool = False) -> dict:
        prefix, quant_loss, codes = self.prefix(batch, zero_speech)
        prefix_lengths = batch.text_mask.sum(1)
        logits = self.unit_logits(prefix, prefix_lengths, batch.units, batch.unit_lengths)
        targets = self.targets(batch.units, batch.unit_lengths)
        # At least fp32 (bf16 logits under autocast), float64 kept as it is.
        scores = logits.flatten(0, 1)
        ce = F.cross_entropy(scores.to(torch.promote_types(scores.dtype, torch.float32)), targets.flatten(), ignore_index=IGNORE)
        return {"logits": logits, "targets": targets, "ce": ce, "quant_loss": quant_loss, "loss": ce + quant_loss, "codes": codes}

    @torch.no_grad()
    def generate(self, batch: Batch, max_units: int) -> list[list[int]]:
        """Greedy free-running units for each utterance (stops at EOS or max_units); no cache:
        the sequence is re-run each step, which is simple and fast enough for a few examples."""
        prefix, _, _ = self.prefix(batch)
        prefix_lengths = batch.text_mask.sum(1)
        b = len(prefix_lengths)
        units = torch.zeros((b, 0), dtype=torch.long, device=prefix.device)
        done = torch.zeros(b, dtype=torch.bool, device=prefix.device)
        produced = [[] for _ in range(b)]
        for step in range(max_units):
            lengths = torch.full((b,), step, dtype=torch.long, device=prefix.device)
            logits = self.unit_logits(prefix, prefix_lengths, units, lengths)[:, step]
            choice = logits.argmax(-1)
            for i in range(b):
                if not done[i]:
                    if int(choice[i]) == self.eos:
                        done[i] = True
                    else:
                        produced[i].append(int(choice[i]))
            if bool(done.all()):
                break
            units = torch.cat([units, choice.clamp(max=self.unit_vocab - 1).unsqueeze(1)], 1)
        return produced


def unit_scores(logits: torch.Tensor, targets: torch.Tensor, eos: int, top_k: int) -> dict:
    """Counts over unit targets (EOS excluded): correct, correct in the top k, total."""
    real = (targets != IGNORE) & (targets != eos)
    best = logits.argmax(-1)
    k = min(top_k, logits.shape[-1])
    in_top = (logits.topk(k, -1).indices == targets.unsqueeze(-1)).any(-1)
    return {"correct": int((best.eq(targets) & real).sum()), "top_k": int((in_top & real).sum()), "total": int(real.sum())}


def trainable_state(model: TasteModel) -> dict:
    """The state to save: everything but a frozen LM's own weights (those reload from its directory)."""
    frozen = isinstance(model.decoder, HFDecoder) and model.decoder.frozen
    return {k: v for k, v in model.state_dict().items() if not (frozen and k.startswith("decoder.backbone."))}


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
