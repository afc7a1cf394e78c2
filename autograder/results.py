"""Pytest plugin: turn a run of the graded suite into Gradescope's ``results.json``.

Every graded test carries three markers (CONVENTIONS.md 9: the rubric sits on the test)::

    @pytest.mark.task("nt_xent")          # the task id of DESIGN.md's contract
    @pytest.mark.points(2)                # max score
    @pytest.mark.visibility("visible")    # visible | hidden | after_due_date | after_published

and a docstring whose first line says what is asked (CONVENTIONS.md 10). A passing test may
set its output, and an extra-credit test (``points(0)``) its score, through
``request.node.user_properties``: ``("output", text)``, ``("score", number)``; a failing
test may set a partial score the same way (kept within 0 and its max score). Any graded test
may add to results.json's ``extra_data`` (``("extra_data", mapping)``) and its
``leaderboard`` (``("leaderboard", [{"name", "value", "order"}, ...])``, Gradescope's
leaderboard entries). A test module
declares which assignment it grades with ``pytestmark = pytest.mark.assignment("...")``;
the plugin keeps only the tests of the assignment being graded, so adding a graded file
(e.g. the checkpoint tests) is adding one module. Tests marked ``checkpoint`` are left out
with ``unit_only``.

The plugin collects every result in memory; `build_results` turns them into the results
dictionary and `autograder.grading.grade` writes it once, atomically (`write_json_atomic`). It is always valid JSON and under 1 MB: every output is cut to
a few KB and, if the whole is still too large, cut further. Gradescope's format:
https://gradescope-autograders.readthedocs.io/en/latest/specs/
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autograder.compare import GradingFailure
from autograder.sandbox import SandboxError, SubmissionFault

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
MAX_RESULTS_BYTES = 1_000_000
TEST_OUTPUT_CHARS = 6000
PRINTED_CHARS = 2500
TOP_OUTPUT_CHARS = 12000
SMALL_EXTRA_CHARS = 2000  # an extra_data entry kept when results.json must shrink


class GraderError(RuntimeError):
    """The grader itself failed (a missing reference, a bug): not the student's fault."""


def clean_text(text: str, limit: int) -> str:
    """Valid, printable UTF-8 text of at most `limit` characters (middle elided)."""
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = "".join(ch if ch in "\n\t" or ch >= " " else "?" for ch in text)
    if len(text) > limit:
        half = max(0, limit // 2 - 40)
        text = text[:half] + f"\n[... {len(text) - 2 * half} characters omitted ...]\n" + text[-half:]
    return text


@dataclass
class GradedTest:
    nodeid: str
    task: str
    name: str
    max_score: float
    visibility: str
    number: str
    score: float = 0.0
    status: str = "failed"
    output: str = ""
    grader_error: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "number": self.number,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "output": self.output,
            "output_format": "text",
            "visibility": self.visibility,
            "tags": [self.task],
        }


class ShortFailureReports:
    """Builds a failed test's report with a one-line repr: pytest's own (source and traceback
    of every frame) costs ~0.4 s per failure, and the student sees our message instead."""

    def __init__(self, results: ResultsPlugin) -> None:
        self.plugin = results

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        excinfo = call.excinfo
        if (
            item.nodeid not in self.plugin.results
            or excinfo is None
            or isinstance(excinfo.value, pytest.skip.Exception)
        ):
            return None  # pytest's default
        return pytest.TestReport(
            item.nodeid,
            item.location,
            dict.fromkeys(item.keywords, 1),
            "failed",
            f"{excinfo.typename}: {str(excinfo.value)[:2000]}",
            call.when,
            (),
            call.duration,
            call.start,
            call.stop,
            user_properties=item.user_properties,
        )


def _marker_arg(item: pytest.Item, name: str) -> Any:
    marker = item.get_closest_marker(name)
    return marker.args[0] if marker is not None and marker.args else None


class ResultsPlugin:
    """Collects per-test results; see the module docstring.

    Args:
        assignment: the assignment whose tests run.
        task_order: task ids in the order of the contract (for numbering and tables).
        take_output: returns what the submission printed since the last call (or "").
        unit_only: leave out tests marked `checkpoint`.
    """

    def __init__(
        self,
        assignment: str,
        task_order: list[str],
        take_output: Any = None,
        unit_only: bool = False,
        progress: Any = None,
    ) -> None:
        self.assignment = assignment
        self.task_order = task_order
        self.take_output = take_output or (lambda: "")
        self.unit_only = unit_only
        self.progress = progress
        self.results: dict[str, GradedTest] = {}
        self.grader_errors: list[str] = []
        self.extra_data: dict[str, Any] = {}
        self.leaderboard: list[dict] = []

    # --- configuration and collection ------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        config.pluginmanager.register(ShortFailureReports(self), "sslgrader-short-reports")
        for line in (
            "task(id): the graded task (DESIGN.md contract id) a test belongs to",
            "points(n): the test's max score",
            "visibility(v): " + " | ".join(VISIBILITIES),
            "assignment(name): the assignment a graded module belongs to",
            "checkpoint: grades the submitted checkpoint (left out by --unit-only)",
        ):
            config.addinivalue_line("markers", line)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.grader_errors.append(f"collecting {report.nodeid} failed:\n{str(report.longrepr)[-3000:]}")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        selected, deselected = [], []
        for item in items:
            assignment = _marker_arg(item, "assignment")
            if assignment != self.assignment or (self.unit_only and item.get_closest_marker("checkpoint")):
                deselected.append(item)
                continue
            task, points, visibility = (_marker_arg(item, m) for m in ("task", "points", "visibility"))
            if not isinstance(task, str) or not isinstance(points, (int, float)) or visibility not in VISIBILITIES:
                self.grader_errors.append(f"{item.nodeid} lacks task/points/visibility markers")
                deselected.append(item)
                continue
            selected.append(item)
        order = {task: i for i, task in enumerate(self.task_order)}
        selected.sort(key=lambda it: order.get(_marker_arg(it, "task"), len(order)))  # stable within a task
        counters: dict[str, int] = {}
        for item in selected:
            task = _marker_arg(item, "task")
            counters[task] = counters.get(task, 0) + 1
            doc = (getattr(item, "obj", None).__doc__ or item.name).strip().split("\n")[0]
            self.results[item.nodeid] = GradedTest(
                nodeid=item.nodeid,
                task=task,
                name=f"{task}: {doc}",
                max_score=float(_marker_arg(item, "points")),
                visibility=_marker_arg(item, "visibility"),
                number=f"{order.get(task, len(order)) + 1}.{counters[task]}",
            )
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected

    # --- running -------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        report = outcome.get_result()
        result = self.results.get(item.nodeid)
        if result is None or (call.when != "call" and not report.failed):
            return
        if call.when == "call":
            result.seconds = call.duration
            for key, value in report.user_properties:
                if key == "extra_data" and isinstance(value, dict):
                    self.extra_data.update(value)
                elif key == "leaderboard" and isinstance(value, list):
                    self.leaderboard += value
        if report.passed and call.when == "call":
            # A passing test may set its score (extra credit above a max_score of 0) and its
            # output with request.node.user_properties.append(("score", x) / ("output", text)).
            properties = dict(report.user_properties)
            result.status, result.score = "passed", float(properties.get("score", result.max_score))
            result.output = str(properties.get("output") or "Passed.")
        elif report.failed:
            result.status, result.score = "failed", 0.0
            result.output, result.grader_error = self._failure_message(call.excinfo)
            if result.grader_error:
                self.grader_errors.append(f"{item.nodeid}: {result.output}")
            elif call.when == "call":  # partial credit (e.g. the checkpoint's linear rubric)
                partial = dict(report.user_properties).get("score", 0.0)
                result.score = min(max(float(partial), 0.0), result.max_score)
        if call.when in ("call", "setup") and (report.failed or call.when == "call"):
            printed = self.take_output()
            if printed.strip():
                result.output += "\n\nYour code printed:\n" + clean_text(printed, PRINTED_CHARS)
            result.output = clean_text(result.output, TEST_OUTPUT_CHARS)
            self._progress(result)

    def _progress(self, result: GradedTest) -> None:
        if self.progress is not None:
            mark = "PASS" if result.status == "passed" else "FAIL"
            self.progress(f"  {mark} {result.score:g}/{result.max_score:g}  {result.name}  ({result.seconds:.1f} s)")

    @staticmethod
    def _failure_message(excinfo: pytest.ExceptionInfo | None) -> tuple[str, bool]:
        if excinfo is None:
            return "Failed.", False
        error = excinfo.value
        if isinstance(error, (SubmissionFault, GradingFailure)):
            return str(error), False
        if isinstance(error, (GraderError, SandboxError)):
            return f"The grader failed on this test (not your fault; please tell your instructor): {error}", True
        return (
            f"The grader failed on this test (not your fault; please tell your instructor): "
            f"{type(error).__name__}: {error}",
            True,
        )

    # --- results -------------------------------------------------------------------------
    def task_table(self) -> list[tuple[str, int, int, float, float]]:
        """(task, tests passed, tests, score, max score) per task, in contract order."""
        rows: dict[str, list] = {}
        for result in self.results.values():
            row = rows.setdefault(result.task, [result.task, 0, 0, 0.0, 0.0])
            row[1] += result.status == "passed"
            row[2] += 1
            row[3] += result.score
            row[4] += result.max_score
        return [tuple(row) for row in rows.values()]


def build_results(
    plugin: ResultsPlugin | None,
    notes: list[str],
    execution_time: float,
    extra: dict | None = None,
    error: str | None = None,
) -> dict:
    """Gradescope's results dictionary (always valid, always < 1 MB once serialised)."""
    tests = [r.to_json() for r in plugin.results.values()] if plugin else []
    score = float(round(sum(t["score"] for t in tests), 4))
    tasks = {}
    if plugin:
        for task, passed, count, got, max_score in plugin.task_table():
            tasks[task] = {"score": got, "max_score": max_score, "passed": passed, "tests": count}
    lines = []
    if error:
        lines.append(error)
    if tasks:
        lines.append(format_table(tasks))
    lines += notes
    by_hand = _graded_by_hand_line(plugin.assignment) if plugin else None
    if by_hand:  # informational, zero points: the answers a person grades later
        lines.append(by_hand)
    results = {
        "score": score,
        "execution_time": round(execution_time, 2),
        "output": clean_text("\n\n".join(lines), TOP_OUTPUT_CHARS),
        "output_format": "text",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"tasks": tasks, **(plugin.extra_data if plugin else {}), **(extra or {})},
    }
    if plugin and plugin.leaderboard:
        results["leaderboard"] = plugin.leaderboard
    return shrink(results)


def _graded_by_hand_line(assignment: str) -> str | None:
    """The answers of `assignment` graded by hand, as one line (None if none, or unreadable)."""
    try:
        from autograder.manual import results_line

        return results_line(assignment)
    except Exception:  # an informational line never costs a submission its results
        return None


def shrink(results: dict) -> dict:
    """Cut outputs until the serialised results fit in MAX_RESULTS_BYTES."""
    for limit in (TEST_OUTPUT_CHARS, 2000, 500, 100, 0):
        if len(json.dumps(results).encode()) <= MAX_RESULTS_BYTES:
            return results
        for test in results["tests"]:
            test["output"] = clean_text(test["output"], limit) if limit else ""
        results["output"] = clean_text(results["output"], max(limit, 200))
    # Keep the small entries (e.g. the checkpoint's record, which its rate limit reads from earlier results).
    results["extra_data"] = {
        key: value for key, value in results["extra_data"].items() if len(json.dumps(value)) <= SMALL_EXTRA_CHARS
    }
    return results


def format_table(tasks: dict[str, dict]) -> str:
    """A plain-text table: task, tests passed, points."""
    width = max([len("task")] + [len(t) for t in tasks])
    lines = [f"{'task':<{width}}  {'tests':>7}  {'points':>11}", "-" * (width + 22)]
    total = maximum = 0.0
    for task, row in tasks.items():
        lines.append(
            f"{task:<{width}}  {row['passed']:>3}/{row['tests']:<3}  {row['score']:>5g} / {row['max_score']:<4g}"
        )
        total += row["score"]
        maximum += row["max_score"]
    lines.append("-" * (width + 22))
    lines.append(f"{'total':<{width}}  {'':>7}  {total:>5g} / {maximum:<4g}")
    return "\n".join(lines)


def write_json_atomic(data: dict, path: str | os.PathLike) -> Path:
    """Write JSON to `path` via a fresh temporary file in the same folder and a rename, so a
    reader never sees a partial file and nothing planted at `path` (a symlink, a file owned
    by someone else) is written through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return path


__all__ = ["GraderError", "ResultsPlugin", "build_results", "format_table", "write_json_atomic"]
