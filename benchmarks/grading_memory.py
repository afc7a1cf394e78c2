"""Benchmark: peak memory and wall time of a whole grading, all of its processes together.

Gradescope limits the memory of the whole container, not of one process. Grading a
submission runs several Python processes at once: the grader (pytest, the reference
solution, and for the homework the checkpoint evaluation), the sandbox's zygote, which
imports what the notebook imports, and the worker forked from it that runs the student's
code. This script runs, in a fresh process per assignment, exactly what Gradescope's
``run_autograder`` runs::

    python -m autograder grade SUBMISSION --assignment A --quiet --results R

on the reference submission (``solutions/<A>.ipynb``; for the homework also a
``simclr_lin_best.pt``, a randomly initialised classifier: evaluation costs the same for
any weights, and the CIFAR-10 test split is given through ``$SSL_LAB_TEST_SPLIT``), and
samples every process of the tree every ``--interval`` seconds with psutil. It records the
largest sum of proportional set sizes (PSS: pages shared between the zygote and its forked
worker, or with the page cache, are divided among the processes that map them, so the sum
is what the processes occupy together) and, for comparison, the largest sum of RSS (which
counts shared pages once per process).

Usage::

    python benchmarks/grading_memory.py                                  # both assignments
    python benchmarks/grading_memory.py --assignment simclr_homework --source /path/to/cifar10

writes ``benchmarks/results/grading_memory-<UTC time>.json`` with the command, the machine,
the torch build and every measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from autograder.contract import ASSIGNMENTS  # noqa: E402
from benchmarks.records import write_record  # noqa: E402

if TYPE_CHECKING:
    import psutil


def _tree_memory(root: psutil.Process) -> tuple[float, float, int]:
    """(sum of PSS, sum of RSS, number of processes) of `root` and its descendants, in MiB."""
    import psutil

    pss = rss = 0
    count = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0, 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except psutil.Error:  # ended between the listing and the reading
            continue
        pss += getattr(info, "pss", info.rss)
        rss += info.rss
        count += 1
    return pss / 2**20, rss / 2**20, count


def _measure(command: list[str], env: dict, interval: float) -> dict:
    """Run `command`, sampling its process tree until it ends."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(process.pid)
    peak_pss = peak_rss = 0.0
    most = 0
    samples = 0
    while process.poll() is None:
        pss, rss, count = _tree_memory(root)
        peak_pss, peak_rss, most = max(peak_pss, pss), max(peak_rss, rss), max(most, count)
        samples += 1
        time.sleep(interval)
    out, err = process.communicate()
    return {
        "wall_s": round(time.perf_counter() - started, 2),
        "exit": process.returncode,
        "peak_total_pss_mb": round(peak_pss, 1),
        "peak_total_rss_mb": round(peak_rss, 1),
        "most_processes": most,
        "samples": samples,
        "stderr": err[-2000:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", choices=ASSIGNMENTS, action="append", help="default: both")
    parser.add_argument(
        "--source",
        default=str(PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg"),
        help="CIFAR-10 copy whose test split the homework's checkpoint is graded on",
    )
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    assignments = args.assignment or list(ASSIGNMENTS)

    import torch

    from autograder import sandbox
    from autograder.checkpoint.split import prepare_test_split
    from benchmarks.checkpoint_eval import _child_torch
    from benchmarks.grade_time import grade_command, reference_submission
    from benchmarks.machine import machine_summary
    from helpers.checkpoint import save_classifier
    from helpers.data import CIFAR10_MEAN, CIFAR10_STD
    from helpers.models import LinearClassifier

    env = {k: v for k, v in os.environ.items() if not k.startswith("SSL_LAB_")}
    record = {
        "benchmark": "grading_memory",
        "command": shlex.join(["python", *sys.argv]),
        "time_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_summary(),
        **_child_torch(sys.executable, env),
        "sandbox": sandbox.detect_isolation().mode,
        "measured": "python -m autograder grade SUBMISSION --assignment A --quiet --results R "
        "(the reference notebook; for simclr_homework also a random classifier checkpoint)",
        "runs": [],
    }
    work = Path(tempfile.mkdtemp(prefix="grading-memory-"))
    try:
        for assignment in assignments:
            submission = reference_submission(work, assignment)
            run_env = dict(env)
            if assignment == "simclr_homework":
                split = prepare_test_split(
                    work / "cifar10-test.pt",
                    source=args.source,
                    download=False,
                    download_root=work / "decode",
                    verbose=True,
                )
                run_env["SSL_LAB_TEST_SPLIT"] = str(split)
                torch.manual_seed(0)
                save_classifier(LinearClassifier(mean=CIFAR10_MEAN, std=CIFAR10_STD), submission / "simclr_lin_best.pt")
            results = work / f"{assignment}.json"
            command = grade_command(submission, results, assignment=assignment)
            run = {"assignment": assignment, **_measure(command, run_env, args.interval)}
            data = json.loads(results.read_text()) if results.exists() else {}
            run["score"] = data.get("score")
            run["tests"] = len(data.get("tests", []))
            if run["exit"] != 0:
                print(run["stderr"], file=sys.stderr)
                return 1
            del run["stderr"]
            record["runs"].append(run)
            print(json.dumps(run), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if record["torch_cuda_build"]:
        record["notes"] = [
            f"torch {record['torch']} is a CUDA build: each of the processes that import it maps "
            "its CUDA libraries, which the CPU build that Gradescope's setup.sh installs does not have."
        ]
    write_record(record, "grading_memory", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
