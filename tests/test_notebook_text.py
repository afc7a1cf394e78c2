"""What the notebooks' text promises agrees with the grader and the student zip.

The numbers are read from their one source (the graded tests' `points` markers, the course
configuration `autograder/course.toml`), never from a copy kept here.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import nbformat
import pytest

from autograder.tests import test_simclr_homework, test_ssl_methods

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_FOLDERS = ("solutions", "notebooks")
ASSIGNMENTS = ("ssl_methods", "simclr_homework")


def _marks(obj, name: str) -> list:
    return [m for m in getattr(obj, "pytestmark", []) if m.name == name]


def unit_test_points(module) -> dict[str, float]:
    """task -> the sum of the `points` markers of its graded tests, read from the test classes."""
    points: dict[str, float] = {}
    for class_name in module.__all__:
        cls = getattr(module, class_name)
        class_task = _marks(cls, "task")
        for name, function in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("test"):
                continue
            task = (_marks(function, "task") or class_task)[0].args[0]
            points[task] = points.get(task, 0) + sum(m.args[0] for m in _marks(function, "points"))
    return points


def course_checkpoint() -> dict:
    with open(PROJECT_ROOT / "autograder" / "course.toml", "rb") as fh:
        return tomllib.load(fh)["checkpoint"]


def markdown(folder: str, assignment: str) -> str:
    nb = nbformat.read(PROJECT_ROOT / folder / f"{assignment}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _number(value: float) -> str:
    return f"{value:g}"


@pytest.mark.parametrize("folder", NOTEBOOK_FOLDERS)
def test_homework_points_table_matches_the_graded_tests(folder: str) -> None:
    """Does every row of the homework's points table give its task's points as the grader's markers do?"""
    text = markdown(folder, "simclr_homework")
    points = unit_test_points(test_simclr_homework)
    function_of = {"nt_xent": "nt_xent(", "barlow_loss": "barlow_loss(", "simclr_forward": "SimCLRModel.forward(",
                   "simclr_step": "simclr_train_step(", "finetune_step": "finetune_train_step(",
                   "evaluate": "evaluate("}
    assert set(function_of) == set(points)
    for task, function in function_of.items():
        rows = [line for line in text.splitlines() if line.startswith("|") and f"`{function}" in line
                and "unit tests" in line]
        assert len(rows) == 1, (task, rows)
        assert rows[0].rstrip().rstrip("|").split("|")[-1].strip() == _number(points[task]), (task, rows[0])


@pytest.mark.parametrize("folder", NOTEBOOK_FOLDERS)
def test_homework_points_paragraph_matches_the_grader(folder: str) -> None:
    """Does the Points paragraph give the unit-test, checkpoint, total and bonus points of the grader?"""
    text = markdown(folder, "simclr_homework")
    rubric = course_checkpoint()
    unit = sum(unit_test_points(test_simclr_homework).values())
    paragraph = re.search(r"\*\*Points\.\*\*(.*?)\n\n", text, re.S).group(1)
    paragraph = " ".join(paragraph.split())
    total = unit + rubric["points"]
    assert f"{_number(total)} points plus {_number(rubric['bonus_points'])} bonus points" in paragraph, paragraph
    assert f"give the {_number(unit)} points" in paragraph, paragraph
    assert f"gives {_number(rubric['points'])} points" in paragraph, paragraph
    assert f"at least {_number(rubric['full_credit_threshold'])} %" in paragraph, paragraph
    assert f"{_number(rubric['bonus_points'])} bonus points at {_number(rubric['bonus_threshold'])} %" in paragraph
    row = next(line for line in text.splitlines() if line.startswith("|") and "test accuracy of the checkpoint" in line)
    assert row.rstrip().rstrip("|").split("|")[-1].strip() == (
        f"{_number(rubric['points'])}, + {_number(rubric['bonus_points'])} bonus")


def test_ssl_methods_unit_points_match_the_readme() -> None:
    """README's Gradescope totals are the sums of the graded tests' markers (and the course's checkpoint points)."""
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    ssl = sum(unit_test_points(test_ssl_methods).values())
    hw = sum(unit_test_points(test_simclr_homework).values())
    rubric = course_checkpoint()
    assert f"`ssl_methods` {_number(ssl)} autograded points" in readme
    assert (f"`simclr_homework` {_number(hw + rubric['points'])} autograded points "
            f"({_number(hw)} unit tests + {_number(rubric['points'])} for the checkpoint") in readme
