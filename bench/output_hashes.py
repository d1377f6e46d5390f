"""SHA-256 of what the main commands write on the shared speech, to show a refactor changes no byte.

    python bench/output_hashes.py WORKDIR [--audio ../shared/data/speech] [--whisper ../shared/models/whisper-tiny.en]

WORKDIR keeps the models it builds (a seeded MFCC k-means bundle, seeded one-block S3
models built by the s3tokenizer package), so a second run, after a change, compares
outputs of the same models: run it before and after, and diff the printed tables.
Outputs are hashed, not paths (scp files name absolute paths and are left out).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

AUDIOTOK = [sys.executable, "-m", "audiotok"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def run(*args, stdin=None, stdout=None) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    subprocess.run([*AUDIOTOK, "-q", *map(str, args)], check=True, stdin=stdin, stdout=stdout, env=env)


def data_dir(audio: Path, out: Path, limit: int | None = None) -> Path:
    names = sorted(p for p in audio.iterdir() if p.suffix in (".wav", ".flac", ".ogg", ".mp3"))[:limit]
    out.mkdir(parents=True, exist_ok=True)
    (out / "wav.scp").write_text("".join(f"{p.stem.replace('.', '_')} {p.resolve()}\n" for p in names))
    return out


def s3_models(work: Path, data: Path) -> dict[str, Path]:
    """One-block s3tokenizer models with seeded random weights, saved as state dicts; v1's
    codebook is drawn from its encoder's outputs on the first recordings (so many codes occur)."""
    import s3tokenizer
    import soundfile as sf
    import torch
    from s3tokenizer.model import ModelConfig, S3Tokenizer
    from s3tokenizer.model_v2 import ModelConfig as ModelConfigV2
    from s3tokenizer.model_v2 import S3TokenizerV2

    models = {}
    for name, build in (
        ("v1_25", lambda: S3Tokenizer("speech_tokenizer_v1_25hz", ModelConfig(n_audio_layer=1))),
        ("v2", lambda: S3TokenizerV2("speech_tokenizer_v2_25hz", ModelConfigV2(n_audio_layer=1))),
    ):
        path = work / f"s3_{name}.pt"
        if not path.exists():
            torch.manual_seed(3)
            model = build()
            with torch.no_grad():
                if name == "v2":  # scale the FSQ projection so that many codes occur
                    model.quantizer._codebook.project_down.weight.mul_(30.0)
                else:
                    hidden = []
                    for line in (data / "wav.scp").read_text().splitlines()[:4]:
                        samples, rate = sf.read(line.split(maxsplit=1)[1], dtype="float32", always_2d=True)
                        audio = torch.from_numpy(samples.mean(1))
                        if rate != 16000:
                            import torchaudio

                            audio = torchaudio.transforms.Resample(rate, 16000)(audio)
                        mels, lens = s3tokenizer.padding([s3tokenizer.log_mel_spectrogram(audio)])
                        out, out_len = model.encoder(mels, lens)
                        hidden.append(out[0, : out_len[0]])
                    unit = torch.nn.functional.normalize(torch.cat(hidden), dim=-1)
                    generator = torch.Generator().manual_seed(1)
                    model.quantizer._codebook.embed.copy_(unit[torch.randint(len(unit), (4096,), generator=generator)])
            torch.save(model.state_dict(), path)
        models[name] = path
    return models


def shards(data: Path, out: Path, per_shard: int = 10) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = (data / "wav.scp").read_text().splitlines()
    for index in range(0, len(lines), per_shard):
        with tarfile.open(out / f"shard-{index // per_shard:04d}.tar", "w") as archive:
            for line in lines[index : index + per_shard]:
                key, path = line.split(maxsplit=1)
                archive.add(path, arcname=f"{key}{Path(path).suffix}")
                meta = json.dumps({"language": "en", "text": key}).encode()
                info = tarfile.TarInfo(f"{key}.json")
                info.size = len(meta)
                import io

                archive.addfile(info, io.BytesIO(meta))
    return out


def sorted_jsonl(directory: Path) -> Path:
    lines = sorted(line for f in sorted(directory.glob("*.jsonl")) for line in f.read_text().splitlines())
    merged = directory.parent / f"{directory.name}.sorted"
    merged.write_text("\n".join(lines) + "\n")
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--audio", type=Path, default=Path(os.environ.get("AUDIOTOK_TEST_AUDIO", "../shared/data/speech")))
    parser.add_argument("--whisper", type=Path, default=Path(os.environ.get("AUDIOTOK_TEST_WHISPER", "../shared/models/whisper-tiny.en")))
    args = parser.parse_args()
    work = args.work.resolve()
    out = work / "out"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    data = data_dir(args.audio, work / "data")
    small = data_dir(args.audio, work / "data_small", limit=12)
    hashes = {}

    run("extract-feats", "--backend", "mfcc", "--deltas", data, f"ark,scp:{out}/mfcc.ark,{out}/mfcc.scp")
    hashes["extract-feats mfcc --deltas"] = sha(out / "mfcc.ark")
    run("extract-feats", "--model", args.whisper, "--layer", 2, small, f"ark:{out}/whisper.ark")
    hashes["extract-feats whisper-tiny.en L2"] = sha(out / "whisper.ark")
    bundle = work / "km20"
    if not bundle.exists():
        run("fit-kmeans", "--k", 20, "--seed", 1, f"scp:{out}/mfcc.scp", bundle)
    with open(out / "mfcc.ark", "rb") as feats, open(out / "quantize.txt", "wb") as units:
        run("quantize", bundle, stdin=feats, stdout=units)
    hashes["quantize (stdin ark)"] = sha(out / "quantize.txt")
    run("quantize", bundle, f"scp:{out}/mfcc.scp", "-o", out / "quantize_scp.txt")
    hashes["quantize scp:"] = sha(out / "quantize_scp.txt")
    run("tokenize", bundle, data, "-o", out / "tokenize.txt")
    hashes["tokenize"] = sha(out / "tokenize.txt")
    run("tokenize", bundle, data, "--dedup", "--format", "jsonl", "-o", out / "tokenize.jsonl")
    hashes["tokenize --dedup jsonl"] = sha(out / "tokenize.jsonl")
    models = s3_models(work, small)
    run("s3-extract", "--model", models["v1_25"], "--rate", 25, small, "-o", out / "s3_v1.txt")
    hashes["s3-extract v1 25 Hz"] = sha(out / "s3_v1.txt")
    run("s3-extract", "--model", models["v2"], "--long-audio", "step-audio", small, "-o", out / "s3_v2.txt")
    hashes["s3-extract v2 step-audio"] = sha(out / "s3_v2.txt")
    tars = shards(small, work / "shards")
    run("tokenize-shards", "--input-dir", tars, "--output-dir", out / "ts_bundle", "--tokenizer", f"bundle:{bundle}", "--num-proc", 2)
    hashes["tokenize-shards bundle: (sorted lines)"] = sha(sorted_jsonl(out / "ts_bundle"))
    run("tokenize-shards", "--input-dir", tars, "--output-dir", out / "ts_s3", "--tokenizer", f"s3:{models['v1_25']},version=v1,rate=25", "--num-proc", 1)
    hashes["tokenize-shards s3: (sorted lines)"] = sha(sorted_jsonl(out / "ts_s3"))
    width = max(map(len, hashes))
    for name, digest in hashes.items():
        print(f"{name:<{width}}  {digest}")


if __name__ == "__main__":
    main()
