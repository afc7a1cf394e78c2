"""What the notebooks' text promises agrees with the grader and the student zip.

The numbers are read from their one source (the graded tests' `points` markers, the course
configuration `autograder/course.toml`), never from a copy kept here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import nbformat
import pytest
import tomllib

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
    function_of = {
        "nt_xent": "nt_xent(",
        "barlow_loss": "barlow_loss(",
        "simclr_forward": "SimCLRModel.forward(",
        "simclr_step": "simclr_train_step(",
        "finetune_step": "finetune_train_step(",
        "evaluate": "evaluate(",
    }
    assert set(function_of) == set(points)
    for task, function in function_of.items():
        rows = [
            line
            for line in text.splitlines()
            if line.startswith("|") and f"`{function}" in line and "unit tests" in line
        ]
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
        f"{_number(rubric['points'])}, + {_number(rubric['bonus_points'])} bonus"
    )


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
    assert "multi_class" not in "\n".join(
        c.source
        for c in nbformat.read(PROJECT_ROOT / "solutions" / "ssl_methods.ipynb", as_version=4).cells
        if c.cell_type == "code"
    )


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


#: Given cells that stay editable on purpose: the three training cells of ssl_methods, where the
#: student picks the run (``dataclasses.replace(SIMCLR, epochs=50)``, their comments say). Every
#: other given code cell is read-only.
TRAINING_CELLS = {"ssl_methods": {"simclr-train", "byol-train", "barlow-train"}, "simclr_homework": set()}


def _code_cells(folder: str, assignment: str) -> list:
    nb = nbformat.read(PROJECT_ROOT / folder / f"{assignment}.ipynb", as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_given_code_cell_is_read_only(assignment: str) -> None:
    """Only the TODO cells are editable: every given code cell is locked (nbgrader) and read-only for students."""
    for folder in NOTEBOOK_FOLDERS:
        for cell in _code_cells(folder, assignment):
            nbgrader = cell.metadata.get("nbgrader", {})
            if nbgrader.get("solution") or cell.id in TRAINING_CELLS[assignment]:
                continue
            assert nbgrader.get("locked") is True, f"{folder}/{assignment}: given cell {cell.id} is not locked"
            if folder == "notebooks":
                assert cell.metadata.get("editable") is False and cell.metadata.get("deletable") is False, cell.id


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_check_cells_call_the_public_checks_one_way(assignment: str) -> None:
    """Every check cell calls `checks.check_<task>(...)` (the module imported in the set-up), never a bare name."""
    for folder in NOTEBOOK_FOLDERS:
        cells = _code_cells(folder, assignment)
        check_cells = [c for c in cells if c.id.startswith("check-")]
        assert check_cells, assignment
        for cell in check_cells:
            calls = re.findall(r"^(\S*check_\w+)\(", cell.source, re.M)
            assert calls and all(call.startswith("checks.check_") for call in calls), (folder, cell.id, calls)
        code = "\n".join(c.source for c in cells)
        assert "from helpers import checks" in code and "from helpers.checks import" not in code, (folder, assignment)


def _setup_block(assignment: str) -> str:
    """The set-up cell up to its magics: what makes `import helpers` work (or says how to)."""
    setup = next(c for c in _code_cells("notebooks", assignment) if c.id == "setup").source
    return setup[: setup.index("%load_ext")]


def test_setup_cells_import_the_installed_package() -> None:
    """Both set-up cells share one short text that imports the installed package (no search up the folders)."""
    blocks = {assignment: _setup_block(assignment) for assignment in ASSIGNMENTS}
    assert len(set(blocks.values())) == 1, "the two set-up cells differ"
    block = blocks["ssl_methods"]
    assert ".parents" not in block and "pip install -e ." in block and "ssl-lab-student.zip" in block
    assert len(block.strip().splitlines()) <= 20


@pytest.mark.parametrize("installed", [False, True])
def test_setup_block_imports_helpers_or_says_how_to_install_it(installed: bool, tmp_path: Path) -> None:
    """Run the set-up block in a fresh Python outside the project: it imports helpers when installed
    (here: on PYTHONPATH), else stops with the install command."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if installed:
        env["PYTHONPATH"] = str(PROJECT_ROOT)
    code = _setup_block("ssl_methods") + "\nprint(helpers.__file__)\n"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    if installed:
        assert done.returncode == 0 and done.stdout.strip() == str(PROJECT_ROOT / "helpers" / "__init__.py"), (
            done.stderr
        )
    else:
        assert done.returncode != 0 and "ImportError: Cannot import the SSL Lab `helpers` package" in done.stderr
        assert "run `pip install -e .`" in done.stderr


def test_given_cells_leave_submission_check_report_and_export_to_helpers() -> None:
    """The submission check, the report's and the comparison's helpers and the export are calls into helpers."""
    cells = {c.id: c.source for c in _code_cells("notebooks", "simclr_homework")}
    assert "check_submission(SUBMISSION_CHECKPOINT, test_images, test_labels" in cells["submission-check"]
    assert "load_classifier" not in cells["submission-check"] and "for x, y in" not in cells["submission-check"]
    assert "def " not in cells["report"] and "print_settings(" in cells["report"]
    ssl = {c.id: c.source for c in _code_cells("notebooks", "ssl_methods")}
    for cell_id in ("probe-helpers", "baseline", "simclr-probe", "byol-probe", "barlow-probe", "comparison"):
        assert "def " not in ssl[cell_id] and "comparison." in ssl[cell_id], cell_id
    for assignment in ASSIGNMENTS:
        export = next(c.source for c in _code_cells("notebooks", assignment) if c.id == "export-report")
        assert f'export_report("{assignment}.ipynb", missing_ok=True)' in export and "if " not in export
