"""Fixtures of the graded suite.

The grader (`autograder.grading.grade`) runs this suite in its own process with a plugin
holding the grading context; the fixtures hand its parts to the tests:

- ``student``: runs a harness operation on the submission in the sandboxed worker
  (`autograder.grading.Student`);
- ``reference``: runs the same operation on the reference from ``solutions/``
  (`autograder.grading.Reference`);
- ``grading``: the whole context (assignment, submission folder, notebook, extraction);
- ``submission_dir``: the submitted folder (for graded files such as a checkpoint);
- ``draw``: the seed a test draws its inputs from in place of a fixed one: the fixed seed
  itself, unless the course draws hidden inputs per submission (`autograder.hidden_inputs`)
  and the test is not visible to students.

A graded module declares its assignment (``pytestmark = pytest.mark.assignment("...")``)
and every test its ``task``, ``points`` and ``visibility`` markers (`autograder.results`).
Before each test, a syntax error in the task's graded cell fails it with that message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autograder.hidden_inputs import drawn
from autograder.sandbox import SubmissionFault


def _context(config: pytest.Config) -> Any:
    for plugin in config.pluginmanager.get_plugins():
        context = getattr(plugin, "sslgrader_context", None)
        if context is not None:
            return context
    raise pytest.UsageError("the graded suite runs through the grader: python -m autograder grade SUBMISSION_DIR")


@pytest.fixture(scope="session")
def grading(request: pytest.FixtureRequest) -> Any:
    """The grading context (`autograder.grading.GradingContext`)."""
    return _context(request.config)


@pytest.fixture(scope="session")
def student(grading: Any) -> Any:
    return grading.student


@pytest.fixture(scope="session")
def reference(grading: Any) -> Any:
    return grading.reference


@pytest.fixture(scope="session")
def submission_dir(grading: Any) -> Path:
    return grading.submission_dir


@pytest.fixture
def draw(request: pytest.FixtureRequest, grading: Any) -> Callable[[int], int]:
    """fixed seed -> the seed this test draws from (visible tests always keep their fixed seeds)."""
    marker = request.node.get_closest_marker("visibility")
    hidden_seed = None if marker is None or marker.args[0] == "visible" else grading.hidden_seed
    return lambda seed: drawn(hidden_seed, seed)


@pytest.fixture(autouse=True)
def _graded_cell_parses(request: pytest.FixtureRequest, grading: Any) -> None:
    marker = request.node.get_closest_marker("task")
    problem = grading.extracted.task_problem(marker.args[0]) if marker else None
    if problem:
        raise SubmissionFault(problem)
