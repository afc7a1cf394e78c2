"""Grade every sample submission once per test session, with `grade-all --jobs 2 --unit-only`
(the samples have no checkpoint; tests/test_checkpoint_grading.py covers that test).

tests/test_grading.py and tests/test_hostile.py both read this one run: building ~30
notebooks and grading them in two long-lived grading processes costs about as much as a
few separate `grade` calls would.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from . import build, hostile

PROJECT_ROOT = build.PROJECT_ROOT
CALL_TIMEOUT = 5  # seconds per call of a submission's code (the hostile endless loops cost this)
LOAD_TIMEOUT = 8  # seconds per top-level statement (the hostile class body that never ends costs this)


@dataclass
class GradedCorpus:
    root: Path
    samples: dict[str, build.Sample]
    results: dict[str, dict]  # sample name -> results.json (absent if none was written)
    rows: dict[str, dict]  # sample name -> its CSV row
    returncode: int
    seconds: float
    stdout: str
    leftovers: list[str] = field(default_factory=list)  # processes found after grading

    def task(self, sample: str, task: str) -> dict:
        return self.results[sample]["extra_data"]["tasks"][task]

    def tests(self, sample: str, task: str) -> list[dict]:
        return [t for t in self.results[sample]["tests"] if task in t["tags"]]


_CACHE: dict[str, GradedCorpus] = {}


def _leftover_processes() -> list[str]:
    """Processes of the sandbox user, or sleeping like the hostile samples' leftovers."""
    try:
        import pwd

        sandbox_uids = {pwd.getpwnam(name).pw_uid for name in ("sslgrader",) if _user_exists(name)}
    except ImportError:
        sandbox_uids = set()
    found = []
    for process in psutil.process_iter(["pid", "uids", "cmdline"]):
        try:
            command = " ".join(process.info["cmdline"] or [])
            if (
                process.info["uids"]
                and process.info["uids"].real in sandbox_uids
                or str(hostile.LEFTOVER_SLEEP) in command
            ):
                found.append(f"{process.info['pid']}: {command[:120]}")
        except (psutil.Error, TypeError):
            continue
    return found


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def graded_corpus(tmp_root: Path) -> GradedCorpus:
    """Build the samples under `tmp_root` and grade them all (once per process)."""
    if "corpus" in _CACHE:
        return _CACHE["corpus"]
    root = tmp_root / "submissions"
    samples = {s.name: s for s in build.build(root)}
    csv_path = tmp_root / "grades.csv"
    started = time.monotonic()
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade-all",
            str(root),
            "--jobs",
            "2",
            "--csv",
            str(csv_path),
            "--call-timeout",
            str(CALL_TIMEOUT),
            "--load-timeout",
            str(LOAD_TIMEOUT),
            "--unit-only",
            "--quiet",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    seconds = time.monotonic() - started
    time.sleep(1.0)  # let the kernel finish tearing down the sandboxes
    leftovers = _leftover_processes()
    results = {}
    for name in samples:
        path = root / name / "results.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    with open(csv_path, newline="") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    _CACHE["corpus"] = GradedCorpus(
        root, samples, results, rows, process.returncode, seconds, process.stdout + process.stderr, leftovers
    )
    return _CACHE["corpus"]


def sample_names(prefix: str) -> list[str]:
    """Names of the samples starting with `prefix` (for parametrising at collection time)."""
    return [s.name for s, _, _ in build.plan(Path("/nonexistent")) if s.name.startswith(prefix)]
