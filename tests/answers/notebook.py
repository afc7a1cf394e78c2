"""Run an answer of the corpus the way a notebook runs it, and call its public check.

An answer's cell is executed in a copy of the notebook's namespace: the definitions that
`autograder.extract` keeps from ``solutions/<assignment>.ipynb`` (the given base classes, the
reference ``nt_xent`` a step calls, ...), loaded once per assignment the way the grader loads
the reference (trusted: the corpus is the project's own). The student notebooks
(``notebooks/``) give the TODO stubs the same way.
"""

from __future__ import annotations

import functools

import nbformat

from autograder.contract import ASSIGNMENTS
from autograder.extract import extract, load_trusted
from helpers import checks

from . import PROJECT_ROOT, Answer


def check_cell(task: str, assignment: str | None = None) -> str:
    """The source of `task`'s check cell (cell id ``check-<task>``) in the solution notebook: the
    public check is called exactly the way the notebook calls it, with no second list here."""
    return _check_cells(assignment or assignment_of(task))[task]


@functools.cache
def _check_cells(assignment: str) -> dict[str, str]:
    notebook = nbformat.read(PROJECT_ROOT / "solutions" / ASSIGNMENTS[assignment].notebook, as_version=4)
    cells = {cell.get("id"): cell.source for cell in notebook.cells if cell.cell_type == "code"}
    return {
        task: cells[f"check-{task.replace('_', '-')}"]
        for task in ASSIGNMENTS[assignment].cell_tasks
        if f"check-{task.replace('_', '-')}" in cells
    }


def assignment_of(task: str) -> str:
    """The first assignment (in the contract's order) that grades `task`."""
    return next(a.name for a in ASSIGNMENTS.values() if task in a.tasks)


@functools.cache
def _namespace(folder: str, assignment: str) -> dict:
    notebook = PROJECT_ROOT / folder / ASSIGNMENTS[assignment].notebook
    return load_trusted(extract(notebook), module_name=f"answers_{folder}_{assignment}")


def reference(assignment: str) -> dict:
    """A copy of the solution notebook's definitions."""
    return dict(_namespace("solutions", assignment))


def stubs(assignment: str) -> dict:
    """A copy of the student notebook's definitions: the TODO stubs nbgrader leaves."""
    return dict(_namespace("notebooks", assignment))


def define(answer: Answer, assignment: str | None = None) -> dict:
    """The notebook's namespace after running `answer`'s cell in it."""
    namespace = reference(assignment or assignment_of(answer.task))
    exec(compile(answer.source, f"<answer {answer.id}>", "exec"), namespace)  # noqa: S102 - the project's own corpus
    return namespace


def run_public_check(task: str, namespace: dict) -> None:
    """Run `task`'s check cell on the definitions in `namespace` (raises CheckFailure)."""
    exec(compile(check_cell(task), f"<check cell of {task}>", "exec"), {**namespace, "checks": checks})  # noqa: S102
