"""Utterances of any length <-> token grids.

A model sees windows of at most `input_length` frames (its time position table).
An utterance's mel is padded with silence (-1, i.e. -80 dB) to a multiple of the
patch size in time, then cut into consecutive windows of `input_length` frames;
the last window is shorter (any multiple of the patch). Padding only to the
patch keeps every patch partly real, so no attention mask is needed and a short
clip costs no more than its own length; fixed windows keep every position the
model sees one it was trained on. The utterance's tokens are the windows' grids
concatenated in time: (time patches, mel bands), read time-major. Decoding cuts
the grid at the same window boundaries; the known frame count trims the padding.
"""

import torch

SILENCE = -1.0


def pad_frames(mel: torch.Tensor, multiple: int) -> torch.Tensor:
    extra = -mel.shape[0] % multiple
    if extra == 0:
        return mel
    return torch.cat([mel, mel.new_full((extra, mel.shape[1]), SILENCE)])


def _windows(length: int, window: int) -> list[tuple[int, int]]:
    return [(start, min(start + window, length)) for start in range(0, length, window)]


def _run_windows(function, grid: torch.Tensor, window: int) -> torch.Tensor:
    """Apply `function` to equal-length windows together, the shorter tail on its own."""
    spans = _windows(grid.shape[0], window)
    full = [grid[a:b] for a, b in spans if b - a == window]
    outputs = []
    if full:
        outputs.extend(function(torch.stack(full)).unbind(0))
    if spans[-1][1] - spans[-1][0] != window:
        a, b = spans[-1]
        outputs.append(function(grid[a:b].unsqueeze(0))[0])
    return torch.cat(outputs)


def encode_utterance(model, mel: torch.Tensor) -> torch.Tensor:
    """Scaled mel (frames, mels) -> token ids (time patches, bands)."""
    padded = pad_frames(mel, model.patch)
    return _run_windows(model.encode_ids, padded, model.config["input_length"])


def decode_utterance(model, ids: torch.Tensor, frames: int | None = None) -> torch.Tensor:
    """Token ids (time patches, bands) -> scaled mel (frames, mels); `frames` trims the padding."""
    mel = _run_windows(model.decode_codes, ids, model.config["input_length"] // model.patch)
    return mel if frames is None else mel[:frames]


def reconstruct_utterance(model, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ids = encode_utterance(model, mel)
    return ids, decode_utterance(model, ids, mel.shape[0])
