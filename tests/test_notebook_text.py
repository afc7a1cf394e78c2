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

from autograder import contract


def _graded_module(name: str):
    """A graded test module of autograder/tests (its markers are registered by the grader's plugin, not here)."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return importlib.import_module(f"autograder.tests.{name}")


test_simclr_homework = _graded_module("test_simclr_homework")
test_ssl_methods = _graded_module("test_ssl_methods")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_FOLDERS = ("solutions", "notebooks")
ASSIGNMENTS = tuple(contract.ASSIGNMENTS)


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


def _all_sources(folder: str, assignment: str) -> str:
    nb = nbformat.read(PROJECT_ROOT / folder / f"{assignment}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebooks_point_to_nothing_outside_the_student_zip(assignment: str) -> None:
    """benchmarks/ is not in the student zip: no student notebook may send students there."""
    from autograder.release import student_zip_members

    shipped = {arcname for _, arcname in student_zip_members(PROJECT_ROOT)}
    assert not any(name.startswith("benchmarks/") or "/benchmarks/" in name for name in shipped)
    assert "benchmarks/" not in _all_sources("notebooks", assignment)


def test_linear_probe_text_and_code_work_with_the_pinned_scikit_learn() -> None:
    """The text must not send students to `multi_class=` (a TypeError in the pinned scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError):
        LogisticRegression(multi_class="multinomial")  # why the text warns about it
    text = markdown("notebooks", "ssl_methods")
    assert "multi_class=" in text and "TypeError" in text
    assert "multi_class" not in "\n".join(c.source for c in nbformat.read(
        PROJECT_ROOT / "solutions" / "ssl_methods.ipynb", as_version=4).cells if c.cell_type == "code")


def test_evaluate_text_accepts_what_the_check_and_grader_accept() -> None:
    """The text, the public check and the grader agree: per-image mean, or the mean of the batch means."""
    text = " ".join(markdown("notebooks", "simclr_homework").split())
    assert "mean of the per-batch mean losses" in text and "is accepted too" in text
    assert "don't average the batch means" not in text
    from answers import answers

    names = {a.name for a in answers("evaluate", correct=True)}
    assert {"per_sample", "batch_means"} <= names  # tests/test_checks.py runs the check on both
    from submissions.variants import CORRECT

    assert "batch_means" in {a.name for a in CORRECT["evaluate"]}  # tests/test_grading.py grades it full marks


@pytest.mark.parametrize("folder", NOTEBOOK_FOLDERS)
def test_smoke_runs_never_use_the_submission_file_names(folder: str) -> None:
    """In smoke mode the homework writes .smoke copies, never simclr_lin_best.pt / simclr_best_epoch.pt."""
    code = _all_sources(folder, "simclr_homework")
    assert 'SUBMISSION_CHECKPOINT = "simclr_lin_best.smoke.pt" if SMOKE else "simclr_lin_best.pt"' in code
    assert 'BEST_ENCODER_PATH = "simclr_best_epoch.smoke.pt" if SMOKE else "simclr_best_epoch.pt"' in code


@pytest.mark.parametrize("folder", NOTEBOOK_FOLDERS)
def test_precision_belongs_to_fit(folder: str) -> None:
    """Both notebooks say a step must not run its own autocast; ssl_methods says how the loss stays float32."""
    for assignment in ASSIGNMENTS:
        text = " ".join(markdown(folder, assignment).split())
        assert "Precision belongs to `fit`" in text and "do not open a `torch.autocast(...)`" in text, assignment
    assert "with torch.autocast(device_type=z1.device.type, enabled=False):" in markdown(folder, "ssl_methods")
