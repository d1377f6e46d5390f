"""Render the rows bench/harness.py's Results appended (JSON lines) as bench/RESULTS.md.

    .venv/bin/python bench/render_results.py RESULTS.jsonl [-o bench/RESULTS.md]

The page starts with the machine's facts (date, commit, CPU and its bf16/AMX support, cores,
memory, library versions, GPU), then for each bench in the order it ran: its ratios (each run's
median and spread, the ratio with its per-round range, the target and whether it is met), its
facts (values that are not timings), and its timings. A case reported twice keeps its last row.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Distributions whose version the header names, each under the first installed spelling.
LIBRARIES = (("torch", ("torch",)), ("numpy", ("numpy",)), ("scikit-learn", ("scikit-learn",)), ("faiss", ("faiss-cpu", "faiss-gpu", "faiss")))
LIBRARIES += (("onnxruntime", ("onnxruntime-gpu", "onnxruntime")),)


def read_rows(path: Path) -> list[dict]:
    """The JSON rows; a line that is not one (a torn last line) is skipped with a warning."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            print(f"warning: {path}:{number}: not a JSON row, skipped", file=sys.stderr)
            continue
        if not isinstance(row, dict) or row.get("kind") not in ("timing", "ratio", "fact") or "bench" not in row:
            print(f"warning: {path}:{number}: not a timing, ratio or fact row, skipped", file=sys.stderr)
            continue
        rows.append(row)
    return rows


def _identity(row: dict) -> tuple:
    kind = row["kind"]
    if kind == "ratio":
        return row["bench"], kind, row.get("case"), row.get("ours"), row.get("peer")
    return row["bench"], kind, row.get("case"), row.get("name")


def latest(rows: list[dict]) -> list[dict]:
    """One row per (bench, kind, case, name): the last one, at the place the first one had."""
    kept: dict[tuple, dict] = {}
    for row in rows:
        identity = _identity(row)
        if identity in kept:
            del kept[identity]  # re-inserted below: a rerun's row goes where the rerun put it
        kept[identity] = row
    return list(kept.values())


# ------------------------------------------------------------------ machine facts


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and model in ("unknown", platform.processor()):
            model = value.strip()
        elif name.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def _commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" (with uncommitted changes)" if head and dirty.strip() else "")


def _gpu() -> str:
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "none"
    found = [line.strip() for line in names.stdout.splitlines() if line.strip()]
    return ", ".join(found) if names.returncode == 0 and found else "none"


def machine_facts() -> list[tuple[str, str]]:
    model, flags = _cpuinfo()
    amx = sorted(flag for flag in flags if flag.startswith("amx"))
    facts = [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("git commit", _commit()),
        ("CPU", model),
        ("cores", f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} usable"),
        ("memory", _memory_gib()),
        ("avx512_bf16", "yes" if "avx512_bf16" in flags else "no"),
        ("AMX", f"yes ({', '.join(amx)})" if amx else "no"),
        ("Python", platform.python_version()),
    ]
    facts += [(label, _version(names)) for label, names in LIBRARIES]
    facts.append(("GPU", _gpu()))
    return facts


# ------------------------------------------------------------------ markdown


def _cell(value) -> str:
    return str(value).replace("|", "/").replace("\n", " ")


def _table(head: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _seconds(value) -> str:
    return f"{value:.3g} s" if isinstance(value, int | float) else "?"


def ratio_cells(row: dict) -> tuple:
    target = row.get("target")
    ratio = row.get("ratio")
    met = "" if target is None or ratio is None else ("yes" if ratio >= target else "**no**")
    ratio_text = "?" if ratio is None else f"{ratio:.2f}x [{row.get('ratio_low', ratio):.2f}..{row.get('ratio_high', ratio):.2f}]"
    return (
        row.get("case", ""),
        f"{row.get('ours', '?')}: {_seconds(row.get('ours_median'))} [{row.get('ours_spread', '?')}]",
        f"{row.get('peer', '?')}: {_seconds(row.get('peer_median'))} [{row.get('peer_spread', '?')}]",
        ratio_text,
        "" if target is None else f">= {target:g}x",
        met,
    )


def render(rows: list[dict], facts: list[tuple[str, str]]) -> str:
    rows = latest(rows)
    out = [
        "# Bench results",
        "",
        "Written by bench/render_results.py from the rows bench/harness.py appended; ratios are peer / ours (above 1: audiotok is faster).",
        "",
    ]
    out += ["## Machine", ""] + _table(("fact", "value"), facts) + [""]
    benches = list(dict.fromkeys(row["bench"] for row in rows))
    if not benches:
        out += ["No bench rows were recorded.", ""]
    for bench in benches:
        mine = [row for row in rows if row["bench"] == bench]
        out += [f"## {bench}", ""]
        ratios = [ratio_cells(row) for row in mine if row["kind"] == "ratio"]
        if ratios:
            out += (
                ["### Ratios", ""]
                + _table(("case", "ours median [spread]", "peer median [spread]", "ratio [per-round range]", "target", "met?"), ratios)
                + [""]
            )
        values = [(row.get("case", ""), row.get("name", ""), row.get("value", "")) for row in mine if row["kind"] == "fact"]
        if values:
            out += ["### Facts", ""] + _table(("case", "what", "value"), values) + [""]
        timings = [
            (
                row.get("case", ""),
                row.get("name", ""),
                _seconds(row.get("median")),
                f"{_seconds(row.get('min'))}..{_seconds(row.get('max'))}",
                row.get("rounds", "?"),
            )
            for row in mine
            if row["kind"] == "timing"
        ]
        if timings:
            out += ["### Timings", ""] + _table(("case", "run", "median", "min..max", "rounds"), timings) + [""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="the JSON lines file ($AUDIOTOK_BENCH_RESULTS of the bench runs)")
    parser.add_argument("-o", "--output", default=str(ROOT / "bench" / "RESULTS.md"), help="markdown file to write (default bench/RESULTS.md; - for stdout)")
    args = parser.parse_args()
    path = Path(args.results)
    if not path.is_file():
        print(f"error: no results file {path} (hint: run the benches with AUDIOTOK_BENCH_RESULTS={path})", file=sys.stderr)
        return 1
    text = render(read_rows(path), machine_facts()) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
