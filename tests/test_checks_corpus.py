"""The public checks accept every answer the grader accepts, in every notebook that grades it.

Each correct answer of the corpus (tests/answers; the sample ones are graded full marks by
tests/test_grading.py) is put into the solution notebook in place of the reference answer,
the notebook's definitions are loaded the way the grader loads the reference (trusted: this
corpus is the project's own), and the public check of the notebook's check cell runs on the
result: a check that rejects an answer the grader accepts stops a student's scripted run for
nothing. (tests/test_checks.py runs every answer, correct or wrong, in one notebook's namespace.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from answers import answers
from answers.notebook import check_cell, run_public_check

from autograder.contract import ASSIGNMENTS
from autograder.extract import extract, load_trusted
from submissions import build

CASES = [
    (assignment.name, answer)
    for assignment in ASSIGNMENTS.values()
    for task in assignment.cell_tasks
    for answer in answers(task, correct=True)
]


def _case_id(case) -> str:
    assignment, answer = case
    return f"{assignment}-{answer.id}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_task_has_a_public_check(assignment):
    """Each graded cell is followed by a check cell (id ``check-<task>``) calling its public check."""
    for task in ASSIGNMENTS[assignment].cell_tasks:
        assert f"checks.check_{task}(" in check_cell(task, assignment), task


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_public_check_accepts_what_the_grader_accepts(case, tmp_path: Path, capsys):
    """Does the notebook's check cell pass on every answer the hidden grader gives full points?"""
    assignment, answer = case
    solution = build.load(build.PROJECT_ROOT / "solutions" / f"{assignment}.ipynb")
    notebook = build.replace_cells(solution, {answer.task: answer.source})
    build.write(notebook, tmp_path, f"{assignment}.ipynb")
    namespace = load_trusted(extract(tmp_path / f"{assignment}.ipynb"), module_name=f"corpus_{assignment}")
    run_public_check(answer.task, namespace)
    assert "checks passed." in capsys.readouterr().out
