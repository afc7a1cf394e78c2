"""Generate the student notebooks from the solution notebooks, and the student zip.

(It also rewrites README.md's points table from the graded tests, `autograder.points`.)

``solutions/<name>.ipynb`` is the single source that instructors edit. This module turns
each one into ``notebooks/<name>.ipynb`` with nbgrader's own preprocessors, run in-process
in the order of nbgrader's ``GenerateAssignment`` converter
(``nbgrader/converters/generate_assignment.py``), without the one that needs nbgrader's
database (``SaveCells``) and with one more ``CheckCellMetadata`` in front, so a broken
solution notebook is rejected before anything is cleared:

    CheckCellMetadata, IncludeHeaderFooter, InstantiateTests, LockCells, ClearSolutions,
    ClearOutput, CheckCellMetadata, ComputeChecksums, ClearHiddenTests, ClearMarkScheme,
    ComputeChecksums, CheckCellMetadata

``ClearSolutions`` replaces every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region by
``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (code) or ``YOUR ANSWER HERE``
(markdown); ``LockCells`` makes the given cells read-only; ``ComputeChecksums`` records
what each graded cell looked like when released.

The output is deterministic: nbformat's own JSON layout (indent 1, sorted keys), no
outputs, no execution counts, no execution timestamps, and only the ``kernelspec`` and
``language_info`` notebook metadata, so regenerating an unchanged solution gives the same
bytes and a test can insist that the committed ``notebooks/`` equal a fresh release.

``build_student_zip`` packs what a student downloads: the student notebooks, the
``helpers`` package with ``pyproject.toml`` (so that ``pip install ./ssl-lab`` installs it),
``requirements.txt`` and ``README.students.md`` (as ``README.md``), never anything from
``solutions/`` or ``autograder/``.

Usage::

    python -m autograder release            # through the autograder CLI
    python -m autograder.release            # regenerate notebooks/, README's points table, the zip
    python -m autograder.release --check    # exit 1 (and name them) if notebooks/ or the table is stale
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import nbformat

from autograder.points import points_table, with_points_table
from autograder.results import GraderError

#: The project root: the folder holding ``solutions/``, ``notebooks/`` and ``helpers/``.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS_DIR = "solutions"
NOTEBOOKS_DIR = "notebooks"
#: Where `build_student_zip` writes, relative to the project root.
STUDENT_ZIP = Path("dist") / "ssl-lab-student.zip"
#: The folder every member of the student zip sits in.
ZIP_FOLDER = "ssl-lab"
STUDENT_README = "README.students.md"
#: Files of the project root that go into the student zip as they are: the package's build
#: configuration (it installs `helpers` only) and the pins it reads.
STUDENT_ROOT_FILES = ("pyproject.toml", "requirements.txt")
#: Notebook-level metadata kept in a student notebook (everything else is dropped).
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")
#: Cell metadata that records when or how a cell was last run, never part of a release.
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")
#: A fixed timestamp for zip members (the earliest a zip can hold), so zips are reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class ReleaseError(RuntimeError):
    """A solution notebook could not be turned into a student notebook (says which and why)."""


def _root(project_root: str | os.PathLike | None) -> Path:
    return Path(project_root).resolve() if project_root is not None else PROJECT_ROOT


def solution_notebooks(project_root: str | os.PathLike | None = None) -> list[Path]:
    """The solution notebooks, ``solutions/*.ipynb``, sorted by name (checkpoints excluded)."""
    folder = _root(project_root) / SOLUTIONS_DIR
    if not folder.is_dir():
        raise ReleaseError(
            f"no {SOLUTIONS_DIR}/ folder in {folder.parent}: run the release from the project root "
            "or pass project_root="
        )
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def _preprocessors() -> list:
    """nbgrader's GenerateAssignment preprocessors, in its order, minus the database-bound
    ``SaveCells``, with a ``CheckCellMetadata`` in front."""
    # Imported here: nbgrader is slow to import and only the release needs it.
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        IncludeHeaderFooter,
        InstantiateTests,
        LockCells,
    )

    return [
        CheckCellMetadata,
        IncludeHeaderFooter,
        InstantiateTests,
        LockCells,
        ClearSolutions,
        ClearOutput,
        CheckCellMetadata,
        ComputeChecksums,
        # (GenerateAssignment runs SaveCells here: it writes the cells to nbgrader's database.)
        ClearHiddenTests,
        ClearMarkScheme,
        ComputeChecksums,
        CheckCellMetadata,
    ]


def _normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip everything that depends on who ran the notebook when, and give cells stable ids."""
    nb.metadata = nbformat.NotebookNode({k: nb.metadata[k] for k in KEPT_NOTEBOOK_METADATA if k in nb.metadata})
    nb.nbformat, nb.nbformat_minor = 4, max(int(nb.get("nbformat_minor", 5)), 5)
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        # nbformat >= 4.5 needs a cell id; a notebook saved without ids would otherwise get
        # random ones on every release.
        cell_id = cell.get("id") or f"cell-{index:03d}"
        if cell_id in seen:
            raise ReleaseError(f"duplicate cell id {cell_id!r}; give every cell of the solution notebook a unique id")
        seen.add(cell_id)
        cell["id"] = cell_id
    return nb


def generate_student_notebook(solution: str | os.PathLike) -> nbformat.NotebookNode:
    """The student version of one solution notebook (nothing is written).

    Args:
        solution: path of ``solutions/<name>.ipynb``.

    Returns:
        The student notebook: solution regions replaced by stubs, given cells locked,
        outputs cleared, checksums of the graded cells recorded.

    Raises:
        ReleaseError: the notebook is not valid nbformat 4 or its nbgrader markup is broken
            (an unclosed ``### BEGIN SOLUTION``, a solution region outside a solution cell,
            a duplicate ``grade_id``, ...). The message names the notebook.
    """
    path = Path(solution)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types
        raise ReleaseError(f"{path} is not a readable nbformat-4 notebook: {exc}") from exc
    nb = _normalise(nb)
    resources = {"metadata": {"path": str(path.parent), "name": path.stem}, "unique_key": path.stem}
    for preprocessor_class in _preprocessors():
        try:
            nb, resources = preprocessor_class().preprocess(nb, resources)
        except Exception as exc:
            raise ReleaseError(
                f"{path.name}: nbgrader's {preprocessor_class.__name__} failed: {exc}. Fix the nbgrader "
                "markup of the solution notebook (cell metadata, BEGIN/END SOLUTION markers)."
            ) from exc
    return _normalise(nb)


def render(nb: nbformat.NotebookNode) -> str:
    """The notebook as text, in nbformat's canonical layout (indent 1, sorted keys), newline-terminated."""
    text = nbformat.writes(copy.deepcopy(nb), version=4)
    return text if text.endswith("\n") else text + "\n"


def release(project_root: str | os.PathLike | None = None, check: bool = False) -> list[Path]:
    """Regenerate ``notebooks/<name>.ipynb`` from every ``solutions/<name>.ipynb``, and the
    points table of ``README.md`` from the graded tests (`autograder.points`) where there is one.

    Args:
        project_root: the project root (default: the one this module belongs to).
        check: only compare; write nothing.

    Returns:
        With ``check=False``, every file written (changed or not). With ``check=True``, the
        student notebooks that are missing or differ from what a release would write, and
        README.md when its points table is out of date (empty when everything is up to date).
    """
    root = _root(project_root)
    out_dir = root / NOTEBOOKS_DIR
    paths: list[Path] = []
    for solution in solution_notebooks(root):
        target = out_dir / solution.name
        text = render(generate_student_notebook(solution))
        if check:
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                paths.append(target)
            continue
        _write(target, text)
        paths.append(target)
    readme, course = root / "README.md", root / "autograder" / "course.toml"
    if readme.is_file() and course.is_file():  # the project's own tree (not a bare copy of solutions/)
        current = readme.read_text(encoding="utf-8")
        try:
            text = with_points_table(current, points_table(course))
        except (ValueError, GraderError) as error:  # no marker lines; a course.toml that does not load
            raise ReleaseError(f"{readme}: {error}") from None
        if text != current or not check:
            if not check:
                _write(readme, text)
            paths.append(readme)
    return paths


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # newline="\n": the same bytes on every platform.
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _is_packaged(path: Path) -> bool:
    parts = set(path.parts)
    return not ("__pycache__" in parts or path.suffix in {".pyc", ".pyo"} or any(p.startswith(".") for p in path.parts))


def student_zip_members(project_root: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """What goes into the student zip: ``(file on disk, name in the zip)``, sorted by name.

    Raises:
        ReleaseError: a required file is missing (the message says which and how to make it).
    """
    root = _root(project_root)
    members: list[tuple[Path, str]] = []
    notebooks = sorted((root / NOTEBOOKS_DIR).glob("*.ipynb"))
    if not notebooks:
        raise ReleaseError(f"no student notebooks in {root / NOTEBOOKS_DIR}: run `python -m autograder release` first")
    members += [(p, f"{ZIP_FOLDER}/{NOTEBOOKS_DIR}/{p.name}") for p in notebooks]
    helpers = root / "helpers"
    if not (helpers / "__init__.py").is_file():
        raise ReleaseError(f"{helpers}/__init__.py is missing: the student zip needs the helpers package")
    for path in sorted(helpers.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and _is_packaged(rel):
            members.append((path, f"{ZIP_FOLDER}/{rel.as_posix()}"))
    for source, name in (*((f, f) for f in STUDENT_ROOT_FILES), (STUDENT_README, "README.md")):
        if not (root / source).is_file():
            raise ReleaseError(f"{root / source} is missing: the student zip needs it")
        members.append((root / source, f"{ZIP_FOLDER}/{name}"))
    return sorted(members, key=lambda member: member[1])


def build_student_zip(project_root: str | os.PathLike | None = None, output: str | os.PathLike | None = None) -> Path:
    """Write the students' download, ``dist/ssl-lab-student.zip`` (reproducible bytes).

    Contents, under one ``ssl-lab/`` folder: ``notebooks/*.ipynb`` (the student notebooks as
    committed; run `release` first), ``helpers/`` (no ``__pycache__``), ``pyproject.toml``
    (``pip install ./ssl-lab`` installs ``helpers``), ``requirements.txt`` and ``README.md``
    (from ``README.students.md``). Nothing from ``solutions/`` or ``autograder/``.

    Args:
        project_root: the project root (default: the one this module belongs to).
        output: the zip to write (default ``<project_root>/dist/ssl-lab-student.zip``).

    Returns:
        The path of the zip.
    """
    root = _root(project_root)
    target = Path(output) if output is not None else root / STUDENT_ZIP
    target.parent.mkdir(parents=True, exist_ok=True)
    members = student_zip_members(root)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, name in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    os.replace(tmp, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: regenerate the student notebooks (and the student zip), or check them."""
    parser = argparse.ArgumentParser(
        prog="python -m autograder release",
        description="Regenerate notebooks/*.ipynb from solutions/*.ipynb with nbgrader's preprocessors, "
        "README.md's points table from the graded tests, and build dist/ssl-lab-student.zip.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a student notebook or README.md's points table is out of date",
    )
    parser.add_argument("--no-zip", action="store_true", help="do not build the student zip")
    parser.add_argument("--root", help="project root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = release(args.root, check=True)
            for path in stale:
                print(f"out of date: {path}")
            if stale:
                print("Run `python -m autograder release` to regenerate them.")
                return 1
            print("notebooks/ is up to date with solutions/, and README.md's points table with the graded tests")
            return 0
        for path in release(args.root):
            print(f"wrote {path}")
        if not args.no_zip:
            print(f"wrote {build_student_zip(args.root)}")
    except ReleaseError as exc:
        print(f"release failed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
