"""The student notebooks and zip are generated from solutions/ and give nothing away.

Covers `autograder.release`: regeneration reproduces the committed notebooks/ byte for
byte, every task id of the contract (../shared/DESIGN.md) is a graded cell in both versions,
no line of a reference answer reaches a student notebook or the student zip, and the zip
holds exactly what a student needs.
"""

from __future__ import annotations

import ast
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import release as rel
from autograder.contract import ASSIGNMENTS, TASKS

ROOT = Path(__file__).resolve().parents[1]

#: (notebook, task id) of every graded cell of DESIGN.md's contract, from the task registry.
GRADED_TASKS = [(Path(a.notebook).stem, task) for a in ASSIGNMENTS.values() for task in a.cell_tasks]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
#: A solution line shorter than this (stripped) is too generic to identify an answer.
MIN_LINE_CHARS = 8
#: ssl_methods alone has ~60 distinctive solution lines; far fewer means the collection broke.
MIN_SOLUTION_LINES = 40
#: A bare keyword clause (``finally:``, ``else:``) says nothing about an answer.
_KEYWORD_LINE = re.compile(r"(else|try|finally|pass|break|continue|return)\s*:?|except(\s+[\w.]+)?(\s+as\s+\w+)?:")
#: helpers/ legitimately shares single idioms with the answers (``with torch.no_grad():``); a
#: copied answer shows up as this many consecutive answer lines.
LEAK_RUN = 3


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _solution_path(name: str) -> Path:
    path = ROOT / "solutions" / f"{name}.ipynb"
    assert path.is_file(), f"the contract's notebook {path} is missing (DESIGN.md: the notebooks)"
    return path


def _graded_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id")
    }


def _defined_names(source: str) -> set[str]:
    tree = ast.parse(source)
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _split_regions(source: str) -> tuple[list[str], list[str]]:
    """(lines inside BEGIN/END SOLUTION, lines outside), stripped."""
    inside, outside, in_solution = [], [], False
    for line in source.splitlines():
        if BEGIN in line:
            in_solution = True
        elif END in line:
            in_solution = False
        else:
            (inside if in_solution else outside).append(line.strip())
    return inside, outside


def _distinctive(line: str) -> bool:
    return len(line) >= MIN_LINE_CHARS and any(ch.isalnum() for ch in line) and not _KEYWORD_LINE.fullmatch(line)


def _runs(lines: list[str], length: int = LEAK_RUN) -> set[tuple[str, ...]]:
    """Every `length` consecutive non-blank lines, stripped."""
    lines = [line.strip() for line in lines if line.strip()]
    return {tuple(lines[i : i + length]) for i in range(len(lines) - length + 1)}


@pytest.fixture(scope="module")
def solution_lines() -> set[str]:
    """Every distinctive line of every reference answer (code and markdown) that the solution
    notebooks do not also show outside their solution regions (those are given to students)."""
    inside, outside = set(), set()
    for path in rel.solution_notebooks(ROOT):
        for cell in _read(path).cells:
            cell_inside, cell_outside = _split_regions(cell.source)
            inside.update(cell_inside)
            outside.update(cell_outside)
    lines = {line for line in inside - outside if _distinctive(line)}
    assert len(lines) >= MIN_SOLUTION_LINES, (
        f"only {len(lines)} distinctive solution lines found in solutions/*.ipynb; expected at least "
        f"{MIN_SOLUTION_LINES}: are the {BEGIN} / {END} markers still there?"
    )
    return lines


@pytest.fixture(scope="module")
def solution_runs(solution_lines) -> set[tuple[str, ...]]:
    """Every LEAK_RUN consecutive lines of a reference answer that hold at least one distinctive line."""
    runs = set()
    for path in rel.solution_notebooks(ROOT):
        for cell in _read(path).cells:
            inside, _ = _split_regions(cell.source)
            runs |= {run for run in _runs(inside) if solution_lines.intersection(run)}
    assert len(runs) >= MIN_SOLUTION_LINES, f"only {len(runs)} runs of {LEAK_RUN} solution lines found"
    return runs


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    """name -> the student notebook text a release writes now."""
    return {path.stem: rel.render(rel.generate_student_notebook(path)) for path in rel.solution_notebooks(ROOT)}


# --------------------------------------------------------------------------------------
# Regeneration
# --------------------------------------------------------------------------------------
def test_every_contract_notebook_has_a_solution() -> None:
    """Does solutions/ hold exactly the notebooks of the contract?"""
    names = sorted(path.stem for path in rel.solution_notebooks(ROOT))
    contract = sorted(Path(a.notebook).stem for a in ASSIGNMENTS.values())
    assert names == contract, f"solutions/ holds {names}; the contract names {contract}"


def test_committed_student_notebooks_are_up_to_date(generated) -> None:
    """Are the committed notebooks/ exactly what a release generates from solutions/?"""
    stale = rel.release(ROOT, check=True)
    assert stale == [], (
        "notebooks/ differs from what solutions/ generates for: "
        + ", ".join(str(p.relative_to(ROOT)) for p in stale)
        + ". Never edit notebooks/ by hand: run `python -m autograder release` and commit the result."
    )
    committed = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert committed == sorted(generated), (
        f"notebooks/ holds {committed} but solutions/ generates {sorted(generated)}; "
        "remove stale student notebooks and run `python -m autograder release`"
    )


def test_release_writes_the_same_bytes_into_a_fresh_tree(tmp_path: Path, generated) -> None:
    """Does release() into a fresh copy reproduce the texts (deterministic, no timestamps)?"""
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    written = rel.release(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{n}.ipynb" for n in generated)
    for path in written:
        assert path.read_text(encoding="utf-8") == generated[path.stem], f"{path.name}: a second release differs"
    assert rel.release(tmp_path, check=True) == []
    # check=True notices a hand edit and names the notebook
    victim = written[0]
    victim.write_text(victim.read_text(encoding="utf-8").replace("YOUR CODE HERE", "my edit", 1), encoding="utf-8")
    assert rel.release(tmp_path, check=True) == [victim]
    (tmp_path / "notebooks" / victim.name).unlink()
    assert rel.release(tmp_path, check=True) == [victim]


def test_student_notebooks_carry_no_outputs_or_run_state(generated) -> None:
    """No outputs, execution counts, timestamps or unexpected notebook metadata in a release."""
    for name, text in generated.items():
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
        assert set(nb.metadata) <= set(rel.KEPT_NOTEBOOK_METADATA), f"{name}: metadata {sorted(nb.metadata)}"
        assert nb.metadata["kernelspec"]["name"] == "python3", f"{name}: kernel must be python3"
        for cell in nb.cells:
            assert cell.get("id"), f"{name}: a cell without id"
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}/{cell.id}: outputs left"
            assert not set(cell.metadata) & set(rel.VOLATILE_CELL_METADATA), f"{name}/{cell.id}: run state left"


def test_release_rejects_broken_markup(tmp_path: Path) -> None:
    """An unclosed BEGIN SOLUTION fails the release with the notebook's name, writing nothing."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(f"def f():\n    {BEGIN}\n    return 1\n")
    cell.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": "f",
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    nb.cells = [cell]
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "broken.ipynb")
    with pytest.raises(rel.ReleaseError, match="broken.ipynb"):
        rel.release(tmp_path)
    assert not (tmp_path / "notebooks" / "broken.ipynb").exists()


# --------------------------------------------------------------------------------------
# The contract's graded cells
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_registry_matches_the_solution_graded_cells(assignment: str) -> None:
    """Are the solution notebook's answer cells that define names exactly the registry's tasks of
    the assignment (grade_id, then the names the cell defines), in the notebook's order?"""
    found = []
    for cell in _read(_solution_path(Path(ASSIGNMENTS[assignment].notebook).stem)).cells:
        nbgrader = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not nbgrader.get("solution"):
            continue
        names = tuple(
            node.name
            for node in ast.parse(cell.source).body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        )
        if names or nbgrader.get("grade_id") in TASKS:
            found.append((nbgrader.get("grade_id"), names))
    expected = [(task, TASKS[task]) for task in ASSIGNMENTS[assignment].cell_tasks]
    assert found == expected, (
        f"solutions/{ASSIGNMENTS[assignment].notebook}: {found} != autograder/contract.py's {expected}"
    )


@pytest.mark.parametrize(("notebook", "task"), GRADED_TASKS)
def test_contract_task_is_a_graded_cell_in_the_solution(notebook: str, task: str) -> None:
    """Is each task id a solution cell of the right solution notebook, defining its names with an answer?"""
    cells = _graded_cells(_read(_solution_path(notebook)))
    assert task in cells, f"solutions/{notebook}.ipynb has no cell with grade_id {task!r} (DESIGN.md contract)"
    cell = cells[task]
    assert cell.cell_type == "code" and cell.metadata["nbgrader"]["solution"] is True, (
        f"{notebook}/{task}: must be a code cell with nbgrader solution=true"
    )
    assert BEGIN in cell.source and END in cell.source, f"{notebook}/{task}: no {BEGIN} ... {END} region"
    missing = set(TASKS[task]) - _defined_names(cell.source)
    assert not missing, f"{notebook}/{task}: the graded cell does not define {sorted(missing)}"


@pytest.mark.parametrize(("notebook", "task"), GRADED_TASKS)
def test_contract_task_is_a_todo_in_the_student_notebook(notebook: str, task: str, generated) -> None:
    """Is each task id a TODO cell of the student notebook that still defines the graded names?"""
    assert notebook in generated, f"solutions/{notebook}.ipynb is missing"
    cells = _graded_cells(nbformat.reads(generated[notebook], as_version=4))
    assert task in cells, f"notebooks/{notebook}.ipynb lost grade_id {task!r}"
    cell = cells[task]
    assert "raise NotImplementedError()" in cell.source and BEGIN not in cell.source, (
        f"{notebook}/{task}: the student version must be a TODO stub"
    )
    missing = set(TASKS[task]) - _defined_names(cell.source)
    assert not missing, f"{notebook}/{task}: the student stub no longer defines {sorted(missing)}"
    assert cell.metadata["nbgrader"].get("checksum"), f"{notebook}/{task}: nbgrader checksum missing"


def test_grade_ids_are_unique_and_given_cells_are_locked(generated) -> None:
    """Unique grade ids; read-only cells are locked in the student version (LockCells ran)."""
    for name, text in generated.items():
        nb = nbformat.reads(text, as_version=4)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids)), f"{name}: duplicate grade ids"
        locked = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked")]
        assert locked, f"{name}: no read-only cells"
        for cell in locked:
            assert cell.metadata.get("editable") is False and cell.metadata.get("deletable") is False, (
                f"{name}/{cell.id}: a locked cell is still editable"
            )


def test_manually_graded_answers_are_cleared() -> None:
    """ssl_methods' three discussion answers are manually graded cells, emptied for students."""
    solution = _graded_cells(_read(_solution_path("ssl_methods")))
    answers = {gid: c for gid, c in solution.items() if c.metadata["nbgrader"]["grade"] and c.cell_type == "markdown"}
    assert set(answers) == {"simclr_shortcomings", "byol_predictor_role", "barlow_terms_collapse"}
    for gid, cell in answers.items():
        assert cell.metadata["nbgrader"]["points"] > 0 and BEGIN in cell.source, gid
    student = _graded_cells(_read(ROOT / "notebooks" / "ssl_methods.ipynb"))
    for gid in answers:
        assert student[gid].source.strip() == "YOUR ANSWER HERE", f"{gid}: reference answer not cleared"


# --------------------------------------------------------------------------------------
# No leaks
# --------------------------------------------------------------------------------------
def test_no_solution_line_in_student_notebooks(solution_lines, generated) -> None:
    """Does any line of a reference answer appear in a student notebook (generated or committed)?"""
    texts = dict(generated)
    texts.update({f"committed {p.name}": p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb")})
    for name, text in texts.items():
        nb = nbformat.reads(text, as_version=4)
        student_lines = {line.strip() for cell in nb.cells for line in cell.source.splitlines()}
        leaked = sorted(solution_lines & student_lines)
        assert not leaked, f"{name}: solution lines leaked into the student notebook: {leaked[:5]}"


def test_leak_check_bites(solution_lines) -> None:
    """The leak check would see a solution line pasted into a student notebook."""
    nb = _read(ROOT / "notebooks" / "ssl_methods.ipynb")
    line = sorted(solution_lines)[0]
    nb.cells[-1].source += "\n    " + line
    student_lines = {text.strip() for cell in nb.cells for text in cell.source.splitlines()}
    assert solution_lines & student_lines == {line}


@pytest.fixture(scope="module")
def student_zip(tmp_path_factory) -> Path:
    return rel.build_student_zip(ROOT, output=tmp_path_factory.mktemp("dist") / "ssl-lab-student.zip")


def test_student_zip_contents(student_zip: Path) -> None:
    """The zip holds the student notebooks, helpers/, pyproject.toml, requirements.txt and README.md — nothing else."""
    with zipfile.ZipFile(student_zip) as zf:
        names = set(zf.namelist())
        readme = zf.read(f"{rel.ZIP_FOLDER}/README.md")
    prefix = rel.ZIP_FOLDER + "/"
    assert all(name.startswith(prefix) for name in names), sorted(names)[:5]
    inner = {name[len(prefix) :] for name in names}
    helpers = {p.relative_to(ROOT).as_posix() for p in (ROOT / "helpers").rglob("*.py") if "__pycache__" not in p.parts}
    notebooks = {f"notebooks/{path.stem}.ipynb" for path in rel.solution_notebooks(ROOT)}
    expected = notebooks | helpers | {"pyproject.toml", "requirements.txt", "README.md"}
    assert inner == expected, f"missing {sorted(expected - inner)}, unexpected {sorted(inner - expected)}"
    assert "helpers/__init__.py" in inner and "notebooks/ssl_methods.ipynb" in inner
    for name in inner:
        parts = name.split("/")
        assert parts[0] not in {"solutions", "autograder", "tests", "benchmarks"}, name
        assert "__pycache__" not in parts and not name.endswith(".pyc"), name
    assert readme == (ROOT / rel.STUDENT_README).read_bytes()
    with zipfile.ZipFile(student_zip) as zf:
        for path in rel.solution_notebooks(ROOT):
            packed = zf.read(f"{prefix}notebooks/{path.name}")
            assert packed == (ROOT / "notebooks" / path.name).read_bytes(), f"{path.name}: zip != notebooks/"


def test_student_zip_is_reproducible(student_zip: Path, tmp_path: Path) -> None:
    """Two builds give the same bytes (fixed timestamps, sorted members)."""
    again = rel.build_student_zip(ROOT, output=tmp_path / "again.zip")
    assert again.read_bytes() == student_zip.read_bytes()


def test_no_solution_in_student_zip(student_zip: Path, solution_lines, solution_runs) -> None:
    """No reference-answer line in the zip's notebooks and README, no run of answer lines in helpers/."""
    with zipfile.ZipFile(student_zip) as zf:
        for name in zf.namelist():
            text = zf.read(name).decode("utf-8", errors="replace")
            if name.endswith(".ipynb"):
                nb = nbformat.reads(text, as_version=4)
                lines = [line for cell in nb.cells for line in cell.source.splitlines()]
            else:
                lines = text.splitlines()
            leaked_runs = sorted(solution_runs & _runs(lines))
            assert not leaked_runs, f"{name} in the student zip contains a reference answer: {leaked_runs[0]}"
            if name.endswith((".ipynb", ".md")):
                leaked = sorted(solution_lines & {line.strip() for line in lines})
                assert not leaked, f"{name} in the student zip contains solution lines: {leaked[:5]}"


def test_zip_leak_check_bites(solution_runs) -> None:
    """The run check would see an answer pasted into a helpers module."""
    run = sorted(solution_runs)[0]
    module = ["import torch", "", "def helper():", *("    " + line for line in run), "    return None"]
    assert solution_runs & _runs(module) == {run}
