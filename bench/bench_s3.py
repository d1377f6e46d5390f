"""s3-extract's ONNX path vs Step-Audio's way of running the S3 tokenizer, on a
full-size v1 25 Hz model (128 mels, width 1280, 20 heads, 6 layers, 4096
codes) with random weights exported to ONNX: the compute of the real file.

    AUDIOTOK_TEST_AUDIO=../shared/data/speech .venv/bin/python bench/bench_s3.py [--seconds 300]

Step-Audio's way (its tokenizer.py): an ONNX session with one intra-op
thread, one recording at a time, 30 s audio chunks, log-mel per chunk.
s3-extract --long-audio step-audio: the library loop behind the command (threads from
OMP_NUM_THREADS, default all cores; windows of one length batched).
Both get the same 16 kHz waveforms; decoding is not timed.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus(audio_dir: str, seconds: float) -> dict:
    from audiotok.dsp.resample import resample
    from audiotok.io.audio_table import open_audio_source

    waves, total = {}, 0.0
    source, _ = open_audio_source([audio_dir])
    for item in source:
        audio = item.load()
        waves[item.key] = resample(audio.samples, audio.rate, 16000).astype(np.float32)
        total += len(waves[item.key]) / 16000
        if total >= seconds:
            break
    return waves


def export_full_size(directory: Path) -> Path:
    import torch

    from audiotok.units.s3 import S3Config, build_model
    from audiotok.units.s3_onnx import export_onnx

    torch.manual_seed(0)
    model = build_model(S3Config("v1", 25)).eval()
    model.encoder.positional_embedding.normal_()
    model.quantizer._codebook.embed.normal_()
    return export_onnx(model, directory / "speech_tokenizer_v1_25hz_random.onnx", frames=(500,))


def step_audio_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def step_audio_way(session, waves: dict) -> dict:
    import torch

    from audiotok.units.features import WhisperLogMel

    mel = WhisperLogMel(128)
    out = {}
    for key, wave in waves.items():
        tokens = []
        for start in range(0, len(wave), 480000):
            chunk = wave[start : start + 480000]
            if len(chunk) < 480:
                continue
            feats = mel.log_mel(torch.from_numpy(chunk))[None].numpy()
            inputs = session.get_inputs()
            result = session.run(None, {inputs[0].name: feats, inputs[1].name: np.array([feats.shape[2]], dtype=np.int32)})[0]
            tokens += result.flatten().tolist()
        out[key] = np.array(tokens)
    return out


def s3_extract_way(backend, waves: dict) -> dict:
    from audiotok.io.audio import Audio, AudioInfo
    from audiotok.io.audio_table import AudioItem
    from audiotok.units.s3 import s3_tokens

    items = [AudioItem(k, k, k, _read=lambda channel, w=w: Audio(w, 16000, AudioInfo(16000, 1, len(w), "WAV", "FLOAT"))) for k, w in waves.items()]
    return {r.key: r.tokens for r in s3_tokens(items, backend, long_audio="step-audio")}


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", default=os.environ.get("AUDIOTOK_TEST_AUDIO"))
    parser.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()
    if not args.audio:
        sys.exit("give --audio DIR or set AUDIOTOK_TEST_AUDIO")
    waves = corpus(args.audio, args.seconds)
    seconds = sum(len(w) for w in waves.values()) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        path = export_full_size(Path(tmp))
        from audiotok.units.s3_onnx import S3Onnx

        # Loading is timed apart: s3-extract also hashes the file to name the official model.
        session, step_load = timed(step_audio_session, path)
        step_audio, step_time = timed(step_audio_way, session, waves)
        backend, our_load = timed(S3Onnx, path, "cpu")
        ours, our_time = timed(s3_extract_way, backend, waves)
    same = sum(int((step_audio[k] == ours[k]).sum()) if len(step_audio[k]) == len(ours[k]) else 0 for k in waves)
    total = sum(len(t) for t in step_audio.values())
    print(f"{len(waves)} recordings, {seconds:.1f} s of audio, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'way':<36}{'load s':>8}{'run s':>8}{'audio-s/s':>11}{'with load':>11}")
    for name, load, run in (("Step-Audio (1 thread, 1 at a time)", step_load, step_time), ("s3-extract ONNX", our_load, our_time)):
        print(f"{name:<36}{load:>8.2f}{run:>8.2f}{seconds / run:>11.1f}{seconds / (load + run):>11.1f}")
    with_load = (step_load + step_time) / (our_load + our_time)
    print(f"ratio {step_time / our_time:.2f}x ({with_load:.2f}x with load); token agreement {same}/{total} ({same / total:.4%})")


if __name__ == "__main__":
    main()
