"""Command line: ``python -m autograder {grade, grade-all, release, demo, gradescope}``.

``grade SUBMISSION_DIR [--assignment A] [--results PATH]``
    Grade one submission folder; writes ``results.json`` (Gradescope's format) and prints a
    table per task. Exit status 0 whenever grading worked, whatever the score; 2 when the
    grader itself failed (e.g. the reference notebook is missing); 64 for a wrong call.
``grade-all SUBMISSIONS_DIR --jobs N --csv grades.csv``
    Grade every sub-folder (one submission each) in parallel; a submission that breaks
    anything is recorded as such and never stops the others. One CSV row per submission:
    per-task scores, total, status.
``release``
    Regenerate the student notebooks from ``solutions/`` (`autograder.release`).
``demo``
    The README's main job, offline: release, then grade the reference solutions, an
    untouched student notebook and a partly wrong one, printing the three tables.
``gradescope``
    Build the Gradescope autograder zip of an assignment (`autograder.gradescope`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from autograder.contract import ASSIGNMENTS

USAGE_ERROR = 64
GRADER_ERROR = 2


def _add_grading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", choices=list(ASSIGNMENTS),
                        help="which assignment (default: detected from the notebook's file name)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the hidden tests' inputs, for a reproducible regrade (default: course.toml "
                             "[grading] hidden_seed; results.json names the seed it used)")
    parser.add_argument("--solutions", type=Path, default=None,
                        help="folder of the reference notebooks (default: the project's solutions/)")
    parser.add_argument("--call-timeout", type=float, default=None,
                        help="seconds one call of the student's code may take (default: course.toml [grading], 10)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds the student's code may take in all (default: course.toml [grading], 60)")
    parser.add_argument("--load-timeout", type=float, default=30.0,
                        help="seconds one top-level statement may take while the notebook is loaded (default 30)")
    parser.add_argument("--memory-mb", type=int, default=None,
                        help="memory the student's code may use, in MB (default: half the free memory, 256-1536)")
    parser.add_argument("--isolation", choices=["auto", "namespace", "uid", "process", "unconfined"],
                        default=os.environ.get("SSL_LAB_ISOLATION", "auto"),
                        help="how to isolate the student's code (default: the strongest this machine allows; "
                             "grading stops when it is not enough); unconfined only for code you trust, never as root")
    parser.add_argument("--unit-only", action="store_true", help="only the unit tests (not the checkpoint)")


def _limits(args: argparse.Namespace) -> Any:
    from autograder import sandbox

    from autograder.course_settings import load_grading_settings

    settings = load_grading_settings()
    limits = sandbox.Limits(call_timeout=args.call_timeout or settings["call_seconds"], load_timeout=args.load_timeout,
                            budget_s=args.budget or settings["budget_seconds"])
    if args.memory_mb:
        limits.memory_mb = args.memory_mb
    return limits


def _start_sandbox_early(args: argparse.Namespace, submission: Path | None) -> Any:
    """Start the sandbox before this process imports torch: its zygote's imports (torch,
    torchvision, ...) then run while the grader imports its own. Returns the isolation."""
    from autograder import extract, sandbox
    from autograder.assignments import find_notebook

    try:
        isolation = sandbox.detect_isolation(args.isolation)
    except sandbox.SandboxError:
        return None  # grading reports it as a grader error, with a results.json
    preload = sandbox.PRELOAD
    if submission is not None:
        _, notebook, _ = find_notebook(submission, args.assignment)
        try:
            if notebook is not None:
                preload = sandbox.preload_for(extract.imported_modules(extract.extract(notebook).statements))
        except extract.NotebookError:
            pass  # grading reports it
    sandbox.shared_zygote(isolation, _limits(args), preload)
    return isolation


def _options(args: argparse.Namespace, results: Path | None, progress: Any) -> Any:
    from autograder import grading

    return grading.GradeOptions(assignment=args.assignment, results=results,
                                solutions=args.solutions or grading.SOLUTIONS_DIR, limits=_limits(args),
                                isolation=args.isolation, unit_only=args.unit_only, progress=progress,
                                seed=args.seed)


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_grade(args: argparse.Namespace) -> int:
    if not args.submission.is_dir():
        print(f"error: {args.submission} is not a folder; pass the folder that holds the submitted notebook",
              file=sys.stderr)
        return USAGE_ERROR
    isolation = _start_sandbox_early(args, args.submission)
    if not args.quiet and isolation is not None:
        _say(isolation.summary())
    from autograder import grading

    progress = None if args.quiet else _say
    try:
        outcome = grading.grade(args.submission, _options(args, args.results, progress))
    except grading.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    results = outcome.results
    if not args.quiet:
        _say("")
        _say(results["output"])
        _say(f"\nscore {results['score']:g} / {sum(t['max_score'] for t in results['tests']):g}"
             f"  ({outcome.assignment or 'no assignment'}, {results['execution_time']:.1f} s)"
             f"\nresults: {outcome.results_path}")
    return outcome.exit_code


SERVE_PREFIX = "@@sslgrader "


def cmd_serve(args: argparse.Namespace) -> int:
    """(internal) Grade the folders named on stdin, one JSON line each, in this process.

    Used by grade-all: a serving process keeps its sandbox and the reference between
    submissions. Replies one line per submission on stdout, prefixed with SERVE_PREFIX.
    """
    _start_sandbox_early(args, None)
    from autograder import grading

    for line in sys.stdin:
        job = json.loads(line)
        started = time.monotonic()
        try:
            outcome = grading.grade(job["folder"], _options(args, Path(job["results"]), None))
            code = outcome.exit_code
        except Exception as error:  # noqa: BLE001 - reported for this submission; the others go on
            code = GRADER_ERROR
            print(f"grading {job['folder']} failed: {type(error).__name__}: {error}", file=sys.stderr)
        reply = {"folder": job["folder"], "exit": code, "seconds": round(time.monotonic() - started, 1)}
        sys.stdout.write(SERVE_PREFIX + json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


class _Server:
    """A grading process of grade-all (restarted when it dies or a submission times out)."""

    def __init__(self, args: argparse.Namespace, slot: int) -> None:
        command = [sys.executable, "-m", "autograder", "_serve",
                   "--load-timeout", str(args.load_timeout), "--isolation", args.isolation]
        for flag, value in (("--assignment", args.assignment), ("--solutions", args.solutions),
                            ("--memory-mb", args.memory_mb), ("--call-timeout", args.call_timeout),
                            ("--budget", args.budget)):
            if value:
                command += [flag, str(value)]
        if args.unit_only:
            command.append("--unit-only")
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, bufsize=1,
                                        cwd=Path(__file__).resolve().parents[1],
                                        env={**os.environ, "SSLGRADER_SLOT": str(slot)})
        self.buffer = ""

    def grade(self, folder: Path, results: Path, timeout: float) -> dict | None:
        """The server's reply for one submission, or None if it died or timed out."""
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
                    return json.loads(line[len(SERVE_PREFIX):])
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


def cmd_grade_all(args: argparse.Namespace) -> int:
    root = Path(args.submissions)
    if not root.is_dir():
        print(f"error: {root} is not a folder of submissions", file=sys.stderr)
        return USAGE_ERROR
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        print(f"error: {root} has no sub-folders (one per submission)", file=sys.stderr)
        return USAGE_ERROR
    pending = list(folders)
    lock = threading.Lock()
    rows: dict[Path, dict] = {}

    def work(slot: int) -> None:
        server = _Server(args, slot)
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
                reply = server.grade(folder, results_path, args.timeout)
                row: dict[str, Any] = {"submission": folder.name, "seconds": round(time.monotonic() - started, 1)}
                if reply is None:
                    row["status"] = "grader crashed or timed out"
                    server.process.kill()
                    server.close()
                    server = _Server(args, slot)
                else:
                    row["status"] = {0: "graded", GRADER_ERROR: "grader error"}.get(reply["exit"],
                                                                                     f"exit {reply['exit']}")
                try:
                    row["results"] = json.loads(results_path.read_text())
                except (OSError, ValueError):
                    pass
                with lock:
                    rows[folder] = row
                if not args.quiet:
                    score = row.get("results", {}).get("score")
                    _say(f"{row['submission']}: {row['status']}"
                         + (f", score {score:g}" if score is not None else "") + f" ({row['seconds']} s)")
        finally:
            server.close()

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(max(1, min(args.jobs, len(folders))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = [rows[f] for f in folders if f in rows]
    tasks: list[str] = []
    for row in ordered:
        for task in row.get("results", {}).get("extra_data", {}).get("tasks", {}):
            if task not in tasks:
                tasks.append(task)
    csv_path = Path(args.csv)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", *tasks, "total", "max", "status"])
        for row in ordered:
            results = row.get("results", {})
            task_scores = results.get("extra_data", {}).get("tasks", {})
            maximum = sum(t.get("max_score", 0) for t in results.get("tests", []))
            writer.writerow([row["submission"], *[task_scores.get(t, {}).get("score", "") for t in tasks],
                             results.get("score", ""), maximum if results else "", row["status"]])
    if not args.quiet:
        _say(f"wrote {csv_path} ({len(ordered)} submissions)")
    return 0 if all(r["status"] == "graded" for r in ordered) else GRADER_ERROR


def cmd_release(release_args: list[str]) -> int:
    try:
        from autograder import release
    except ImportError as error:
        print(f"error: the release tool (autograder/release.py) is missing or broken: {error}", file=sys.stderr)
        return GRADER_ERROR
    main = getattr(release, "main", None)
    if main is None:
        print("error: autograder.release has no main(); update the release tool", file=sys.stderr)
        return GRADER_ERROR
    return int(main(release_args) or 0)


def cmd_demo(args: argparse.Namespace) -> int:
    from autograder import demo

    return demo.main(quiet=args.quiet, keep=args.keep)


def cmd_check_sandbox(args: argparse.Namespace) -> int:
    """Start the sandbox as grading would, probe it, and run one call in it; exit 1 when
    submissions cannot be isolated here (Gradescope's setup.sh runs this as its last step)."""
    import tempfile

    from autograder import extract, grading, sandbox

    started = time.monotonic()
    try:
        isolation = sandbox.detect_isolation(args.isolation)
        _say(isolation.summary())
        limits = _limits(args)
        zygote = sandbox.shared_zygote(isolation, limits, ("torch",))
        with tempfile.TemporaryDirectory(prefix="ssl-lab-check-") as folder:
            notebook = Path(folder) / "check.ipynb"
            notebook.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
                {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                 "source": "import torch\n\ndef double(x):\n    return 2 * x\n"}]}))
            statements = extract.statements_payload(extract.extract(notebook).statements)
            worker = sandbox.Worker(zygote, statements, limits,
                                    secrets=grading.secret_paths(Path(folder), Path(folder) / "results.json",
                                                                 args.solutions or grading.SOLUTIONS_DIR))
            try:
                import torch

                value = worker.run("call", {"fn": "double", "args": [torch.arange(3.0)], "kwargs": {}})["returned"]
                if not isinstance(value, torch.Tensor) or value.tolist() != [0.0, 2.0, 4.0]:
                    raise sandbox.SandboxError(f"a call in the sandbox returned {value!r}")
                _say(sandbox.applied_summary(worker.zygote.applied))
            finally:
                worker.close()
    except (sandbox.SandboxError, sandbox.SubmissionFault, OSError) as error:
        print(f"check-sandbox FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        sandbox.close_all()
    _say(f"check-sandbox: OK ({isolation.mode} mode, {time.monotonic() - started:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade one submission folder")
    grade.add_argument("submission", type=Path, help="the folder holding the submitted notebook")
    grade.add_argument("--results", type=Path, default=None, help="where to write results.json "
                       "(default: SUBMISSION/results.json)")
    grade.add_argument("--quiet", action="store_true", help="print nothing (results.json only)")
    _add_grading_options(grade)
    grade.set_defaults(run=cmd_grade)
    grade_all = commands.add_parser("grade-all", help="grade a folder of submissions in parallel")
    grade_all.add_argument("submissions", type=Path, help="a folder with one sub-folder per submission")
    grade_all.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    grade_all.add_argument("--csv", default="grades.csv", help="where to write the grades (default grades.csv)")
    grade_all.add_argument("--timeout", type=float, default=900.0, help="seconds per submission (default 900)")
    grade_all.add_argument("--quiet", action="store_true")
    _add_grading_options(grade_all)
    grade_all.set_defaults(run=cmd_grade_all)
    check = commands.add_parser("check-sandbox", help="check that this machine can isolate submissions "
                                "(exit 1 if not; Gradescope's setup.sh runs it)")
    _add_grading_options(check)
    check.set_defaults(run=cmd_check_sandbox)
    serve = commands.add_parser("_serve", help="(internal) one grading process of grade-all")
    _add_grading_options(serve)
    serve.set_defaults(run=cmd_serve)
    # `release ARGS...` is handed to autograder.release's own parser as is (see `main`).
    commands.add_parser("release", add_help=False,
                        help="regenerate notebooks/ from solutions/ (autograder.release; --help for its options)")
    demo = commands.add_parser("demo", help="release, then grade three sample submissions offline")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--keep", type=Path, default=None, help="keep the sample submissions in this folder")
    demo.set_defaults(run=cmd_demo)
    from autograder import manual  # no torch at import time

    manual_answers = commands.add_parser("manual-answers", help="one page per question graded by hand, "
                                         "every submission's answer side by side")
    manual.add_arguments(manual_answers)
    manual_answers.set_defaults(run=manual.cmd_manual_answers)
    from autograder import gradescope as gradescope_zip  # stdlib-only at import time

    gradescope = commands.add_parser("gradescope", help="build dist/<assignment>-autograder.zip for Gradescope")
    gradescope_zip.add_build_arguments(gradescope)
    gradescope.set_defaults(run=gradescope_zip.cmd_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["release"]:
        return cmd_release(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return USAGE_ERROR if exit_.code else 0
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
