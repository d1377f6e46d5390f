"""One check of a GPU machine: the commands users run, on CUDA against the CPU and a plain loop, in one table.

    .venv/bin/python bench/gpu_check.py [--seconds 1800] [--cpu-seconds S] [--s3-model PATH] [--quick] [--no-cuda]
    bench/gpu_check.sh [the same options]

Rows (each runs the real CLI in a subprocess, as a user would):
- extract-feats on a HuBERT-base-size model (random weights, layer 6), float32 and bfloat16, against
  a per-utterance transformers loop on the same device: x real time, and the share of identical
  units against CPU float32 (units: nearest of K centroids that fit-kmeans fits on the CPU float32
  features, assigned here in float64);
- quantize with those centroids on CUDA and on the CPU: identical labels, frames/s;
- s3-extract with onnxruntime's CUDA provider and the CPU one: identical tokens (a small S3 model
  built here unless --s3-model names one);
- tokenize-shards on one GPU with --num-proc 2 --procs-per-gpu 2: samples/s, each sample exactly once;
- a few bsq-train steps (small preset) with bf16 autocast: steps/s.

Speeds leave out start-up: extraction and s3 are timed from the log line written once the model is
loaded to `done`; quantize subtracts the wall time of the same command on one utterance;
tokenize-shards counts from the first log line (its workers' start-up included); bsq-train times the
steps between its first and last log line. Peak GPU memory: torch.cuda.max_memory_allocated for the
loop that runs in this process, and for a command the device's used memory (cudaMemGetInfo, sampled
every 20 ms) above its level before the command started, CUDA context included.
Without a CUDA device (or with --no-cuda) the CPU rows run and one line names the parts skipped.
A row that fails shows its error in the table, and the script exits 1 at the end.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Results, Timing, alternate  # noqa: E402

RATE = 16000
CUDA_PARTS = (
    "extract-feats cuda fp32/bf16 and the transformers loop on cuda",
    "quantize cuda",
    "s3-extract CUDA provider",
    "tokenize-shards --procs-per-gpu 2",
    "bsq-train AMP",
)
TARGET_REAL_TIME = 3000.0  # HuBERT-base extraction on an H100-class GPU
TARGET_BF16_UNITS = 0.99


class RowError(Exception):
    """A part that failed: its one-line reason goes in the table."""


@dataclass
class Row:
    check: str
    run: str
    speed: str = ""
    peer: str = ""
    agreement: str = ""
    memory: str = ""
    target: str = ""
    error: str = ""


@dataclass
class Run:
    """A finished CLI run: wall seconds and its stderr lines with the time each arrived."""

    wall: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def since(self, pattern: str, end: str = r"\bdone \d+/\d+") -> tuple[float, bool]:
        """Seconds from the first line matching `pattern` to the `end` line; (wall, False) without the start line."""
        start = next((t for t, line in self.lines if re.search(pattern, line)), None)
        stop = next((t for t, line in reversed(self.lines) if re.search(end, line)), None)
        if start is None or stop is None or stop <= start:
            return self.wall, False
        return stop - start, True


class GpuMemory:
    """Peak device memory in use while a command runs, above the level before it (a sampling thread)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.peak = 0

    def _used(self) -> int:
        import torch

        free, total = torch.cuda.mem_get_info()
        return total - free

    def __enter__(self):
        if self.enabled:
            self.base = self.peak = self._used()
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self._used())

    def __exit__(self, *exc):
        if self.enabled:
            self.stop.set()
            self.thread.join()
            self.peak = max(self.peak, self._used())

    @property
    def above_base(self) -> int:
        return max(self.peak - self.base, 0) if self.enabled else 0


def num(value: float) -> str:
    """A rate to read at a glance: thousands separated, three significant digits below 100."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def gib(nbytes: int, how: str) -> str:
    return f"{nbytes / 2**30:.2f} GiB ({how})"


def audiotok(*args) -> Run:
    """`python -m audiotok ARGS`; a failure raises RowError with the command's last stderr line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "audiotok", *map(str, args)]
    lines = []
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        lines.append((time.perf_counter(), line.rstrip("\n")))
    proc.wait()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        last = next((line for _, line in reversed(lines) if line.strip()), "no message")
        raise RowError(f"audiotok {args[0]} exited {proc.returncode}: {last.strip()[:200]}")
    return Run(wall, lines)


# ------------------------------------------------------------------ inputs


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """A voiced, amplitude-modulated tone with noise: frames that vary like speech's, not a constant."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    pitch = rng.uniform(90, 250)
    voiced = np.sin(2 * np.pi * pitch * t * (1 + 0.1 * np.sin(2 * t + seed))) + 0.3 * np.sin(2 * np.pi * 3 * pitch * t)
    return (0.3 * voiced * (1 + np.sin(rng.uniform(3, 7) * t)) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def write_corpus(directory: Path, seconds: float, cpu_seconds: float) -> tuple[dict, Path, Path]:
    """Utterances of 2-16 s up to `seconds`: key -> (path, seconds); a data dir of all and one of the first `cpu_seconds`."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    utterances, total = {}, 0.0
    while total < seconds:
        length = float(min(rng.uniform(2, 16), max(seconds - total, 1.0)))
        key = f"utt{len(utterances):05d}"
        path = directory / "wav" / f"{key}.wav"
        sf.write(path, speech_like(length, len(utterances)), RATE, subtype="PCM_16")
        utterances[key] = (path, length)
        total += length
    data_dirs = []
    for name, limit in (("all", float("inf")), ("cpu", cpu_seconds)):
        data = directory / name
        data.mkdir(exist_ok=True)
        lines, kept = [], 0.0
        for key, (path, length) in utterances.items():
            if lines and kept >= limit:
                break
            lines.append(f"{key} {path}\n")
            kept += length
        (data / "wav.scp").write_text("".join(lines))
        data_dirs.append(data)
    return utterances, data_dirs[0], data_dirs[1]


def table_seconds(data: Path, utterances: dict) -> float:
    return sum(utterances[line.split()[0]][1] for line in (data / "wav.scp").read_text().splitlines())


def save_hubert(directory: Path, size: str) -> Path:
    """HuBERT-base (12 layers, 768 wide, group-norm front end) or a tiny one for quick runs, random weights."""
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    if size == "base":
        config = HubertConfig()
    else:
        tiny = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7)
        config = HubertConfig(num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, **tiny)
    HubertModel(config).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=False).save_pretrained(directory)
    return directory


def save_s3(directory: Path) -> Path:
    """A small S3 v1 25 Hz tokenizer (the architecture, 2 layers of 128) exported to ONNX."""

    import torch

    from audiotok.units.s3 import S3Config, build_model, load_torch_model
    from audiotok.units.s3_onnx import export_onnx

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    state = build_model(S3Config("v1", 25, n_state=128, n_head=2, n_layer=2, codebook_size=64, n_ctx=1500)).state_dict()
    for key in ("encoder.positional_embedding", "quantizer._codebook.embed"):
        if key in state:  # buffers start at zero: give them values
            state[key] = torch.randn_like(state[key])
    torch.save(state, directory / "s3_v1_25.pt")
    model = load_torch_model(directory / "s3_v1_25.pt", "v1", 25)
    return export_onnx(model, directory / "s3_v1_25.onnx")


def read_features(spec: str) -> dict[str, np.ndarray]:
    from audiotok.io.tables import read_matrices

    return {key: np.asarray(matrix, dtype=np.float32) for key, matrix in read_matrices(spec)}


def read_units(path: Path) -> dict[str, np.ndarray]:
    table = {}
    for line in path.read_text().splitlines():
        key, *units = line.split()
        table[key] = np.array(units, dtype=np.int64)
    return table


def nearest(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid in float64: the bench's own reference, independent of the library's assigner."""
    x, c = features.astype(np.float64), centroids.astype(np.float64)
    return np.argmin((c * c).sum(1)[None, :] - 2 * x @ c.T, axis=1)


def identical(units: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> tuple[float, int]:
    """Share of equal units over the reference's keys (a missing key or another length counts as all different)."""
    same = total = 0
    for key, ref in reference.items():
        total += len(ref)
        got = units.get(key)
        if got is not None and len(got) == len(ref):
            same += int((got == ref).sum())
    return (same / total if total else 0.0), total


# ------------------------------------------------------------------ the checks


class Check:
    def __init__(self, args, work: Path, cuda: bool):
        self.args, self.work, self.cuda = args, work, cuda
        self.rows: list[Row] = []
        self.results = Results("gpu_check")
        self.rounds = args.rounds
        self.bundle: Path | None = None
        self.reference_units: dict | None = None
        self.centroids: np.ndarray | None = None

    def fact(self, row: Row) -> None:
        """Each row's values as fact rows for run_all (printed to stderr: stdout is the table)."""
        case = f"{row.check}, {row.run}"
        with contextlib.redirect_stdout(sys.stderr):
            for name in ("speed", "peer", "agreement", "memory", "target", "error"):
                value = getattr(row, name)
                if value:
                    self.results.fact(case, name, value)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        self.fact(row)
        return row

    def part(self, check: str, run: str, body) -> None:
        """Run one part; a failure becomes its row's error instead of stopping the script."""
        started = time.perf_counter()
        try:
            body()
            print(f"gpu_check: {check} ({run}) took {time.perf_counter() - started:.0f} s", file=sys.stderr)
        except Exception as err:  # noqa: BLE001 - a failing part is reported in its row, the others still run
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            self.add(Row(check, run, error=f"{type(err).__name__ if not isinstance(err, RowError) else 'error'}: {message}"[:240]))

    # ---- extract-feats

    def extract(self, device: str, data: Path, seconds: float, model: Path) -> None:
        """CLI float32 and bfloat16 vs the per-utterance transformers loop, alternated `rounds` times."""
        check = f"extract-feats HuBERT-{self.args.encoder} L{self.args.layer}"
        if device != "cpu" and self.reference_units is None:
            raise RowError("no CPU float32 units to compare with: the CPU extraction failed")
        outputs = {dtype: self.work / f"feats_{device}_{dtype}" for dtype in ("float32", "bfloat16")}
        memory = {}

        def cli(dtype):
            def run():
                out = outputs[dtype]
                spec = f"ark,scp:{out}.ark,{out}.scp"
                with GpuMemory(device == "cuda") as used:
                    result = audiotok(
                        "extract-feats", "--model", model, "--layer", self.args.layer, "--device", device, "--dtype", dtype, data, spec, "--force"
                    )
                memory[dtype] = max(memory.get(dtype, 0), used.above_base)
                seconds_taken, after_load = result.since(r"extract-feats: \d+ items")
                return seconds_taken, after_load

            return run

        loop_features = {}

        def loop():
            seconds_taken, features, peak = self.transformers_loop(model, data, device)
            loop_features.update(features)
            memory["loop"] = peak
            return seconds_taken, True

        names = {"float32": f"audiotok {device} fp32", "bfloat16": f"audiotok {device} bf16", "loop": f"transformers loop {device} fp32"}
        timings = alternate({names["float32"]: cli("float32"), names["bfloat16"]: cli("bfloat16"), names["loop"]: loop}, rounds=self.rounds)
        if device == "cpu":
            self.fit_units(outputs["float32"])
        units = {dtype: self.units_of(read_features(f"scp:{outputs[dtype]}.scp")) for dtype in outputs}
        units["loop"] = self.units_of(loop_features)
        peer = timings[names["loop"]]
        for dtype in ("float32", "bfloat16", "loop"):
            timing = timings[names[dtype]]
            share, frames = identical(units[dtype], self.reference_units)
            row = Row(check, names[dtype] + (" (per utterance)" if dtype == "loop" else " (CLI)"))
            row.speed = f"{num(seconds / timing.median)}x real time [{num(seconds / max(timing.seconds))}..{num(seconds / min(timing.seconds))}]"
            if not timing.outputs[-1]:
                row.speed += " incl. start-up"
            if dtype != "loop":
                row.peer = f"{peer.median / timing.median:.2f}x the loop"
            row.agreement = f"{share:.2%} units = CPU fp32 ({frames} frames)" if not (device == "cpu" and dtype == "float32") else "reference units"
            if device == "cuda":
                how = "torch max allocated" if dtype == "loop" else "device used, sampled"
                row.memory = gib(memory[dtype], how)
                if dtype != "loop":
                    wanted = [f">= {TARGET_REAL_TIME:g}x real time: {'met' if seconds / timing.median >= TARGET_REAL_TIME else 'NOT met'}"]
                    if dtype == "bfloat16":
                        wanted.append(f">= {TARGET_BF16_UNITS:.0%} units: {'met' if share >= TARGET_BF16_UNITS else 'NOT met'}")
                    row.target = "; ".join(wanted)
            self.add(row)
        with contextlib.redirect_stdout(sys.stderr):
            for dtype in ("float32", "bfloat16"):
                self.results.ratio(
                    f"{check}, {seconds:.0f} s of audio, {device}", _pair(timings, names[dtype], names["loop"]), ours=names[dtype], peer=names["loop"]
                )

    def transformers_loop(self, model: Path, data: Path, device: str):
        """The script a user would write: each utterance alone through the whole model, hidden_states[layer]."""
        import soundfile as sf
        import torch
        from transformers import HubertModel

        net = HubertModel.from_pretrained(model).to(device).eval()
        paths = [line.split(maxsplit=1) for line in (data / "wav.scp").read_text().splitlines()]

        def one(path):
            wave, _ = sf.read(path.strip(), dtype="float32")
            with torch.inference_mode():
                return net(torch.from_numpy(wave)[None].to(device), output_hidden_states=True).hidden_states[self.args.layer][0].cpu().numpy()

        one(paths[0][1])  # warm-up: CUDA kernels, allocator
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        features = {key: one(path) for key, path in paths}
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
        net = None  # frees the weights before the CLI runs
        if device == "cuda":
            torch.cuda.empty_cache()
        return seconds, features, peak

    def fit_units(self, cpu_fp32: Path) -> None:
        """K centroids from fit-kmeans on the CPU float32 features: the bundle every later part uses."""
        frames = sum(len(m) for m in read_features(f"scp:{cpu_fp32}.scp").values())
        k = max(2, min(self.args.k, frames // 10))
        self.bundle = self.work / f"km{k}"
        audiotok("fit-kmeans", "--k", k, "--max-iter", 20, f"scp:{cpu_fp32}.scp", self.bundle)
        self.centroids = np.load(self.bundle / "centroids.npy")
        self.reference_units = self.units_of(read_features(f"scp:{cpu_fp32}.scp"))

    def units_of(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {key: nearest(matrix, self.centroids) for key, matrix in features.items() if key in (self.reference_units or features)}

    # ---- quantize

    def quantize(self, features: Path) -> None:
        """The bundle's centroids on the CPU and on CUDA: labels must be identical."""
        if self.bundle is None:
            raise RowError("no bundle: the CPU extraction failed")
        check = f"quantize K={len(self.centroids)} D={self.centroids.shape[1]}"
        scp = f"scp:{features}.scp"
        frames = sum(len(m) for m in read_features(scp).values())
        one = self.work / "one_utterance.scp"  # start-up: the same command on one utterance
        one.write_text(Path(f"{features}.scp").read_text().splitlines()[0] + "\n")
        shutil.copy(f"{features}.scp.recipe.json", f"{one}.recipe.json")
        devices = ["cpu"] + (["cuda"] if self.cuda else [])
        outputs = {device: self.work / f"units_{device}.txt" for device in devices}
        memory = {}

        def command(device, spec, output):
            return ("quantize", self.bundle, spec, "--device", device, "-o", output, "--force")

        # --quick leaves the start-up run out (one subprocess less) and says so.
        startup = {device: 0.0 if self.args.quick else audiotok(*command(device, f"scp:{one}", self.work / f"one_{device}.txt")).wall for device in devices}

        def run(device):
            def go():
                with GpuMemory(device == "cuda") as used:
                    wall = audiotok(*command(device, scp, outputs[device])).wall
                memory[device] = max(memory.get(device, 0), used.above_base)
                if wall - startup[device] < 0.1 * wall:  # lost in the start-up's noise: report the whole run
                    return wall, False
                return wall - startup[device], not self.args.quick

            return go

        timings = alternate({f"quantize {device}": run(device) for device in devices}, rounds=self.rounds)
        labels = {device: read_units(outputs[device]) for device in devices}
        share, total = identical(labels["cuda"], labels["cpu"]) if self.cuda else (None, 0)
        for device in devices:
            timing = timings[f"quantize {device}"]
            row = Row(check, f"{device}, {frames:,} frames")
            row.speed = f"{num(frames / timing.median)} frames/s [{num(frames / max(timing.seconds))}..{num(frames / min(timing.seconds))}]"
            row.speed += " start-up subtracted" if timing.outputs[-1] else " incl. start-up"
            if device == "cuda":
                cpu = timings["quantize cpu"]
                row.peer = f"{cpu.median / timing.median:.2f}x the CPU"
                row.agreement = f"{share:.4%} labels = CPU ({total} frames)"
                row.memory = gib(memory[device], "device used, sampled")
                row.target = f"identical labels: {'met' if share == 1.0 else 'NOT met'}"
            self.add(row)
        if self.cuda:
            with contextlib.redirect_stdout(sys.stderr):
                self.results.ratio(f"{check}, {frames} frames", timings, ours="quantize cuda", peer="quantize cpu")

    # ---- s3-extract

    def s3(self, data: Path, seconds: float) -> None:
        """The same ONNX model through the CPU and the CUDA provider: tokens must be identical."""
        model = Path(self.args.s3_model) if self.args.s3_model else save_s3(self.work / "s3")
        check = f"s3-extract {'(' + model.name + ')' if self.args.s3_model else '(small test model, not a real S3)'}"
        devices = ["cpu"] + (["cuda"] if self.cuda else [])
        if self.cuda and model.suffix == ".onnx":
            self.check_cuda_provider(model)
        outputs = {device: self.work / f"s3_{device}.txt" for device in devices}
        memory = {}

        def run(device):
            def go():
                with GpuMemory(device == "cuda") as used:
                    result = audiotok("s3-extract", "--model", model, "--device", device, data, "-o", outputs[device], "--force")
                memory[device] = max(memory.get(device, 0), used.above_base)
                return result.since(r"ONNX model|tokens a second")

            return go

        timings = alternate({f"s3 {device}": run(device) for device in devices}, rounds=self.rounds)
        tokens = {device: read_units(outputs[device]) for device in devices}
        for device in devices:
            timing = timings[f"s3 {device}"]
            row = Row(check, f"{device} provider" if device == "cuda" else "cpu")
            row.speed = f"{num(seconds / timing.median)}x real time" + ("" if timing.outputs[-1] else " incl. start-up")
            if device == "cuda":
                share, total = identical(tokens["cuda"], tokens["cpu"])
                row.peer = f"{timings['s3 cpu'].median / timing.median:.2f}x the CPU"
                row.agreement = f"{share:.4%} tokens = CPU ({total} tokens)"
                row.memory = gib(memory[device], "device used, sampled")
                row.target = f"identical tokens: {'met' if share == 1.0 else 'NOT met'}"
            else:
                row.agreement = f"{sum(map(len, tokens['cpu'].values()))} tokens"
            self.add(row)

    @staticmethod
    def check_cuda_provider(model: Path) -> None:
        """onnxruntime falls back to the CPU quietly when its CUDA libraries do not load: make that an error."""
        from audiotok.device import resolve
        from audiotok.units.onnx_session import make_session

        providers = make_session(model, resolve("cuda")).get_providers()
        if providers[0] != "CUDAExecutionProvider":
            raise RowError(f"onnxruntime did not start its CUDA provider (providers: {', '.join(providers)}); install onnxruntime-gpu for this CUDA")

    # ---- tokenize-shards

    def shards(self, utterances: dict) -> None:
        """Tar shards of the corpus through one GPU shared by two worker processes; every sample once."""
        import io
        import tarfile

        import soundfile as sf

        if self.bundle is None:
            raise RowError("no bundle: the CPU extraction failed")
        count = self.args.shards * self.args.per_shard
        keys = list(utterances)[:count]
        if len(keys) < count:
            raise RowError(f"the corpus has {len(keys)} utterances, fewer than {count}: raise --seconds")
        shard_dir, expected, audio = self.work / "shards", set(), 0.0
        shard_dir.mkdir(exist_ok=True)
        for s in range(self.args.shards):
            name = f"part-{s:03d}.tar"
            with tarfile.open(shard_dir / name, "w") as archive:
                for key in keys[s * self.args.per_shard : (s + 1) * self.args.per_shard]:
                    path, seconds = utterances[key]
                    flac = io.BytesIO()
                    sf.write(flac, sf.read(path, dtype="float32")[0], RATE, format="FLAC")
                    for member, data in ((f"{key}.flac", flac.getvalue()), (f"{key}.json", json.dumps({"text": key}).encode())):
                        info = tarfile.TarInfo(member)
                        info.size = len(data)
                        archive.addfile(info, io.BytesIO(data))
                    expected.add((name, key))
                    audio += seconds
        out = self.work / "shard_tokens"
        shutil.rmtree(out, ignore_errors=True)
        with GpuMemory(True) as used:
            result = audiotok(
                "tokenize-shards", "--input-dir", shard_dir, "--output-dir", out, "--tokenizer", f"bundle:{self.bundle}",
                "--num-proc", 2, "--procs-per-gpu", 2, "--device", "cuda", "--stats-every", 0,
            )  # fmt: skip
        seconds, _ = result.since(r"shards of .* processes")
        lines = [json.loads(line) for path in sorted(out.glob("*.jsonl")) for line in path.read_text().splitlines()]
        seen = [(line["shard"], line["key"]) for line in lines]
        once = len(seen) == len(set(seen)) == len(expected) and set(seen) == expected
        files = sorted(p.name for p in out.glob("*.jsonl"))
        stats = next((m.group(1) for _, line in result.lines if (m := re.search(r"([\d.]+ audio s/s)", line))), None)
        row = Row("tokenize-shards 1 GPU, --num-proc 2 --procs-per-gpu 2", f"cuda, {len(expected)} samples ({audio:.0f} s) in {self.args.shards} shards")
        row.speed = f"{len(expected) / seconds:.1f} samples/s (wall, workers' start-up incl.)" + (f"; tokenizing {stats}" if stats else "")
        row.agreement = f"exactly once: {'yes' if once else 'NO'} ({len(seen)} lines for {len(expected)} samples, {len(files)} files)"
        row.memory = gib(used.above_base, "device used, sampled; both workers")
        row.target = f"each sample once: {'met' if once else 'NOT met'}"
        self.add(row)

    # ---- bsq-train

    def bsq(self, data: Path) -> None:
        """A few training steps of the small preset with bf16 autocast (mixed_precision, on by default on CUDA)."""
        import yaml

        steps, every = self.args.bsq_steps, max(1, self.args.bsq_steps // 6)
        config = self.work / "bsq.yaml"
        optim = {"max_steps": steps, "batch_size": 8, "log_every": every, "valid_every": 10 * steps, "checkpoint_every": 10 * steps, "mixed_precision": True}
        config.write_text(yaml.safe_dump({"preset": "small", "data": {"train": str(data), "valid_count": 2}, "optim": optim}, sort_keys=False))
        out = self.work / "bsq"
        shutil.rmtree(out, ignore_errors=True)
        with GpuMemory(True) as used:
            result = audiotok("bsq-train", config, "--output-dir", out, "--device", "cuda")
        logged = [(t, int(m.group(1))) for t, line in result.lines if (m := re.search(r"\bstep (\d+)/\d+ loss", line))]
        if len(logged) >= 2:
            (t0, s0), (t1, s1) = logged[0], logged[-1]
            rate, how = (s1 - s0) / (t1 - t0), f"steps {s0}..{s1}"
        else:
            rate, how = steps / result.wall, "wall, start-up incl."
        row = Row("bsq-train small preset, bf16 autocast", f"cuda, batch 8, {steps} steps")
        row.speed = f"{rate:.2f} steps/s ({how})"
        row.memory = gib(used.above_base, "device used, sampled")
        self.add(row)


def _pair(timings: dict[str, Timing], a: str, b: str) -> dict[str, Timing]:
    return {a: timings[a], b: timings[b]}


def table(rows: list[Row]) -> str:
    head = ("check", "run", "speed [per-round range]", "vs peer", "agreement", "peak GPU memory", "target")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = (r.check, r.run, f"**{r.error}**", "", "", "", "") if r.error else (r.check, r.run, r.speed, r.peer, r.agreement, r.memory, r.target)
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1800.0, help="audio seconds of the CUDA corpus (default 1800)")
    parser.add_argument("--cpu-seconds", type=float, help="audio seconds of the CPU runs and of the unit reference (default 120 with CUDA, else 20)")
    parser.add_argument("--encoder", choices=("base", "tiny"), default="base", help="HuBERT-base size, or a tiny one for a smoke test")
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--k", type=int, default=500, help="units (capped at a tenth of the reference frames)")
    parser.add_argument("--rounds", type=int, help="alternated repetitions of each timed run (default 3 with CUDA; 1 without: a smoke run)")
    parser.add_argument("--s3-model", help="an S3 ONNX model to check instead of the small one built here")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--per-shard", type=int, default=16)
    parser.add_argument("--bsq-steps", type=int, default=30)
    parser.add_argument("--no-cuda", action="store_true", help="run the CPU parts only, as on a machine without a GPU")
    parser.add_argument("--quick", action="store_true", help="the smallest CPU settings: 10 s of audio, one round (CI, run_all)")
    parser.add_argument("--work", help="keep the models, corpus and outputs here (default: a temporary directory)")
    args = parser.parse_args()
    if args.layer < 1 or (args.encoder == "tiny" and args.layer > 3):
        parser.error("--layer must be 1..12 (1..3 for the tiny encoder)")

    import torch

    cuda = not args.no_cuda and torch.cuda.is_available()
    args.cpu_seconds = args.cpu_seconds or (10.0 if args.quick else 120.0 if cuda else 20.0)
    args.rounds = args.rounds or (3 if cuda and not args.quick else 1)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = Path(args.work) if args.work else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu_check.")))
        check = Check(args, work, cuda)
        try:  # what every part needs: without it there is no row to show
            work.mkdir(parents=True, exist_ok=True)
            model = save_hubert(work / f"hubert-{args.encoder}", args.encoder)
            utterances, all_data, cpu_data = write_corpus(work / "corpus", args.seconds if cuda else args.cpu_seconds, args.cpu_seconds)
        except Exception as err:  # noqa: BLE001 - one line, as every failure of the check
            print(f"error: setting up the check in {work} failed: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
        cpu_seconds, all_seconds = table_seconds(cpu_data, utterances), table_seconds(all_data, utterances)
        print(f"gpu_check: HuBERT-{args.encoder} random weights, layer {args.layer}; CPU runs on {cpu_seconds:.0f} s of audio", file=sys.stderr)
        check.part("extract-feats cpu", "fp32, bf16, loop", lambda: check.extract("cpu", cpu_data, cpu_seconds, model))
        if cuda:
            check.part("extract-feats cuda", "fp32, bf16, loop", lambda: check.extract("cuda", all_data, all_seconds, model))
        features = work / ("feats_cuda_float32" if cuda and Path(work / "feats_cuda_float32.scp").exists() else "feats_cpu_float32")
        check.part("quantize", "cpu" + (", cuda" if cuda else ""), lambda: check.quantize(features))
        check.part("s3-extract", "cpu" + (", cuda provider" if cuda else ""), lambda: check.s3(cpu_data, cpu_seconds))
        if cuda:
            check.part("tokenize-shards", "cuda, --procs-per-gpu 2", lambda: check.shards(utterances))
            check.part("bsq-train", "cuda, bf16 autocast", lambda: check.bsq(all_data))
    device = torch.cuda.get_device_name(0) if cuda else "no CUDA device"
    rounds = f"{args.rounds} round{'s' if args.rounds > 1 else ''}"
    print(f"### GPU check: {device}; {rounds}; {time.perf_counter() - started:.0f} s\n")
    print(table(check.rows))
    if not cuda:
        print(f"\nskipped ({'--no-cuda' if args.no_cuda else 'no CUDA device'}): {', '.join(CUDA_PARTS)}")
    failed = [row for row in check.rows if row.error]
    if failed:
        print(f"\n{len(failed)} part(s) failed: {', '.join(f'{r.check} ({r.run})' for r in failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
