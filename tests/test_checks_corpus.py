"""The public checks accept every answer the grader accepts.

`tests/submissions/variants.py` holds the graded cells (full sources) that the hidden grader
must give every point (tests/test_grading.py grades them); `tests/student_variants.py` holds
the same kind of answers as functions (tests/test_checks.py). Here each correct cell of the
grader's corpus is put into the solution notebook in place of the reference answer, the
notebook's definitions are loaded the way the grader loads the reference (trusted: this
corpus is the project's own), and the public check of the notebook's check cell runs on
the result: a check that rejects an answer the grader accepts stops a student's scripted
run for nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.extract import extract, load_trusted
from helpers import checks
from submissions import build
from submissions.variants import CORRECT

#: task -> the public check called the way the notebook's check cell calls it.
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

CASES = [(assignment, answer) for assignment, tasks in build.TASKS.items()
         for task in tasks for answer in CORRECT.get(task, [])]


def _case_id(case) -> str:
    assignment, answer = case
    return f"{assignment}-{answer.task}-{answer.name}"


def test_every_graded_task_has_a_public_check():
    assert {task for tasks in build.TASKS.values() for task in tasks} == set(CHECK_CALLS)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_public_check_accepts_what_the_grader_accepts(case, tmp_path: Path, capsys):
    """Does the notebook's check cell pass on every answer the hidden grader gives full points?"""
    assignment, answer = case
    solution = build.load(build.PROJECT_ROOT / "solutions" / f"{assignment}.ipynb")
    notebook = build.replace_cells(solution, {answer.task: answer.source})
    build.write(notebook, tmp_path, f"{assignment}.ipynb")
    namespace = load_trusted(extract(tmp_path / f"{assignment}.ipynb"), module_name=f"corpus_{assignment}")
    CHECK_CALLS[answer.task](namespace)
    assert "checks passed." in capsys.readouterr().out
