"""Batch grading (``python -m autograder grade-all``): a folder of submissions graded by a few
long-lived grading processes in parallel, into one CSV row per submission.

Each grading process (``python -m autograder _serve``, `serve`) keeps its sandbox and the
reference between submissions and grades the folders named on its stdin, one JSON line each,
replying one line per submission on stdout (prefixed with `SERVE_PREFIX`). A submission that
crashes or hangs its process (past the per-submission timeout) is recorded as such, the process
is restarted, and the others go on. `autograder.cli` parses the arguments and calls
`grade_all` and `write_csv`.
"""

from __future__ import annotations

import csv
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVE_PREFIX = "@@sslgrader "
#: Exit status of a grading whose grader failed (`autograder.grading.Outcome.exit_code`).
GRADER_ERROR = 2
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def serve(grade_one: Callable[[str, Path], int], lines: Any = None, out: Any = None) -> int:
    """Grade the folders named on `lines` (default stdin), replying on `out` (default stdout).

    Args:
        grade_one: grades one folder, writing results.json where told; returns its exit code.
        lines: JSON lines ``{"folder": ..., "results": ...}``.
        out: where the replies go, one line each: `SERVE_PREFIX` + ``{"folder", "exit", "seconds"}``.
    """
    lines = sys.stdin if lines is None else lines
    out = sys.stdout if out is None else out
    for line in lines:
        job = json.loads(line)
        started = time.monotonic()
        try:
            code = grade_one(job["folder"], Path(job["results"]))
        except Exception as error:  # noqa: BLE001 - reported for this submission; the others go on
            code = GRADER_ERROR
            print(f"grading {job['folder']} failed: {type(error).__name__}: {error}", file=sys.stderr)
        reply = {"folder": job["folder"], "exit": code, "seconds": round(time.monotonic() - started, 1)}
        out.write(SERVE_PREFIX + json.dumps(reply) + "\n")
        out.flush()
    return 0


class GradingProcess:
    """A grading process of grade-all (restarted when it dies or a submission times out)."""

    def __init__(self, command: Sequence[str], slot: int) -> None:
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            cwd=PROJECT_ROOT,
            env={**os.environ, "SSLGRADER_SLOT": str(slot)},
        )
        self.buffer = ""

    def grade(self, folder: Path, results: Path, timeout: float) -> dict | None:
        """The process's reply for one submission, or None if it died or timed out."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"folder": str(folder), "results": str(results)}) + "\n")
            self.process.stdin.flush()
        except OSError:
            return None
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while True:
            while "\n" in self.buffer:
                line, self.buffer = self.buffer.split("\n", 1)
                if line.startswith(SERVE_PREFIX):
                    return json.loads(line[len(SERVE_PREFIX) :])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                data = os.read(fd, 65536).decode("utf-8", "replace")
                if not data:
                    return None
                self.buffer += data

    def close(self) -> None:
        try:
            if self.process.stdin:
                self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


@dataclass
class Row:
    """One submission's line of the grades: its folder name, status, seconds and results.json."""

    submission: str
    status: str
    seconds: float
    results: dict | None = None

    @property
    def score(self) -> float | None:
        return None if self.results is None else self.results.get("score")


def submission_folders(root: Path) -> list[Path]:
    """The sub-folders of `root` that are submissions (hidden ones are not), sorted by name."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def grade_all(
    folders: Sequence[Path],
    command: Sequence[str],
    *,
    jobs: int,
    timeout: float,
    say: Callable[[str], None] | None = None,
) -> list[Row]:
    """Grade `folders` with `jobs` grading processes started by `command`; one row per folder.

    Each folder's ``results.json`` is removed first and then read back from what its grading
    wrote. `say`, when given, is told one line per finished submission.
    """
    pending = list(folders)
    lock = threading.Lock()
    rows: dict[Path, Row] = {}

    def work(slot: int) -> None:
        server = GradingProcess(command, slot)
        try:
            while True:
                with lock:
                    if not pending:
                        return
                    folder = pending.pop(0)
                results_path = folder / "results.json"
                if results_path.exists():
                    results_path.unlink()
                started = time.monotonic()
                reply = server.grade(folder, results_path, timeout)
                row = Row(folder.name, "", round(time.monotonic() - started, 1))
                if reply is None:
                    row.status = "grader crashed or timed out"
                    server.process.kill()
                    server.close()
                    server = GradingProcess(command, slot)
                else:
                    row.status = {0: "graded", GRADER_ERROR: "grader error"}.get(reply["exit"], f"exit {reply['exit']}")
                try:
                    row.results = json.loads(results_path.read_text())
                except (OSError, ValueError):
                    pass
                with lock:
                    rows[folder] = row
                if say is not None:
                    score = row.score
                    say(
                        f"{row.submission}: {row.status}"
                        + (f", score {score:g}" if score is not None else "")
                        + f" ({row.seconds} s)"
                    )
        finally:
            server.close()

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(max(1, min(jobs, len(folders))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [rows[f] for f in folders if f in rows]


def task_columns(rows: Sequence[Row]) -> list[str]:
    """The tasks graded in any row, in the order they first appear."""
    tasks: list[str] = []
    for row in rows:
        for task in (row.results or {}).get("extra_data", {}).get("tasks", {}):
            if task not in tasks:
                tasks.append(task)
    return tasks


def write_csv(rows: Sequence[Row], path: Path) -> None:
    """The grades: ``submission, <task>..., total, max, status``, one row per submission."""
    tasks = task_columns(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", *tasks, "total", "max", "status"])
        for row in rows:
            results = row.results or {}
            task_scores = results.get("extra_data", {}).get("tasks", {})
            maximum = sum(t.get("max_score", 0) for t in results.get("tests", []))
            writer.writerow(
                [
                    row.submission,
                    *[task_scores.get(t, {}).get("score", "") for t in tasks],
                    results.get("score", ""),
                    maximum if results else "",
                    row.status,
                ]
            )


def exit_code(rows: Sequence[Row]) -> int:
    """0 when every submission was graded (whatever its score), else `GRADER_ERROR`."""
    return 0 if all(row.status == "graded" for row in rows) else GRADER_ERROR


__all__ = [
    "GRADER_ERROR",
    "GradingProcess",
    "Row",
    "SERVE_PREFIX",
    "exit_code",
    "grade_all",
    "serve",
    "submission_folders",
    "task_columns",
    "write_csv",
]
