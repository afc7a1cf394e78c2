"""Benchmark: wall time of grading the reference submission of each assignment (unit tests).

Issue 4's target: under 20 s per submission on the project's 2-core machine. Each
measurement is one fresh process, exactly what Gradescope runs for a submission::

    python -m autograder grade SUBMISSION --assignment A --unit-only --quiet --results R

(start Python, import torch and the reference's imports, extract both notebooks, start the
sandbox, whose zygote imports torch & co. in parallel, run the graded suite, write
results.json). The submission is ``solutions/<A>.ipynb`` itself, so every test runs to the
end (a wrong answer often fails faster). The median of `--repeats` runs (5) is reported
with every run, the 1-minute load average before each run (the machine is shared), and
a warm figure: the same grade repeated inside one process, as `grade-all` and `demo` do
after their first submission.

Usage::

    python benchmarks/grade_time.py                 # both assignments, 5 runs each
    python benchmarks/grade_time.py --repeats 3 --assignment ssl_methods

writes ``benchmarks/results/grade_time-<UTC time>.json`` with the command, the machine, the
torch version, the date and every measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.records import write_record  # noqa: E402

TARGET_SECONDS = 20.0
from autograder.contract import ASSIGNMENTS  # noqa: E402


def grade_command(
    submission: Path, results: Path, *options: str, assignment: str | None = None, unit_only: bool = False
) -> list[str]:
    """``python -m autograder grade SUBMISSION [--assignment A] [--unit-only] --quiet --results R
    [OPTIONS]``: what Gradescope's ``run_autograder`` runs for one submission, in a fresh process."""
    command = [sys.executable, "-m", "autograder", "grade", str(submission)]
    if assignment is not None:
        command += ["--assignment", assignment]
    if unit_only:
        command.append("--unit-only")
    return [*command, "--quiet", "--results", str(results), *options]


def reference_submission(work: Path, assignment: str) -> Path:
    """A submission folder ``work/<assignment>`` holding the reference, ``solutions/<assignment>.ipynb``."""
    submission = work / assignment
    submission.mkdir()
    shutil.copy(PROJECT_ROOT / "solutions" / f"{assignment}.ipynb", submission)
    return submission


def _machine() -> dict:
    import psutil
    import torch

    from benchmarks.machine import cpu_model

    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "root": os.geteuid() == 0,
    }


def _cold_run(submission: Path, assignment: str, results: Path) -> dict:
    command = grade_command(submission, results, assignment=assignment, unit_only=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    data = json.loads(results.read_text()) if results.exists() else {}
    return {
        "wall_s": round(wall, 2),
        "exit": process.returncode,
        "score": data.get("score"),
        "max_score": sum(t["max_score"] for t in data.get("tests", [])),
        "grader_reported_s": data.get("execution_time"),
        "load_1min_before": round(load, 2),
    }


def _warm_runs(submission: Path, assignment: str, repeats: int) -> list[float]:
    from autograder import grading, sandbox

    options = grading.GradeOptions(assignment=assignment, unit_only=True, results=submission / "warm.json")
    grading.grade(submission, options)  # the first grade starts the sandbox and loads the reference
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        grading.grade(submission, options)
        times.append(round(time.perf_counter() - started, 2))
    sandbox.close_all()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", choices=ASSIGNMENTS, action="append", help="default: both")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="result file (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    assignments = args.assignment or list(ASSIGNMENTS)
    record = {
        "benchmark": "grade_time",
        "command": " ".join([Path(sys.executable).name, "benchmarks/grade_time.py", *(argv or sys.argv[1:])]),
        "measured": "python -m autograder grade SUBMISSION --assignment A --unit-only --quiet --results R "
        "(one fresh process per run; SUBMISSION holds solutions/A.ipynb)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "target_s": TARGET_SECONDS,
        "results": {},
    }
    from autograder import sandbox

    record["sandbox"] = sandbox.detect_isolation().mode
    work = Path(tempfile.mkdtemp(prefix="grade-time-"))
    try:
        for assignment in assignments:
            submission = reference_submission(work, assignment)
            runs = []
            for index in range(args.repeats):
                run = _cold_run(submission, assignment, work / f"{assignment}-{index}.json")
                runs.append(run)
                print(json.dumps({"assignment": assignment, **run}), flush=True)
            median = statistics.median(r["wall_s"] for r in runs)
            warm = _warm_runs(submission, assignment, args.repeats)
            record["results"][assignment] = {
                "runs": runs,
                "median_s": median,
                "meets_target": median < TARGET_SECONDS,
                "all_full_score": all(r["exit"] == 0 and r["score"] == r["max_score"] > 0 for r in runs),
                "warm_runs_s": warm,
                "warm_median_s": statistics.median(warm),
            }
            print(
                f"{assignment}: median {median:.1f} s cold, {statistics.median(warm):.1f} s warm "
                f"(target < {TARGET_SECONDS:g} s)",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_record(record, "grade_time", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
