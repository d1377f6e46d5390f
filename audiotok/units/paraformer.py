"""The streaming Paraformer-large encoder (FunASR `SANMEncoderChunkOpt`) as Step-Audio runs it.

Step-Audio's "vq02" features are the `enc_out` of FunASR's online Paraformer run in
240 ms steps with chunk_size [0, 4, 5] and encoder look-back 4. Each step embeds 4
new LFR frames (x sqrt(512), then a sinusoidal position code counted from 1 at 560
dims), puts the 5 frames before them in front (zeros before the start), and runs
that 9-frame window through 50 SAN-M blocks. In every block the window's queries
see the window itself plus the keys/values that the 4 previous windows cached (the
first 4 rows of each, at that block); the FSMN memory (a depthwise convolution over
v, kernel 11) sees the window only. The last 4 rows of each window, after the final
LayerNorm, are the output: one 512-dim frame per 60 ms.

A frame is recomputed in up to three windows and only one copy is kept, so a mask
over the whole utterance does not give these numbers. What does: every window of
a block depends on the windows before it only through the cached rows *at the same
layer*, so all windows of a recording go through a layer together, as one batch,
each gathering its 4 predecessors' cached rows from that batch. `encode_segments`
does that; a streaming session (`ParaformerStream`) calls the same code one window
at a time, and offline extraction calls it once per recording (or per block of
windows for very long ones), with several recordings in one batch.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from audiotok.units.features import Recipe
from audiotok.units.paraformer_frontend import ParaformerFrontend

log = logging.getLogger("audiotok")


@dataclass(frozen=True)
class EncoderConfig:
    input_size: int = 560
    output_size: int = 512
    attention_heads: int = 4
    linear_units: int = 2048
    num_blocks: int = 50
    kernel_size: int = 11


@dataclass(frozen=True)
class Chunking:
    """Step-Audio's call: chunk_size [0, step, overlap], encoder_chunk_look_back."""

    step: int = 4  # new frames per window
    overlap: int = 5  # frames before them that the window reads again
    look_back: int = 4  # previous windows whose cached rows each window attends to

    @property
    def window(self) -> int:
        return self.overlap + self.step


class SanmAttention(nn.Module):
    """Multi-head self-attention plus FSMN memory; parameter names as FunASR's MultiHeadedAttentionSANM."""

    def __init__(self, in_size: int, size: int, heads: int, kernel_size: int):
        super().__init__()
        self.size, self.heads = size, heads
        self.linear_q_k_v = nn.Linear(in_size, 3 * size)
        self.fsmn_block = nn.Conv1d(size, size, kernel_size, groups=size, bias=False)
        self.linear_out = nn.Linear(size, size)
        self.pad = ((kernel_size - 1) // 2, kernel_size - 1 - (kernel_size - 1) // 2)

    def forward(self, x, valid, history):
        """x [windows, rows, in_size]; valid [windows, rows]; history gathers the cached rows."""
        windows, rows, _ = x.shape
        q, k, v = self.linear_q_k_v(x).split(self.size, dim=-1)
        q, k_heads, v_heads = (t.reshape(windows, rows, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        # FSMN memory: zero padding at both ends of the window, whatever its length.
        v = v.masked_fill(~valid[..., None], 0.0)
        memory = self.fsmn_block(nn.functional.pad(v.transpose(1, 2), self.pad)).transpose(1, 2) + v
        past_k, past_v, past_valid = history(k_heads, v_heads)
        keys, values = torch.cat([past_k, k_heads], 2), torch.cat([past_v, v_heads], 2)
        seen = torch.cat([past_valid, valid], 1)[:, None, None, :]
        scores = torch.matmul(q * (q.shape[-1] ** -0.5), keys.transpose(-2, -1)).masked_fill(~seen, float("-inf"))
        context = torch.matmul(torch.softmax(scores, dim=-1), values).transpose(1, 2).reshape(windows, rows, self.size)
        return self.linear_out(context) + memory


class FeedForward(nn.Module):
    def __init__(self, size: int, units: int):
        super().__init__()
        self.w_1 = nn.Linear(size, units)
        self.w_2 = nn.Linear(units, size)

    def forward(self, x):
        return self.w_2(torch.relu(self.w_1(x)))


class SanmLayer(nn.Module):
    """Pre-LayerNorm SAN-M block; block 0 (560 -> 512) has no residual around its attention."""

    def __init__(self, in_size: int, config: EncoderConfig):
        super().__init__()
        size = config.output_size
        self.self_attn = SanmAttention(in_size, size, config.attention_heads, config.kernel_size)
        self.feed_forward = FeedForward(size, config.linear_units)
        self.norm1 = nn.LayerNorm(in_size, eps=1e-12)
        self.norm2 = nn.LayerNorm(size, eps=1e-12)
        self.residual = in_size == size

    def forward(self, x, valid, history):
        attended = self.self_attn(self.norm1(x), valid, history)
        x = x + attended if self.residual else attended
        return x + self.feed_forward(self.norm2(x))


class SanmEncoder(nn.Module):
    """State-dict keys as FunASR's SANMEncoderChunkOpt without its `encoder.` prefix."""

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.config = config
        self.encoders0 = nn.ModuleList([SanmLayer(config.input_size, config)])
        self.encoders = nn.ModuleList([SanmLayer(config.output_size, config) for _ in range(config.num_blocks - 1)])
        self.after_norm = nn.LayerNorm(config.output_size, eps=1e-12)

    @property
    def layers(self) -> list[SanmLayer]:
        return [*self.encoders0, *self.encoders]


def position_code(first: int, count: int, depth: int) -> torch.Tensor:
    """FunASR's StreamSinusoidalPositionEncoder rows for positions first+1 .. first+count (sin half, cos half)."""
    positions = torch.arange(first + 1, first + count + 1).float()
    increment = torch.log(torch.tensor([10000.0])) / (depth / 2 - 1)
    inverse = torch.exp(torch.arange(depth / 2).float() * -increment)
    angles = positions[:, None] * inverse[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class EncoderState:
    """What one recording carries from window to window: bounded, whatever its length."""

    def __init__(self, encoder: SanmEncoder, chunking: Chunking, device, dtype):
        c = encoder.config
        head_size = c.output_size // c.attention_heads
        self.position = 0  # frames embedded so far
        self.overlap = torch.zeros(chunking.overlap, c.input_size, device=device, dtype=dtype)
        shape = (chunking.look_back, c.attention_heads, chunking.step, head_size)
        # Rows cached by the last `look_back` windows, per layer; invalid before the first window.
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in encoder.layers]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in encoder.layers]
        self.cached = torch.zeros(chunking.look_back, dtype=torch.bool, device=device)


@dataclass
class Segment:
    """The next frames of one recording; only the final segment may end in a partial window."""

    frames: torch.Tensor  # [n, input_size] normalised LFR frames
    state: EncoderState
    final: bool


class History:
    """Gathers, for every window of a batch, the rows its predecessors cached at the current layer.

    Per layer, a bank holds each segment's carried rows (look_back windows) and then the
    first `step` rows of every window of the batch; index tensors made once pick from it.
    """

    def __init__(self, segments: list[Segment], counts: list[int], chunking: Chunking, device):
        self.segments, self.step = segments, chunking.step
        look_back = chunking.look_back
        index, valid, keep = [], [], []
        first = 0
        for g, (segment, count) in enumerate(zip(segments, counts, strict=True)):
            carried = segment.state.cached.tolist()

            def bank(e, g=g, first=first):  # the e-th of [carried windows..., this segment's windows...]
                return g * look_back + e if e < look_back else len(segments) * look_back + first + e - look_back

            for w in range(count):
                index.append([bank(w + j) for j in range(look_back)])
                valid.append([carried[w + j] if w + j < look_back else True for j in range(look_back)])
            keep.append([bank(count + j) for j in range(look_back)])
            first += count
        self.index = torch.tensor(index, device=device)
        self.valid = torch.tensor(valid, device=device).repeat_interleave(chunking.step, dim=1)
        self.keep = torch.tensor(keep, device=device)
        self.layer = 0

    def __call__(self, k_heads, v_heads):
        """Past keys and values [windows, heads, look_back*step, head_size] and which are real."""
        return self._past("keys", k_heads), self._past("values", v_heads), self.valid

    def _past(self, name: str, heads: torch.Tensor) -> torch.Tensor:
        per_segment = [getattr(segment.state, name) for segment in self.segments]
        bank = torch.cat([*(layers[self.layer] for layers in per_segment), heads[:, :, : self.step]])
        kept = bank[self.keep]  # what each segment carries on at this layer
        for g, layers in enumerate(per_segment):
            layers[self.layer] = kept[g]
        rows = bank[self.index]  # [windows, look_back, heads, step, head_size]
        return rows.permute(0, 2, 1, 3, 4).reshape(rows.shape[0], rows.shape[2], -1, rows.shape[4])


def embed_windows(encoder: SanmEncoder, segment: Segment, chunking: Chunking):
    """The segment's windows [count, overlap + step, input_size] and their real rows [count, rows].

    The frames are scaled by sqrt(output_size), get their position code, and follow the
    overlap frames the state carried (zeros before the start of the recording).
    """
    c, state = encoder.config, segment.state
    n = len(segment.frames)
    count = -(-n // chunking.step)
    device, dtype = state.overlap.device, state.overlap.dtype
    embedded = segment.frames.to(device, torch.float32) * (c.output_size**0.5)
    embedded = (embedded + position_code(state.position, n, c.input_size).to(device)).to(dtype)
    state.position += n
    sequence = torch.cat([state.overlap, embedded])
    state.overlap = sequence[len(sequence) - chunking.overlap :]
    padded = torch.cat([sequence, sequence.new_zeros(chunking.overlap + count * chunking.step - len(sequence), c.input_size)])
    windows = padded.unfold(0, chunking.window, chunking.step).transpose(1, 2)
    new_rows = (n - chunking.step * torch.arange(count, device=device)).clamp(max=chunking.step)
    valid = torch.arange(chunking.window, device=device)[None, :] < (chunking.overlap + new_rows)[:, None]
    return windows, valid


def encode_segments(encoder: SanmEncoder, segments: list[Segment], chunking: Chunking) -> list[torch.Tensor]:
    """Encoder output rows [n, output_size] for each segment, updating each segment's state."""
    for segment in segments:
        if len(segment.frames) % chunking.step and not segment.final:
            raise ValueError(f"a segment that is not final must hold whole windows of {chunking.step} frames")
    outputs = [torch.zeros(0, encoder.config.output_size) for _ in segments]
    live = [i for i, segment in enumerate(segments) if len(segment.frames)]
    if not live:
        return outputs
    windows, valid = zip(*(embed_windows(encoder, segments[i], chunking) for i in live), strict=True)
    counts = [len(w) for w in windows]
    history = History([segments[i] for i in live], counts, chunking, windows[0].device)
    x, mask = torch.cat(windows), torch.cat(valid)
    for layer_index, layer in enumerate(encoder.layers):
        history.layer = layer_index
        x = layer(x, mask, history)
    x = encoder.after_norm(x).float()
    first = 0
    for i, count in zip(live, counts, strict=True):
        state = segments[i].state
        state.cached = torch.cat([state.cached, torch.ones(count, dtype=torch.bool, device=state.cached.device)])[-chunking.look_back :]
        # Each window's rows after the overlap are its new frames: Step-Audio keeps those.
        outputs[i] = x[first : first + count, chunking.overlap :].reshape(-1, x.shape[-1])[: len(segments[i].frames)].cpu()
        first += count
    return outputs


class ParaformerModel:
    """Frontend + encoder + Step-Audio's chunking: `encode(list of waves)` offline, `stream()` online."""

    def __init__(self, frontend: ParaformerFrontend, encoder: SanmEncoder, chunking: Chunking = Chunking(), max_windows: int = 1024):
        self.frontend = frontend
        self.encoder = encoder.eval()
        self.chunking = chunking
        self.max_windows = max_windows  # windows per batch: bounds memory for hours-long audio

    @property
    def dim(self) -> int:
        return self.encoder.config.output_size

    def new_state(self) -> EncoderState:
        param = next(self.encoder.parameters())
        return EncoderState(self.encoder, self.chunking, param.device, param.dtype)

    def frame_count(self, samples: int) -> int:
        return self.frontend.frame_count(samples)

    @torch.inference_mode()
    def encode(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """enc_out [frames, 512] per recording; recordings share batches of up to max_windows windows."""
        features = [self.frontend(w) for w in waves]
        outputs: list = [None] * len(waves)
        step = self.chunking.step
        batch: list[int] = []

        def run(indices):
            segments = [Segment(features[i], self.new_state(), final=True) for i in indices]
            for i, rows in zip(indices, encode_segments(self.encoder, segments, self.chunking), strict=True):
                outputs[i] = rows.numpy()

        for i in sorted(range(len(waves)), key=lambda i: -len(features[i])):
            windows = -(-len(features[i]) // step)
            if windows > self.max_windows:
                # One long recording on its own, in blocks that carry their state forward.
                state, frames, parts = self.new_state(), features[i], []
                block = self.max_windows * step
                for start in range(0, len(frames), block):
                    final = start + block >= len(frames)
                    parts += encode_segments(self.encoder, [Segment(frames[start : start + block], state, final)], self.chunking)
                outputs[i] = torch.cat(parts).numpy()
                continue
            if batch and sum(-(-len(features[j]) // step) for j in batch) + windows > self.max_windows:
                run(batch)
                batch = []
            batch.append(i)
        if batch:
            run(batch)
        return outputs

    def stream(self) -> "ParaformerStream":
        return ParaformerStream(self)


class ParaformerStream:
    """One streaming session: feed(samples) -> new enc_out rows; finish() -> the rest.

    Its state is bounded: under one LFR window of audio and fbank rows, fewer than 4
    pending frames, 5 overlap frames and each layer's 16 cached key/value rows.
    """

    def __init__(self, model: ParaformerModel):
        self.model = model
        self.frontend = model.frontend.stream()
        self.state = model.new_state()
        self.pending = torch.zeros(0, model.frontend.config.dim)
        self.finished = False

    @torch.inference_mode()
    def feed(self, samples: np.ndarray) -> np.ndarray:
        if self.finished:
            raise RuntimeError("this stream is finished")
        self.pending = torch.cat([self.pending, self.frontend.feed(samples)])
        whole = len(self.pending) // self.model.chunking.step * self.model.chunking.step
        return self._encode(whole, final=False)

    @torch.inference_mode()
    def finish(self) -> np.ndarray:
        self.finished = True
        self.pending = torch.cat([self.pending, self.frontend.finish()])
        return self._encode(len(self.pending), final=True)

    def _encode(self, count: int, final: bool) -> np.ndarray:
        if count == 0:
            return np.zeros((0, self.model.dim), np.float32)
        frames, self.pending = self.pending[:count], self.pending[count:]
        return encode_segments(self.model.encoder, [Segment(frames, self.state, final)], self.model.chunking)[0].numpy()


class ParaformerBackend:
    """The extract-feats backend: whole recordings in, enc_out [frames, 512] at 60 ms out."""

    whole_recordings = True  # the streaming encoder has bounded context: never window it
    padding_safe = True  # recordings of any lengths share a batch exactly (masks, no padding)

    def __init__(self, model: ParaformerModel, device: str, dtype: str, model_name: str, model_hash: str, options: dict):
        self.model = model
        self.sample_rate = model.frontend.config.sample_rate
        self.hop = model.frontend.config.hop  # samples per output frame (960: 60 ms)
        self.dim = model.dim
        self.batching = not (device == "cpu" and dtype == "float32")
        self.recipe = Recipe("paraformer", self.sample_rate, self.sample_rate / self.hop, self.dim, model=model_name, model_hash=model_hash, options=options)

    def output_frames(self, samples: int) -> int:
        return self.model.frame_count(samples)

    def __call__(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(x, dtype=np.float32) for x in self.model.encode(waves)]


def chunking_options(chunking: Chunking) -> dict:
    return {"chunk_size": [0, chunking.step, chunking.overlap], "encoder_chunk_look_back": chunking.look_back}
