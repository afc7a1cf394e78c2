"""Run an answer of the corpus the way a notebook runs it, and call its public check.

An answer's cell is executed in a copy of the notebook's namespace: the definitions that
`autograder.extract` keeps from ``solutions/<assignment>.ipynb`` (the given base classes, the
reference ``nt_xent`` a step calls, ...), loaded once per assignment the way the grader loads
the reference (trusted: the corpus is the project's own). The student notebooks
(``notebooks/``) give the TODO stubs the same way.
"""

from __future__ import annotations

import functools

from autograder.contract import ASSIGNMENTS
from autograder.extract import extract, load_trusted
from helpers import checks

from . import PROJECT_ROOT, Answer

#: task -> its public check, called the way the notebook's check cell calls it.
CHECK_CALLS = {
    "extract_features": lambda ns: checks.check_extract_features(ns["extract_features_and_labels"], device="cpu"),
    "probes": lambda ns: checks.check_probes(ns["run_knn_probe"], ns["run_linear_probe"]),
    "simclr_forward": lambda ns: checks.check_simclr_forward(ns["SimCLRModel"]),
    "byol_forward": lambda ns: checks.check_byol_forward(ns["BYOLModel"]),
    "nt_xent": lambda ns: checks.check_nt_xent(ns["nt_xent"]),
    "barlow_loss": lambda ns: checks.check_barlow_loss(ns["barlow_loss"]),
    "ema": lambda ns: checks.check_ema(ns["EMA"]),
    "simclr_step": lambda ns: checks.check_simclr_step(ns["simclr_train_step"], ns["SimCLRModel"], device="cpu"),
    "barlow_step": lambda ns: checks.check_barlow_step(ns["barlow_train_step"], ns["BarlowTwinsModel"], device="cpu"),
    "byol_step": lambda ns: checks.check_byol_step(ns["byol_train_step"], ns["BYOLModel"], ns["EMA"], device="cpu"),
    "finetune_step": lambda ns: checks.check_finetune_step(ns["finetune_train_step"], device="cpu"),
    "evaluate": lambda ns: checks.check_evaluate(ns["evaluate"], device="cpu"),
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
    """Call `task`'s public check on the definitions in `namespace` (raises CheckFailure)."""
    CHECK_CALLS[task](namespace)
