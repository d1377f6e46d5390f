"""bench/gpu_check.py on the CPU (what CI runs), and bench/render_results.py on a synthetic results file."""

import json
import os
import re
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402


def bench(script: str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *map(str, args)], capture_output=True, text=True, env=environment, timeout=600)


def table_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 7 and cells[0] != "check":
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def number(text: str, unit: str) -> float:
    match = re.search(rf"([\d,.]+)x? {re.escape(unit)}", text)
    assert match, f"no {unit!r} in {text!r}"
    return float(match.group(1).replace(",", ""))


def percent(text: str) -> float:
    match = re.search(r"([\d.]+)% ", text)
    assert match, f"no percentage in {text!r}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("gpu_check") / "results.jsonl"
    run = bench("gpu_check.py", "--quick", "--encoder", "tiny", "--layer", "2", "--no-cuda", env={"AUDIOTOK_BENCH_RESULTS": str(results)})
    return run, results


def test_cpu_run_prints_one_table_of_the_cpu_rows_and_names_every_skipped_cuda_part(cpu_run):
    run, results = cpu_run
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    rows = table_rows(run.stdout)
    extract = "extract-feats HuBERT-tiny L2"
    fp32, bf16 = rows[(extract, "audiotok cpu fp32 (CLI)")], rows[(extract, "audiotok cpu bf16 (CLI)")]
    loop = rows[(extract, "transformers loop cpu fp32 (per utterance)")]
    for speed, *_ in (fp32, bf16, loop):
        assert number(speed, "real time") > 0
    assert fp32[2] == "reference units"
    assert number(fp32[1], "the loop") > 0 and number(bf16[1], "the loop") > 0
    assert percent(loop[2]) == 100.0  # float32 through the CLI and alone through transformers: the same units
    assert percent(bf16[2]) >= 90.0
    (quantize_key,) = [key for key in rows if key[0].startswith("quantize K=") and key[1].startswith("cpu")]
    assert quantize_key[0].endswith(" D=32") and number(rows[quantize_key][0], "frames/s") > 0
    s3 = rows[("s3-extract (small test model, not a real S3)", "cpu")]
    assert number(s3[0], "real time") > 0 and number(s3[2], "tokens") > 0
    assert all(not cells[0].startswith("**") for cells in rows.values()), run.stdout  # no failed part
    assert len(rows) == 5 and run.stdout.count("\n| check |") == 1
    (skipped,) = [line for line in run.stdout.splitlines() if line.startswith("skipped")]
    assert skipped.startswith("skipped (--no-cuda): ")
    assert all(part in skipped for part in gpu_check.CUDA_PARTS) and len(gpu_check.CUDA_PARTS) == 5
    facts = [json.loads(line) for line in results.read_text().splitlines()]
    assert {(f["bench"], f["kind"]) for f in facts} >= {("gpu_check", "fact"), ("gpu_check", "ratio"), ("gpu_check", "timing")}
    assert {f["case"] for f in facts if f["kind"] == "fact" and f["name"] == "speed"} == {f"{check}, {run_}" for check, run_ in rows}


def test_a_failing_part_is_its_rows_error_and_the_others_go_on(tmp_path):
    check = gpu_check.Check(Namespace(rounds=1), tmp_path, cuda=False)

    def broken():
        raise gpu_check.RowError("audiotok quantize exited 1: error: no such bundle")

    check.part("quantize", "cpu", broken)
    check.part("s3-extract", "cpu", lambda: check.add(gpu_check.Row("s3-extract", "cpu", speed="5x real time")))
    text = gpu_check.table(check.rows)
    assert "| quantize | cpu | **error: audiotok quantize exited 1: error: no such bundle** |" in text
    assert "| s3-extract | cpu | 5x real time |" in text


def test_render_results_writes_the_machine_and_each_benchs_rows(tmp_path):
    rows = [
        {"bench": "quantize", "kind": "timing", "case": "D=768 K=500", "name": "audiotok", "median": 1.5, "min": 1.4, "max": 1.7, "rounds": 3},
        {"bench": "quantize", "kind": "timing", "case": "D=768 K=500", "name": "sklearn", "median": 3.0, "min": 2.9, "max": 3.2, "rounds": 3},
        {"bench": "quantize", "kind": "ratio", "case": "D=768 K=500", "ours": "audiotok", "peer": "sklearn", "ours_median": 1.5, "ours_spread": "1.4..1.7",
         "peer_median": 3.0, "peer_spread": "2.9..3.2", "ratio": 2.0, "ratio_low": 1.8, "ratio_high": 2.1, "rounds": 3, "target": 1.5},
        {"bench": "quantize", "kind": "ratio", "case": "D=1280 K=4096", "ours": "audiotok", "peer": "faiss", "ours_median": 2.0, "ours_spread": "2..2.1",
         "peer_median": 2.4, "peer_spread": "2.3..2.5", "ratio": 1.2, "ratio_low": 1.1, "ratio_high": 1.3, "rounds": 3, "target": 1.5},
        {"bench": "kmeans", "kind": "fact", "case": "200k x 768", "name": "peak RSS", "value": "1.1 GB"},
        {"bench": "kmeans", "kind": "fact", "case": "200k x 768", "name": "peak RSS", "value": "0.9 GB"},
    ]  # fmt: skip
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in rows) + '{"bench": "kmeans", "kind": "fa')  # a torn last line
    out = tmp_path / "RESULTS.md"
    run = bench("render_results.py", results, "-o", out)
    assert run.returncode == 0, run.stderr
    assert "results.jsonl:7: not a JSON row, skipped" in run.stderr
    text = out.read_text()
    for fact in (
        "date",
        "git commit",
        "CPU",
        "cores",
        "memory",
        "avx512_bf16",
        "AMX",
        "Python",
        "torch",
        "numpy",
        "scikit-learn",
        "faiss",
        "onnxruntime",
        "GPU",
    ):
        assert re.search(rf"^\| {fact} \| \S", text, re.MULTILINE), fact
    assert text.index("## quantize") < text.index("## kmeans")  # benches in the order they ran
    assert "| D=768 K=500 | audiotok: 1.5 s [1.4..1.7] | sklearn: 3 s [2.9..3.2] | 2.00x [1.80..2.10] | >= 1.5x | yes |" in text
    assert "| D=1280 K=4096 | audiotok: 2 s [2..2.1] | faiss: 2.4 s [2.3..2.5] | 1.20x [1.10..1.30] | >= 1.5x | **no** |" in text
    assert "| 200k x 768 | peak RSS | 0.9 GB |" in text and "1.1 GB" not in text  # a case reported twice keeps its last row
    assert "| D=768 K=500 | sklearn | 3 s | 2.9 s..3.2 s | 3 |" in text
    missing = bench("render_results.py", tmp_path / "none.jsonl", "-o", out)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no results file") and "Traceback" not in missing.stderr
