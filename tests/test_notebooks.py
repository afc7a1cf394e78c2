"""Execute the notebooks top to bottom, as a student (or CI) would.

- Every solution notebook runs without an error in smoke mode (SSL_LAB_SMOKE=1: `fit`
  trains one short epoch on a few hundred images, the probes use small subsets), on the real
  CIFAR-10 copy in ../shared/data/cifar10-jpeg when it is there, else on the synthetic
  stand-in (SSL_LAB_SYNTHETIC=1).
- Every solution notebook also runs end to end with each graded cell replaced by another
  correct style of answer (the last correct variant of tests/submissions/variants.py: separate
  forwards, `lerp_`, unbiased variance, an evaluate that restores the model's mode, ...), so
  the public checks and the given cells accept what the grader accepts.
- Every student notebook, with no answer filled in, runs without error up to its first TODO
  and then stops there with NotImplementedError (raised by the TODO itself, or by the check
  cell right after it that calls the TODO function).

Each notebook runs in a fresh kernel whose working directory is a temporary folder (so data
caches and checkpoints never land in the repository), with the project root on PYTHONPATH
and matplotlib's Agg backend.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import nbformat
import pytest

nbclient = pytest.importorskip("nbclient")
from nbclient.exceptions import CellExecutionError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CIFAR_JPEG = ROOT.parent / "shared" / "data" / "cifar10-jpeg"
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
STUDENTS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: A whole solution notebook in smoke mode should take ~2-3 minutes on an idle 2-core CPU, i.e.
#: about 4-6 CPU-minutes. The budget is on the kernel's CPU time (user + system, its worker
#: processes included), which does not grow when other jobs share the machine; wall time is
#: only reported.
SMOKE_CPU_BUDGET_S = 600
CELL_TIMEOUT_S = 900
#: Wall-clock limit of one execution test, for a machine that other jobs keep busy.
TEST_TIMEOUT_S = 2400

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory) -> Path:
    """One data/ folder for all notebooks of the session: the first one decodes CIFAR-10 and
    caches it (data/cache/), the others load the cache in a second."""
    return tmp_path_factory.mktemp("notebook-data")


@pytest.fixture
def notebook_env(monkeypatch, tmp_path, shared_data_dir):
    """Smoke mode, a data source, the project on the path; returns the working directory."""
    monkeypatch.setenv("SSL_LAB_SMOKE", "1")
    if (CIFAR_JPEG / "train.tar.gz").is_file():
        monkeypatch.setenv("SSL_LAB_CIFAR10", str(CIFAR_JPEG))
    else:
        monkeypatch.setenv("SSL_LAB_SYNTHETIC", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "data").symlink_to(shared_data_dir, target_is_directory=True)
    return workdir


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished (reaped) child processes
    return usage.ru_utime + usage.ru_stime


def _execute(nb: nbformat.NotebookNode, workdir: Path) -> None:
    """Run the notebook in a fresh python3 kernel (shut down and reaped at the end)."""
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()


def _first_error(nb: nbformat.NotebookNode) -> tuple[int, dict] | None:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, output
    return None


@pytest.mark.timeout(TEST_TIMEOUT_S)
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_notebook_runs_in_smoke_mode(path: Path, notebook_env: Path) -> None:
    """Does the reference solution run top to bottom without an error, within the smoke budget?"""
    nb = nbformat.read(path, as_version=4)
    started, cpu_before = time.perf_counter(), _children_cpu_seconds()
    try:
        _execute(nb, notebook_env)
    except CellExecutionError as error:
        failed = _first_error(nb)
        where = f"cell {failed[0]} (id {nb.cells[failed[0]].get('id')})" if failed else "a cell"
        pytest.fail(f"solutions/{path.name}: {where} raised:\n{str(error)[-3000:]}")
    seconds = time.perf_counter() - started
    cpu_seconds = _children_cpu_seconds() - cpu_before
    print(f"{path.name}: executed in {seconds:.0f} s wall, {cpu_seconds:.0f} s kernel CPU (smoke mode)")
    assert _first_error(nb) is None
    real_names = [name for name in ("simclr_lin_best.pt", "simclr_best_epoch.pt") if (notebook_env / name).exists()]
    assert not real_names, f"a smoke run wrote the real submission files {real_names}"
    assert 0 < cpu_seconds < SMOKE_CPU_BUDGET_S, (
        f"solutions/{path.name} used {cpu_seconds:.0f} CPU-seconds in smoke mode (budget {SMOKE_CPU_BUDGET_S}): "
        "make its data / probe cells use smaller subsets when SMOKE"
    )


@pytest.mark.timeout(TEST_TIMEOUT_S)
@pytest.mark.parametrize("path", STUDENTS, ids=[p.stem for p in STUDENTS])
def test_student_notebook_runs_up_to_its_first_todo(path: Path, notebook_env: Path) -> None:
    """Does an unanswered student notebook run cleanly up to its first TODO and stop there?"""
    nb = nbformat.read(path, as_version=4)
    todo = next(
        (
            i
            for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")
        ),
        None,
    )
    assert todo is not None, f"notebooks/{path.name} has no TODO cell"
    assert "raise NotImplementedError()" in nb.cells[todo].source
    next_code = next((i for i in range(todo + 1, len(nb.cells)) if nb.cells[i].cell_type == "code"), todo)

    with pytest.raises(CellExecutionError):
        _execute(nb, notebook_env)
    failed = _first_error(nb)
    assert failed is not None, "the notebook stopped without an error output"
    index, output = failed
    assert index in (todo, next_code), (
        f"notebooks/{path.name}: first error in cell {index} (id {nb.cells[index].get('id')}), expected the "
        f"first TODO (cell {todo}) or the check cell right after it (cell {next_code}): "
        f"{output.get('ename')}: {output.get('evalue')}"
    )
    not_implemented = (
        output.get("ename") == "NotImplementedError" or "not implemented" in output.get("evalue", "").lower()
    )
    assert not_implemented, (
        f"notebooks/{path.name}: cell {index} raised {output.get('ename')}: {output.get('evalue')}, "
        "expected NotImplementedError from the TODO stub"
    )
    # nothing ran after the failure
    assert all(not cell.get("outputs") for cell in nb.cells[index + 1 :] if cell.cell_type == "code")


@pytest.mark.timeout(TEST_TIMEOUT_S)
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_notebook_with_answers_in_other_styles_runs_in_smoke_mode(path: Path, notebook_env: Path) -> None:
    """Does the notebook run top to bottom, every check cell passing, with answers written unlike the reference?"""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from submissions.build import TASKS
    from submissions.variants import CORRECT

    answers = {task: CORRECT[task][-1].source for task in TASKS[path.stem] if CORRECT.get(task)}
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers.pop(grade_id)
    assert not answers, f"no graded cell for {sorted(answers)}"
    try:
        _execute(nb, notebook_env)
    except CellExecutionError as error:
        failed = _first_error(nb)
        where = f"cell {failed[0]} (id {nb.cells[failed[0]].get('id')})" if failed else "a cell"
        pytest.fail(f"solutions/{path.name} with other correct answers: {where} raised:\n{str(error)[-3000:]}")
    assert _first_error(nb) is None
    checks = {
        cell.get("id"): "".join(
            output.get("text", "") for output in cell.get("outputs", []) if output.get("output_type") == "stream"
        )
        for cell in nb.cells
        if cell.get("id", "").startswith("check-")
    }
    assert checks and all("checks passed." in text for text in checks.values()), checks
