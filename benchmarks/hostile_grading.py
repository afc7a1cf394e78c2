"""Benchmark: what the slowest and the largest hostile submissions cost a grading, against the reference.

A submission cannot stop the grader, but it can try to make a grading slow (every call just
under its time limit) or heavy (every call returning as much as the grader accepts, and
printing megabytes). This script grades, in a fresh ``python -m autograder grade`` process
each (what Gradescope's ``run_autograder`` runs, ``--unit-only``), the ``ssl_methods``
reference and two attack notebooks built from it:

- ``slowest``: every graded function and forward sleeps until just under the per-call limit;
  the submission's time budget (``course.toml [grading] budget_seconds``) ends it;
- ``largest``: every graded function returns a tensor just under the cap on one answer
  (``autograder.sandbox.limits.MAX_RESPONSE_PAYLOAD``) and prints 4 MB.

For each it records the wall time, the grader process's own peak resident memory (the root
process that holds the reference and writes the results) and the peak of all processes
together (sum of PSS, as in ``grading_memory.py``), with the isolation mode that ran.

Usage::

    python benchmarks/hostile_grading.py [--isolation auto] [--budget SECONDS]

writes ``benchmarks/results/hostile_grading-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "tests"))

from benchmarks.grade_time import grade_command  # noqa: E402
from benchmarks.records import write_record  # noqa: E402

GRADED = {  # name -> how it is called (a function or a class with forward)
    "extract_features_and_labels": "function",
    "run_knn_probe": "function",
    "run_linear_probe": "function",
    "nt_xent": "function",
    "simclr_train_step": "function",
    "byol_train_step": "function",
    "barlow_loss": "function",
    "barlow_train_step": "function",
}
CLASSES = ("SimCLRModel", "BYOLModel")


def slowest_cell(call_timeout: float) -> str:
    pause = max(0.5, call_timeout - 0.5)
    lines = ["import time", ""]
    for name in GRADED:
        lines += [f"def {name}(*args, **kwargs):", f"    time.sleep({pause})", "    return 0.5", ""]
    for name in CLASSES:
        lines += [
            f"class {name}({name}Base):",
            "    def forward(self, x):",
            f"        time.sleep({pause})",
            "        return x",
            "",
        ]
    lines += ["class EMA:", "    def __init__(self, beta=0.99):", f"        time.sleep({pause})", ""]
    return "\n".join(lines)


def largest_cell(max_bytes: int) -> str:
    elements = (max_bytes - 4096) // 4
    lines = [
        "import sys",
        "import torch",
        "",
        "def _large():",
        "    sys.stdout.write('x' * 4_000_000)",
        f"    return torch.ones({elements})",
        "",
    ]
    for name in GRADED:
        lines += [f"def {name}(*args, **kwargs):", "    return _large()", ""]
    for name in CLASSES:
        lines += [f"class {name}({name}Base):", "    def forward(self, x):", "        return _large(), _large()", ""]
    return "\n".join(lines)


def _sample(pid: int) -> tuple[float, float]:
    """(RSS of the grader process, sum of PSS of its tree), in MiB."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
        own = root.memory_info().rss
    except psutil.Error:
        return 0.0, 0.0
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    return own / 2**20, total / 2**20


def _grade(folder: Path, extra: list[str], interval: float) -> dict:
    results = folder / "results.json"
    command = grade_command(folder, results, *extra, unit_only=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    own = tree = 0.0
    while process.poll() is None:
        a, b = _sample(process.pid)
        own, tree = max(own, a), max(tree, b)
        time.sleep(interval)
    _, err = process.communicate()
    data = json.loads(results.read_text()) if results.exists() else {}
    extra_data = data.get("extra_data", {})
    return {
        "wall_s": round(time.perf_counter() - started, 1),
        "exit": process.returncode,
        "score": data.get("score"),
        "grader_peak_rss_mb": round(own, 1),
        "peak_total_pss_mb": round(tree, 1),
        "student_code_s": extra_data.get("student_code_seconds"),
        "sandbox": extra_data.get("sandbox"),
        "results_json_bytes": results.stat().st_size if results.exists() else None,
        "stderr_tail": err[-500:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--budget", type=float, help="default: course.toml [grading]")
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from autograder.course_settings import load_grading_settings
    from autograder.sandbox.limits import MAX_RESPONSE_PAYLOAD
    from benchmarks.machine import machine_summary
    from submissions.attacks import attack_notebook

    settings = load_grading_settings()
    budget = args.budget or settings["budget_seconds"]
    extra = ["--isolation", args.isolation, "--budget", str(budget)]
    solution = PROJECT_ROOT / "solutions" / "ssl_methods.ipynb"
    notebooks = {
        "reference": json.loads(solution.read_text()),
        "slowest": attack_notebook(
            solution, [slowest_cell(settings["call_seconds"]).replace("{", "{{").replace("}", "}}")]
        ),
        "largest": attack_notebook(
            solution, [largest_cell(MAX_RESPONSE_PAYLOAD).replace("{", "{{").replace("}", "}}")]
        ),
    }
    record = {
        "benchmark": "hostile_grading",
        "command": shlex.join(["python", *sys.argv]),
        "time_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_summary(),
        "budget_s": budget,
        "call_timeout_s": settings["call_seconds"],
        "max_response_bytes": MAX_RESPONSE_PAYLOAD,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="hostile-grading-") as work:
        for name, notebook in notebooks.items():
            folder = Path(work) / name
            folder.mkdir()
            (folder / "ssl_methods.ipynb").write_text(json.dumps(notebook))
            run = _grade(folder, extra, args.interval)
            record["runs"][name] = run
            print(name, json.dumps(run), flush=True)
    reference = record["runs"]["reference"]
    record["ratios"] = {
        name: {
            "wall": round(run["wall_s"] / reference["wall_s"], 2),
            "grader_peak_rss": round(run["grader_peak_rss_mb"] / reference["grader_peak_rss_mb"], 2),
        }
        for name, run in record["runs"].items()
        if name != "reference"
    }
    print(json.dumps(record["ratios"]))
    write_record(record, "hostile_grading", args.out)
    return 0 if all(run["exit"] == 0 for run in record["runs"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
