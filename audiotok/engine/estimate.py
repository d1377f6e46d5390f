"""Dry runs: what a run would cost, from headers and a short calibration; nothing is written.

Durations come, per item, from the data dir's utt2dur (no audio opened: a wav.scp whose files
are gone still gets its hours), else from a segment's times, else from the file header
(soundfile.info), else (pipes, archive entries, tar members) by decoding the item. An item
whose duration cannot be had is counted unreadable, with its reason; so is a damaged shard.
Frames are floor(seconds x frame rate) per item (a backend's edges may give a frame or two
fewer); a one-field tokenizer gives one token a frame, a tokenizer of several fields is
extrapolated from the calibration, linearly in seconds.

The calibration loads the model (timed), warms it up on one second of audio, then runs the
command's own model loop on the first readable items, cut to --calibrate-seconds of audio in
all, and measures x real time (reading the audio counted at the speed the items were read). Each job's time is the model load plus its audio over that
speed; jobs cut the input as --shard J/N (or tokenize-shards' processes) would, and the run
takes as long as its slowest job, assuming the jobs do not slow each other down.
"""

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("audiotok")

KALDI_MATRIX_HEADER_BYTES = 15  # b"\0B" + b"FM " + b"\4" int32 rows + b"\4" int32 cols (binary ark, float32)
PARQUET_UINT16_BYTES = 2  # a token as a uint16 column value, before compression
CALIBRATION_ITEMS = 20  # the first items tried for a calibration (unreadable ones are passed over)
WARM_UP_SECONDS = 1.0


@dataclass
class Duration:
    key: str
    seconds: float | None  # None: unreadable
    source: str  # utt2dur, segments, header, decoded, unreadable
    reason: str = ""


@dataclass
class Model:
    """What the estimate needs of a loaded model: its frame rate and what it writes."""

    loaded: object
    frame_rate: float | None  # frames (or tokens) a second; None: measured in the calibration
    output: str  # "units" (unit tables), "features" (float matrices) or "jsonl" (tokenize-shards lines)
    dim: int | None = None  # features: values a frame
    fields: tuple[str, ...] = ("units",)


@dataclass
class Calibration:
    items: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    load_seconds: float = 0.0
    tokens: dict = field(default_factory=dict)  # field -> tokens the calibration gave
    text_bytes_per_token: float | None = None  # "u " in a text unit line, measured
    jsonl_bytes: int = 0  # the JSON lines the calibration outputs make
    ascii_bytes_per_value: float | None = None  # features in ark,t
    failure: str = ""  # why there is no calibration

    @property
    def x_real_time(self) -> float | None:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 and self.audio_seconds > 0 else None


class Clip:
    """The first seconds of an item, shaped like an audio-table item for the model loops."""

    def __init__(self, key: str, audio, samples: int):
        from audiotok.io.audio import Audio, AudioInfo

        self.key = key
        self._audio = Audio(audio.samples[:samples], audio.rate, AudioInfo(audio.rate, 1, samples, audio.info.format, audio.info.subtype))

    def load(self, channel=None):
        return self._audio  # the channel was chosen when the clip was cut

    def stream(self, channel=None):
        return None  # a clip is short: loaded whole

    @property
    def seconds(self) -> float:
        return len(self._audio.samples) / self._audio.rate


# ---------------------------------------------------------------- durations


def read_utt2dur(data_dir) -> dict[str, float]:
    from audiotok.errors import AudiotokError
    from audiotok.io.tables import read_kaldi_lines

    path = None if data_dir is None else Path(data_dir) / "utt2dur"
    if path is None or not path.is_file():
        return {}
    table = {}
    for number, (key, value) in read_kaldi_lines(path, 2, sorted_required=False):
        try:
            table[key] = float(value)
        except ValueError:
            raise AudiotokError(f"{path}:{number}: {value!r} is not a duration in seconds") from None
    return table


def item_durations(items: Iterable, failures: list, data_dir, keep: list) -> list[Duration]:
    """Each item's duration, from the cheapest place that has it; `keep` gets the first items (for the calibration)."""
    from audiotok.errors import ItemError

    utt2dur = read_utt2dur(data_dir)
    found = []
    for item in items:
        if len(keep) < CALIBRATION_ITEMS:
            keep.append(item)
        if item.key in utt2dur:
            found.append(Duration(item.key, utt2dur[item.key], "utt2dur"))
            continue
        if getattr(item, "end", None) is not None:  # a segment with an end time
            found.append(Duration(item.key, item.end - item.start, "segments"))
            continue
        try:
            info = item.info()
        except ItemError as err:
            found.append(Duration(item.key, None, "unreadable", str(err)))
            continue
        found.append(Duration(item.key, info.frames / info.rate if info.rate else 0.0, "header" if getattr(item, "path", None) else "decoded"))
    # A source's own failures (a damaged shard) are known once it has been read through.
    found += [Duration(name, None, "unreadable", reason) for name, reason in failures]
    return found


# ---------------------------------------------------------------- calibration


def calibrate(first_items: list, load: Callable[[], Model], process: Callable, seconds: float, channel: int | None) -> tuple[Model, Calibration]:
    """Load the model, then time process(loaded, clips) on up to `seconds` of the first readable items."""
    from audiotok.errors import ItemError

    started = time.monotonic()
    model = load()
    calibration = Calibration(load_seconds=time.monotonic() - started)
    clips, left = [], seconds
    decoding, decoded = 0.0, 0.0  # seconds spent reading items whole, seconds of audio they held
    for item in first_items:
        if left <= 0:
            break
        started = time.monotonic()
        try:
            audio = item.load(channel)
        except ItemError as err:
            log.info("calibration passes over %s: %s", item.key, err)
            continue
        decoding += time.monotonic() - started
        decoded += audio.duration
        clip = Clip(item.key, audio, min(len(audio.samples), max(1, int(round(left * audio.rate)))))
        clips.append(clip)
        left -= clip.seconds
    if not clips:
        calibration.failure = f"no readable item among the first {len(first_items)}"
        return model, calibration
    warm_up = Clip(clips[0].key, clips[0].load(), min(len(clips[0].load().samples), int(WARM_UP_SECONDS * clips[0].load().rate)))
    for _ in process(model.loaded, [warm_up]):
        pass
    started = time.monotonic()
    results = list(process(model.loaded, clips))
    calibration.wall_seconds = time.monotonic() - started
    # The clips were read before the clock started: add what reading their seconds of audio costs.
    calibration.wall_seconds += decoding * sum(clip.seconds for clip in clips) / decoded if decoded else 0.0
    calibration.items = sum(not isinstance(result, Exception) for _, result in results)
    calibration.audio_seconds = sum(clip.seconds for clip, (_, result) in zip(clips, results, strict=True) if not isinstance(result, Exception))
    if calibration.items == 0:
        calibration.failure = f"the model failed on every calibration item ({results[0][1]})"
        return model, calibration
    measure_outputs(model, calibration, [(key, result) for key, result in results if not isinstance(result, Exception)])
    calibration.wall_seconds = max(calibration.wall_seconds, 1e-6)  # a clock too coarse for a tiny model: still an ETA
    return model, calibration


def measure_outputs(model: Model, calibration: Calibration, results: list) -> None:
    """Token counts and bytes of the calibration's outputs (what extrapolation scales up)."""
    import io

    import numpy as np

    from audiotok.io.tables import format_jsonl

    if model.output == "features":
        from kaldiio.matio import write_array_ascii

        values, text = 0, 0
        for _, matrix in results:
            body = io.BytesIO()
            write_array_ascii(body, np.ascontiguousarray(matrix, dtype=np.float32))
            values += matrix.size
            text += len(body.getvalue())
        calibration.ascii_bytes_per_value = text / values if values else None
        return
    tokens, digits = {name: 0 for name in model.fields}, 0
    for key, result in results:
        fields = result if isinstance(result, dict) else {model.fields[0]: result}
        for name in model.fields:
            values = np.asarray(fields[name]).reshape(-1)
            tokens[name] += len(values)
            digits += sum(len(str(int(v))) + 1 for v in values)  # " u" in a text line
        calibration.jsonl_bytes += len(format_jsonl(key, **{name: np.asarray(v).reshape(-1).tolist() for name, v in fields.items()}).encode()) + 1
    calibration.tokens = tokens
    total = sum(tokens.values())
    calibration.text_bytes_per_token = digits / total if total else None


# ---------------------------------------------------------------- the estimate


def expected_frames(seconds: float, frame_rate: float) -> int:
    return int(math.floor(seconds * frame_rate + 1e-6))


def estimate(
    command: str,
    jobs: list[list[Duration]],
    model: Model,
    calibration: Calibration,
    *,
    output: str | None = None,
    text_output: bool = False,
    array=None,
) -> dict:
    """The numbers a dry run reports, as one JSON-ready dict; `array` (an ArrayPlan) adds the jobs as a job array on a cluster."""
    every = [d for job in jobs for d in job]
    readable = [d for d in every if d.seconds is not None]
    seconds = sum(d.seconds for d in readable)
    frame_rate = model.frame_rate
    if frame_rate is None and calibration.x_real_time and calibration.tokens:
        frame_rate = sum(calibration.tokens.values()) / calibration.audio_seconds  # tokens a second, measured
    frames = sum(expected_frames(d.seconds, frame_rate) for d in readable) if frame_rate else None
    report = {
        "command": command,
        "output": model.output,
        "items": len(every),
        "readable": len(readable),
        "unreadable": [{"key": d.key, "reason": d.reason} for d in every if d.seconds is None],
        "seconds": round(seconds, 6),
        "hours": round(seconds / 3600, 6),
        "durations_from": {
            source: sum(d.source == source for d in every) for source in ("utt2dur", "segments", "header", "decoded") if any(d.source == source for d in every)
        },
        "frame_rate": frame_rate,
        "frames": frames,
    }
    if model.output == "features":
        report["tokens"] = None
        report["disk"] = feature_disk(readable, frames, frame_rate, model.dim, calibration, output, text_output)
    else:
        tokens = token_counts(model, calibration, frames, seconds)
        report["tokens"] = tokens
        report["disk"] = unit_disk(readable, sum(tokens.values()) if tokens else None, seconds, calibration)
    report["calibration"] = calibration_report(calibration)
    report["jobs"] = job_times(jobs, calibration)
    report["eta_seconds"] = max((job["eta_seconds"] for job in report["jobs"]), default=None) if calibration.x_real_time else None
    if array is not None:
        from audiotok.engine.array_plan import plan_array

        report["array"] = plan_array([job["seconds"] for job in report["jobs"]], calibration.load_seconds, calibration.x_real_time, array)
    return report


def token_counts(model: Model, calibration: Calibration, frames: int | None, seconds: float) -> dict | None:
    if len(model.fields) == 1 and frames is not None:
        return {model.fields[0]: frames}  # one unit a frame
    if not calibration.x_real_time:
        return None
    return {name: int(round(count * seconds / calibration.audio_seconds)) for name, count in calibration.tokens.items()}


def unit_disk(readable: list[Duration], tokens: int | None, seconds: float, calibration: Calibration) -> dict:
    disk = {"parquet_uint16_bytes": None if tokens is None else tokens * PARQUET_UINT16_BYTES, "parquet_note": "2 bytes a token, before compression"}
    per_token = calibration.text_bytes_per_token
    disk["text_bytes_per_token"] = None if per_token is None else round(per_token, 4)
    # A text line: `key u1 u2 ...\n`: the key, then " u" a token, then the newline.
    disk["text_bytes"] = None if tokens is None or per_token is None else sum(len(d.key.encode()) + 1 for d in readable) + int(round(tokens * per_token))
    disk["jsonl_bytes"] = int(round(calibration.jsonl_bytes * seconds / calibration.audio_seconds)) if calibration.x_real_time else None
    return disk


def feature_disk(readable, frames, frame_rate, dim, calibration, output, text_output) -> dict:
    values = None if frames is None or dim is None else frames * dim
    ark = sum(len(d.key.encode()) + 1 + KALDI_MATRIX_HEADER_BYTES for d in readable) + values * 4 if values is not None else None
    disk = {"dtype": "float32", "dim": dim, "ark_bytes": ark}
    if text_output:
        per_value = calibration.ascii_bytes_per_value
        disk["ark_text_bytes"] = (
            None if per_value is None or values is None else sum(len(d.key.encode()) + 1 for d in readable) + int(round(values * per_value))
        )
    if output:  # an scp line: `key ARK:OFFSET\n`
        disk["scp_bytes"] = sum(len(d.key.encode()) + len(output) + len(str(ark or 0)) + 3 for d in readable)
    return disk


def calibration_report(calibration: Calibration) -> dict:
    if not calibration.x_real_time:
        return {"failure": calibration.failure or "no audio", "load_seconds": round(calibration.load_seconds, 3)}
    return {
        "items": calibration.items,
        "audio_seconds": round(calibration.audio_seconds, 3),
        "wall_seconds": round(calibration.wall_seconds, 4),
        "load_seconds": round(calibration.load_seconds, 3),
        "x_real_time": round(calibration.x_real_time, 2),
    }


def job_times(jobs: list[list[Duration]], calibration: Calibration) -> list[dict]:
    speed = calibration.x_real_time
    times = []
    for number, job in enumerate(jobs, 1):
        seconds = sum(d.seconds for d in job if d.seconds is not None)
        eta = calibration.load_seconds + seconds / speed if speed else None
        times.append({"job": number, "items": len(job), "seconds": round(seconds, 6), "eta_seconds": None if eta is None else round(eta, 3)})
    return times


def split_jobs(durations: list[Duration], nj: int | None) -> list[list[Duration]]:
    """The input as --shard J/N cuts it for J = 1..nj (one job without nj)."""
    from audiotok.engine.items import select_shard

    if not nj or nj <= 1:
        return [durations]
    return [select_shard(durations, f"{j}/{nj}") for j in range(1, nj + 1)]


# ---------------------------------------------------------------- what the user sees


def _size(count: int | None) -> str:
    if count is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1000
    return str(count)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def show(report: dict) -> None:
    """The estimate for people (the log, on stderr) and as one JSON line on stdout."""
    unreadable = report["unreadable"]
    sources = ", ".join(f"{s} {n}" for s, n in report["durations_from"].items())
    log.info("dry run of %s: nothing is written", report["command"])
    log.info("items: %d (%d unreadable), %.3f h of audio (durations: %s)", report["items"], len(unreadable), report["hours"], sources or "none")
    for entry in unreadable[:5]:
        log.info("  unreadable: %s: %s", entry["key"], entry["reason"])
    if report["frames"] is not None:
        log.info("frames: %d at %g Hz", report["frames"], report["frame_rate"])
    if report["tokens"]:
        log.info("tokens: %s", ", ".join(f"{name} {count}" for name, count in report["tokens"].items()))
    disk = report["disk"]
    if "ark_bytes" in disk:
        log.info("disk: %s of float32 features (dim %s) in a binary ark", _size(disk["ark_bytes"]), disk["dim"])
    else:
        log.info(
            "disk: units as text %s, as JSON lines about %s, as Parquet uint16 %s (before compression)",
            _size(disk["text_bytes"]),
            _size(disk["jsonl_bytes"]),
            _size(disk["parquet_uint16_bytes"]),
        )
    calibration = report["calibration"]
    if "failure" in calibration:
        log.info("time: unknown (no calibration: %s)", calibration["failure"])
    else:
        log.info(
            "calibration: %.1f s of audio in %.2f s (%.1fx real time), model load %.1f s",
            calibration["audio_seconds"],
            calibration["wall_seconds"],
            calibration["x_real_time"],
            calibration["load_seconds"],
        )
        if len(report["jobs"]) > 1:
            log.info("jobs: %s", ", ".join(f"{job['job']}: {_duration(job['eta_seconds'])}" for job in report["jobs"]))
        log.info("estimated time: %s (h:mm:ss)", _duration(report["eta_seconds"]))
    if report.get("array"):
        _show_array(report["array"])
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def _show_array(array: dict) -> None:
    per_task = array["hours_per_task"]
    assumed = [f"{name.replace('_', ' ')} {value:g}" for name, value in array["assumed"].items() if value is not None]
    log.info(
        "array: %d tasks of %.3g h of audio each (%.3g..%.3g), %.1f h in all%s",
        array["tasks"],
        per_task["median"] or 0,
        per_task["min"] or 0,
        per_task["max"] or 0,
        array["hours"],
        f" (assumed: {', '.join(assumed)})" if assumed else "",
    )
    if array["wall_seconds"] is None:
        log.info("array: wall time unknown (no calibration; give --assume-x-real-time)")
        return
    log.info(
        "array: a task takes %s (median; %s..%s) at %.3gx real time; on %d nodes x %d = %d slots: wall time %s (h:mm:ss)",
        _duration(array["task_seconds"]["median"]),
        _duration(array["task_seconds"]["min"]),
        _duration(array["task_seconds"]["max"]),
        array["x_real_time"],
        array["nodes"],
        array["tasks_per_node"],
        array["slots"],
        _duration(array["wall_seconds"]),
    )


def run_estimate(
    command: str,
    inputs: list[str],
    *,
    load: Callable[[], Model],
    process: Callable,
    shard: str | None = None,
    nj: int | None = None,
    calibrate_seconds: float = 10.0,
    channel: int | None = None,
    output: str | None = None,
    text_output: bool = False,
    array=None,
) -> dict:
    """Estimate a table command's run over `inputs` (the same items the run would open) and show it."""
    from audiotok.engine.items import audio_items

    items, failures, data_dir = audio_items(inputs, shard)
    first: list = []
    durations = item_durations(items, failures, data_dir, first)
    model, calibration = calibrate(first, load, process, calibrate_seconds, channel)
    report = estimate(command, split_jobs(durations, nj), model, calibration, output=output, text_output=text_output, array=array)
    show(report)
    return report


def run_shard_estimate(
    command: str, shard_jobs: list[list[str]], *, load: Callable[[], Model], process: Callable, calibrate_seconds: float = 10.0, array=None
) -> dict:
    """The same for tar shards cut into processes (tokenize-shards): each job its shards."""
    from audiotok.engine.items import audio_items

    jobs, first = [], []
    for shards in shard_jobs:
        job = []
        for shard in shards:
            items, failures, _ = audio_items([f"parquet:{shard}" if shard.endswith(".parquet") else f"tar:{shard}"])
            job += item_durations(items, failures, None, first)
        jobs.append(job)
    model, calibration = calibrate(first, load, process, calibrate_seconds, None)
    report = estimate(command, jobs, model, calibration, array=array)
    show(report)
    return report
