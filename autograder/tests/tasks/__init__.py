"""The graded tests, one module per task of the registry (`autograder.contract.TASKS`).

Module ``<task>.py`` holds the test class of that task (``@pytest.mark.task("<task>")``);
`shared` holds what several tasks use. ``test_<assignment>.py`` one folder up takes its classes
from `suite`, in the registry's order, so a graded task is added by its module and its entry
in the registry. Points and visibility sit on each test; its docstring's first line is what the
student sees as the test's name.

Every test runs the same harness operation on the reference (``reference.run``, in the grader)
and on the submission (``student.run``, in the sandboxed worker) with the same seeded inputs,
and compares. A hidden test whose inputs can vary while every correct answer still passes (same
shapes, other values) takes its seeds through the ``draw`` fixture, so a course can draw them
per submission (`autograder.hidden_inputs`); the others keep their fixed seeds.

What the submission cannot forge: it runs in the same process as the harness operations and
can rewrite them, so every result is first held against the reference's form
(`autograder.sandbox.conform`: every record, key, shape and dtype), and every test passes only when
values that a correct answer computes from the grader's inputs match. Properties with no
effect on any value (eval mode, gradients recorded, a target left with gradients) can only
add a failure; the oracles answer a step's requests only for the step's own inputs
(`autograder.grading.StepOracle`).
"""

from __future__ import annotations

import importlib
import warnings

import pytest

from autograder.contract import ASSIGNMENTS


def task_classes(task: str) -> list[type]:
    """The test classes that module ``<task>.py`` defines (its ``Test*`` classes)."""
    with warnings.catch_warnings():  # outside the grader (a project test), its markers are not registered
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        module = importlib.import_module(f"{__name__}.{task}")
    return [
        value
        for name, value in vars(module).items()
        if name.startswith("Test") and isinstance(value, type) and value.__module__ == module.__name__
    ]


def suite(assignment: str) -> dict[str, type]:
    """Class name -> test class, for every graded cell task of `assignment`, in the registry's order."""
    return {cls.__name__: cls for task in ASSIGNMENTS[assignment].cell_tasks for cls in task_classes(task)}


def _marks(obj: object, name: str) -> list:
    return [mark for mark in getattr(obj, "pytestmark", []) if mark.name == name]


def unit_points(assignment: str) -> dict[str, float]:
    """Task -> the sum of the ``points`` markers of its graded tests (the checkpoint's aside)."""
    points: dict[str, float] = {}
    for cls in suite(assignment).values():
        for name in dir(cls):
            function = getattr(cls, name)
            if name.startswith("test") and callable(function):
                task = (_marks(function, "task") or _marks(cls, "task"))[0].args[0]
                points[task] = points.get(task, 0.0) + sum(mark.args[0] for mark in _marks(function, "points"))
    return points


__all__ = ["suite", "task_classes", "unit_points"]
