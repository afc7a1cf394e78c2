"""Extraction of a notebook's definitions (autograder/extract.py): only top-level imports,
functions, classes and cheap set-up bindings survive; IPython syntax is stripped; graded
cells are found by grade_id or by name; a syntax error costs only its cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder import extract
from autograder.grading import ASSIGNMENTS, find_notebook

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def notebook(tmp_path: Path, *cells: tuple[str, str | None], name: str = "ssl_methods.ipynb") -> Path:
    """Write a notebook of code cells: (source, grade_id or None)."""
    content = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "execution_count": None, "outputs": [], "source": source,
         "metadata": ({"nbgrader": {"grade_id": grade_id, "solution": True}} if grade_id else {})}
        for source, grade_id in cells]}
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def run(extracted: extract.ExtractedNotebook) -> dict:
    """Execute the kept statements (these test notebooks are trusted) and return the namespace."""
    return extract.load_trusted(extracted, module_name="extract_test")


def test_keeps_only_definitions(tmp_path):
    path = notebook(tmp_path, ("import math\nx = train_for_hours()\nprint('hi')\n"
                               "def f(a):\n    return math.sqrt(a)\nfor i in range(10**9):\n    pass\n"
                               "class C:\n    k = 3\nLIMIT = 5\nopt = [1, (2, 3)]\n", None))
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("math",), ("f",), ("C",), ("LIMIT",), ("opt",)]
    namespace = run(extracted)
    assert namespace["f"](9) == 3 and namespace["C"].k == 3 and namespace["LIMIT"] == 5
    assert "x" not in namespace and "i" not in namespace


@pytest.mark.parametrize("line, kept", [
    ("device = get_device()", True), ("device = torch.device('cpu')", True), ("SMOKE = smoke_mode()", True),
    ("device = pick_gpu()", False), ("model = SimCLRModel()", False), ("n = len(data)", False),
    ("a, b = 1, 2", True), ("x: int = 3", True), ("obj.attr = 3", False), ("d['k'] = 1", False),
])
def test_keeps_only_cheap_bindings(line, kept):
    import ast

    assert (extract.kept_names(ast.parse(line).body[0]) is not None) == kept


def test_strips_ipython_syntax_keeping_line_numbers(tmp_path):
    source = ("%load_ext autoreload\n!pip install foo\nfiles = !ls\nt = %timeit -o f()\nf?\n"
              "def g():\n    %time x = 1\n    return 2\n")
    path = notebook(tmp_path, (source, None))
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("g",)]
    assert extracted.statements[0].lineno == 6
    assert run(extracted)["g"]() == 2


@pytest.mark.parametrize("magic, kept", [("%%time", True), ("%%capture out", True), ("%%bash", False),
                                         ("%%writefile x.py", False)])
def test_cell_magics(tmp_path, magic, kept):
    extracted = extract.extract(notebook(tmp_path, (f"{magic}\ndef f():\n    return 1\n", None)))
    assert bool(extracted.statements) == kept


def test_statements_sharing_a_line_run_only_the_kept_one(tmp_path):
    path = notebook(tmp_path, ("import math; raise SystemExit('would stop the grader')\n", None))
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("math",)]
    assert "math" in run(extracted)


def test_try_blocks_of_imports_are_kept(tmp_path):
    path = notebook(tmp_path, ("try:\n    import kornia_missing as k\nexcept ImportError:\n    import math as k\n", None),
                    ("try:\n    import math\nexcept ImportError:\n    for p in []:\n        pass\n", None))
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("k", "k")]
    assert run(extracted)["k"].__name__ == "math"


def test_later_definitions_replace_earlier_ones(tmp_path):
    path = notebook(tmp_path, ("def nt_xent(z1, z2, tau=0.5):\n    return 'first'\n", "nt_xent"),
                    ("def nt_xent(z1, z2, tau=0.5):\n    return 'second'\n", None))
    assert run(extract.extract(path))["nt_xent"](0, 0) == "second"


def test_syntax_error_costs_only_its_cell(tmp_path):
    path = notebook(tmp_path, ("def nt_xent(z1, z2, tau=0.5):\n    return (\n", "nt_xent"),
                    ("def barlow_loss(z1, z2, alpha, eps=1e-5):\n    return 1.0\n", "barlow_loss"))
    extracted = extract.extract(path)
    assert "line 2" in extracted.task_problem("nt_xent") and "syntax error" in extracted.task_problem("nt_xent")
    assert extracted.task_problem("barlow_loss") is None
    assert run(extracted)["barlow_loss"](0, 0, 0.1) == 1.0
    assert any("syntax error" in w for w in extracted.warnings)


def test_graded_cells_found_by_name_when_metadata_is_broken(tmp_path):
    path = notebook(tmp_path, ("def nt_xent(z1, z2, tau=0.5):\n    return 1\n", None),
                    ("def evaluate(c, d):\n    return (\n", None))
    extracted = extract.extract(path)
    assert extracted.task_cell("nt_xent").index == 0
    assert extracted.task_cell("evaluate").index == 1  # found by a regex, the cell does not parse
    assert "syntax error" in extracted.task_problem("evaluate")


def test_statement_labels_name_cell_and_grade_id(tmp_path):
    extracted = extract.extract(notebook(tmp_path, ("x = 1", None), ("def f():\n    pass\n", "nt_xent")))
    assert extracted.statements[-1].label == "cell 2 (grade_id nt_xent)"


@pytest.mark.parametrize("content, message", [(b"{not json", "not a valid notebook"),
                                              (b'{"cells": 3}', "not a Jupyter notebook"),
                                              (b'{"nbformat": 3, "cells": []}', "notebook format 3"),
                                              (b"\xff\xfe", "not a valid notebook")])
def test_unreadable_notebooks_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "ssl_methods.ipynb"
    path.write_bytes(content)
    with pytest.raises(extract.NotebookError, match=message):
        extract.extract(path)


def test_reference_extraction_keeps_what_the_tasks_need(tmp_path):
    """The grader executes only the statements the graded names depend on (no plotting or
    training imports), and the solutions define every task of their assignment."""
    for assignment in ASSIGNMENTS.values():
        extracted = extract.extract(PROJECT_ROOT / "solutions" / assignment.notebook)
        names = {n for task in assignment.tasks for n in extract.TASK_NAMES.get(task, ())}
        needed = extract.needed_statements(extracted.statements, names | {"EMA", "device"})
        bound = {n for s in needed for n in s.names}
        assert names <= bound, names - bound
        assert not bound & {"plt", "plot_history", "fit", "show_images"}, bound
        for task in assignment.tasks:
            if task in extract.TASK_NAMES:
                assert extracted.task_cell(task).grade_id == task


@pytest.mark.parametrize("files, assignment, expected, note", [
    (["ssl_methods.ipynb"], None, "ssl_methods", ""),
    (["simclr_homework.ipynb", "simclr_lin_best.pt"], None, "simclr_homework", ""),
    (["nested/deeper/ssl_methods.ipynb"], None, "ssl_methods", ""),
    (["jdoe_ssl_methods (2).ipynb"], None, "ssl_methods", "please keep the file name"),
    (["ssl_methods.ipynb", ".ipynb_checkpoints/ssl_methods-checkpoint.ipynb"], None, "ssl_methods", ""),
    (["ssl_methods.ipynb", "simclr_homework.ipynb"], "simclr_homework", "simclr_homework", ""),
])
def test_find_notebook(tmp_path, files, assignment, expected, note):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    found, path, text = find_notebook(tmp_path, assignment)
    assert found == expected and path is not None and note in text


def test_find_notebook_by_grade_ids_when_renamed(tmp_path):
    (tmp_path / "my_work.ipynb").write_bytes((PROJECT_ROOT / "solutions" / "simclr_homework.ipynb").read_bytes())
    assert find_notebook(tmp_path, None)[0] == "simclr_homework"


def test_find_notebook_reports_what_it_found(tmp_path):
    (tmp_path / "other.ipynb").write_text("{}")
    assignment, path, note = find_notebook(tmp_path, "ssl_methods")
    assert path is None and "no notebook named ssl_methods.ipynb" in note and "other.ipynb" in note
