"""Building tar shards and a tiny MFCC bundle for the tokenize-shards tests."""

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import sine


def flac_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="FLAC")
    return buffer.getvalue()


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_shard(path: Path, samples: dict[str, dict]) -> Path:
    """samples: key -> {"audio": bytes or None, "ext": "flac", "meta": dict or None or raw bytes}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as archive:
        for key, sample in samples.items():
            if sample.get("audio") is not None:
                add_member(archive, f"{key}.{sample.get('ext', 'flac')}", sample["audio"])
            meta = sample.get("meta")
            if meta is not None:
                add_member(archive, f"{key}.json", meta if isinstance(meta, bytes) else json.dumps(meta, ensure_ascii=False).encode())
    return path


def signal_of(index: int, rate: int = 16000, seconds: float | None = None) -> np.ndarray:
    seconds = seconds or 0.4 + 0.1 * (index % 4)
    wave = sine(140 + 37 * index, rate, seconds) + 0.1 * sine(900 + 53 * index, rate, seconds)
    return (wave + np.random.default_rng(index).normal(0, 0.01, len(wave))).astype(np.float32)


def generated_shards(directory: Path, shards: int = 4, per_shard: int = 4) -> tuple[Path, list[tuple[str, str]]]:
    """`shards` shards of `per_shard` good samples (some at 22.05 kHz); returns the dir and (shard, key) list."""
    identities = []
    for s in range(shards):
        samples = {}
        for i in range(per_shard):
            n = s * per_shard + i
            rate = 22050 if n % 3 == 0 else 16000
            meta = {"text": f"sentence {n} é", "language": "en"} if n % 5 else {"text": f"sentence {n}"}
            samples[f"s{s}_{i:02d}"] = {"audio": flac_bytes(signal_of(n, rate), rate), "meta": meta}
            identities.append((f"part-{s:03d}.tar", f"s{s}_{i:02d}"))
        write_shard(directory / f"part-{s:03d}.tar", samples)
    return directory, identities


def make_mfcc_bundle(directory: Path, k: int = 12) -> Path:
    """fit-kmeans (the library function behind the command) on MFCC of generated recordings."""
    from audiotok.units.bundle import Bundle
    from audiotok.units.features import KaldiFeatures
    from audiotok.units.kmeans import fit_kmeans

    mfcc = KaldiFeatures("mfcc")
    frames = np.concatenate([mfcc(signal_of(n)) for n in range(6)])
    result = fit_kmeans(frames, k, seed=0)
    Bundle(result.centroids, mfcc.recipe.as_dict(), {"k": k, "seed": 0, "frames": len(frames), "inertia": result.inertia}).save(directory)
    return directory


def read_lines(out_dir: Path) -> list[dict]:
    lines = []
    for path in sorted(out_dir.glob("*.jsonl")):
        if path.name.endswith(".skipped.jsonl"):  # the records of unusable samples, not token lines
            continue
        text = path.read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n"), f"torn line in {path}"
        lines += [json.loads(line) for line in text.splitlines()]
    return lines


def by_identity(lines: list[dict]) -> dict[tuple[str, str], dict]:
    table = {}
    for line in lines:
        identity = (line["shard"], line["key"])
        assert identity not in table, f"{identity} twice"
        table[identity] = line
    return table
