"""Make tests/data/paraformer_tiny/: a tiny random streaming Paraformer in FunASR's file
layout, and golden.npz holding what FunASR's own code gives for it the way Step-Audio
calls it. The test suite compares audiotok.units.paraformer to that, without FunASR.

Needs FunASR 1.4.16 (not a dependency of audiotok): `make venv` installs it, without its
dependencies, into .venv/reference (requirements-reference.txt); see tests/data/README.md.

    PYTHONPATH=.venv/reference .venv/bin/python tests/data/make_paraformer_golden.py [OUT_DIR]

OUT_DIR defaults to tests/data/paraformer_tiny; CI writes a fresh one to a temporary
directory and compares it to the stored one and to audiotok (tests/units/test_paraformer.py).

What runs is FunASR's SANMEncoderChunkOpt.forward_chunk and WavFrontendOnline, driven
by the loop of Step-Audio's `infer_encoder` (stepfun-ai/Step-Audio, funasr_detach/
models/paraformer_streaming/model.py): chunk_size [0, 4, 5], encoder look-back 4, a
fresh cache per recording, is_final, 3840-sample steps, the last `speech_lengths`
rows of each step kept, and a failed feature extraction on a last piece under 480
samples ending the loop. Step-Audio's fork of WavFrontendOnline differs from FunASR
1.4.16 in two places, patched below to the fork's behaviour: its LFR step has no
`is_final or` in "enough rows for one frame" (a short last step emits nothing), and
its LFR stacking raises when it would make no frame (torch.vstack of an empty list).
"""

import sys
import types
from pathlib import Path

import numpy as np
import torch
import yaml

try:
    import librosa  # noqa: F401 - only FunASR's EEND frontend uses it
except ImportError:
    sys.modules["librosa"] = types.ModuleType("librosa")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for the tests' am.mvn writer

from funasr.frontends.wav_frontend import WavFrontendOnline  # noqa: E402
from funasr.models.scama.encoder import SANMEncoderChunkOpt  # noqa: E402
from funasr.utils.load_utils import extract_fbank  # noqa: E402

from tests.builders.paraformer import write_am_mvn  # noqa: E402

OUT = Path(__file__).resolve().parent / "paraformer_tiny"
CHUNK_SIZE = [0, 4, 5]
LOOK_BACK = 4
ENCODER_CONF = {
    "output_size": 8,
    "attention_heads": 2,
    "linear_units": 16,
    "num_blocks": 3,
    "dropout_rate": 0.1,
    "positional_dropout_rate": 0.1,
    "attention_dropout_rate": 0.1,
    "input_layer": "pe_online",
    "pos_enc_class": "SinusoidalPositionEncoder",
    "normalize_before": True,
    "kernel_size": 11,
    "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
    "chunk_size": [12, 15],
    "stride": [8, 10],
    "pad_left": [0, 0],
    "encoder_att_look_back_factor": [4, 4],
    "decoder_att_look_back_factor": [1, 1],
}
FRONTEND_CONF = {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10, "lfr_m": 7, "lfr_n": 6, "dither": 0.0}
# Lengths that reach every end case of the step loop (3840 samples a step).
LENGTHS = {
    "tail_1000": 2 * 3840 + 1000,  # last piece of 1000 samples: 1 padded frame
    "tail_600_dropped": 2 * 3840 + 600,  # 400..879: the fork emits nothing for it
    "whole_steps": 3 * 3840,  # empty last piece
    "short_700": 700,  # under one frame's rows: no output at all
    "tail_100_raises": 2 * 3840 + 100,  # LFR raises on the last piece; under 480 samples: skipped
    "tail_3800_full": 3840 + 3800,  # the last piece makes a whole window of 4
    "first_2000": 2000,  # one final step of 2 frames
    "long_5_steps": 5 * 3840 + 2000,
}


class StepAudioFrontend(WavFrontendOnline):
    """FunASR 1.4.16's online frontend with the two behaviours of Step-Audio's fork."""

    @staticmethod
    def apply_lfr(inputs, lfr_m, lfr_n, is_final=False):
        frames, splice, index = WavFrontendOnline.apply_lfr(inputs, lfr_m, lfr_n, is_final)
        if frames.shape[0] == 0:
            raise RuntimeError("no LFR frame (the fork's torch.vstack([]) raises here)")
        return frames, splice, index

    def forward(self, input, input_lengths, **kwargs):
        cache = kwargs.get("cache", {})
        if kwargs.get("is_final"):
            waiting = cache["input_cache"].shape[-1] if "input_cache" in cache else 0
            rows = self.compute_frame_num(waiting + input.shape[-1], self.frame_sample_length, self.frame_shift_sample_length)
            splice = cache.get("lfr_splice_cache") or []
            pending = splice[0].shape[0] if splice else (self.lfr_m - 1) // 2
            if rows and rows + pending < self.lfr_m:
                kwargs["is_final"] = False  # the fork tests only the row count here: nothing is emitted
        return super().forward(input, input_lengths, **kwargs)


def fresh_cache(feats_dims: int) -> dict:
    """Step-Audio's init_cache, the encoder and frontend parts."""
    return {
        "encoder": {
            "start_idx": 0,
            "chunk_size": CHUNK_SIZE,
            "encoder_chunk_look_back": LOOK_BACK,
            "last_chunk": False,
            "opt": None,
            "feats": torch.zeros((1, CHUNK_SIZE[0] + CHUNK_SIZE[2], feats_dims)),
            "tail_chunk": False,
        },
        "frontend": {},
    }


def infer_encoder(encoder, frontend, audio: torch.Tensor) -> np.ndarray:
    """Step-Audio's infer_encoder loop for one recording with is_final=True."""
    cache = fresh_cache(frontend.output_size())
    stride = CHUNK_SIZE[1] * 960
    n = len(audio) // stride + 1
    outputs = []
    for i in range(n):
        is_final = i == n - 1
        piece = audio[i * stride : (i + 1) * stride]
        if is_final and len(piece) == 0:
            break
        try:
            speech, lengths = extract_fbank([piece], data_type="sound", frontend=frontend, cache=cache["frontend"], is_final=is_final)
        except Exception:
            if i == n - 1 and piece.shape[0] < 480:
                break
            raise
        if len(speech) == 0 and is_final:
            break
        out, _, _ = encoder.forward_chunk(speech, lengths, cache=cache["encoder"], is_final=is_final)
        outputs.append(out[:, -int(lengths[0]) :])
    if not outputs:
        return np.zeros((0, encoder.output_size()), np.float32)
    return torch.cat(outputs, dim=1)[0].numpy()


def speechlike(samples: int, seed: int) -> np.ndarray:
    """Harmonics with a wandering pitch, syllable-like bursts and a little noise, as int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    voice = sum(np.sin(h * phase) / h for h in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + seed) ** 2
    wave = 0.2 * voice * envelope + 0.01 * rng.standard_normal(samples)
    return np.clip(np.round(wave * 32768 * 0.5), -32768, 32767).astype(np.int16)


def main(directory: Path = OUT) -> None:
    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    dims = FRONTEND_CONF["n_mels"] * FRONTEND_CONF["lfr_m"]
    encoder = SANMEncoderChunkOpt(input_size=dims, **{k: v for k, v in ENCODER_CONF.items() if k != "pos_enc_class"}).eval()
    with torch.no_grad():  # make every parameter matter, LayerNorms included
        for name, param in encoder.named_parameters():
            if "norm" in name:
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(param))
            elif "fsmn" in name:
                param.copy_(0.3 * torch.randn_like(param))
    rng = np.random.default_rng(0)
    shift = (-rng.uniform(6, 14, dims)).astype(np.float32)
    scale = rng.uniform(0.1, 0.4, dims).astype(np.float32)
    write_am_mvn(directory / "am.mvn", shift, scale)
    state = {f"encoder.{k}": v.clone() for k, v in encoder.state_dict().items()}
    state["decoder.embed.0.weight"] = torch.zeros(3, 4)  # the rest of a Paraformer: the loader must skip it
    torch.save(state, directory / "model.pt")
    config = {
        "model": "ParaformerStreaming",
        "encoder": "SANMEncoderChunkOpt",
        "encoder_conf": ENCODER_CONF,
        "frontend": "WavFrontendOnline",
        "frontend_conf": FRONTEND_CONF,
        "input_size": dims,
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    frontend = StepAudioFrontend(cmvn_file=str(directory / "am.mvn"), **FRONTEND_CONF)
    audio, enc_out, frames = [], [], []
    with torch.no_grad():
        for seed, samples in enumerate(LENGTHS.values()):
            wave = speechlike(samples, seed)
            out = infer_encoder(encoder, frontend, torch.from_numpy(wave.astype(np.float32) / 32768))
            audio.append(wave)
            enc_out.append(out)
            frames.append(len(out))
    np.savez_compressed(
        directory / "golden.npz",
        names=np.array(list(LENGTHS)),
        lengths=np.array(list(LENGTHS.values())),
        audio=np.concatenate(audio),
        frames=np.array(frames),
        enc_out=np.concatenate(enc_out).astype(np.float32),
    )
    for name, count in zip(LENGTHS, frames, strict=True):
        print(f"{name}: {LENGTHS[name]} samples -> {count} frames")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
