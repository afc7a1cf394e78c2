"""Extraction of a notebook's definitions (autograder/extract.py): only top-level imports,
functions, classes and cheap set-up bindings survive; IPython syntax is stripped; graded
cells are found by grade_id or by name; a syntax error costs only its cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder import extract
from autograder.contract import TASKS
from autograder.grading import ASSIGNMENTS, find_notebook
from autograder.in_sandbox.statements import compile_node

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def notebook(tmp_path: Path, *cells: tuple[str, str | None], name: str = "ssl_methods.ipynb") -> Path:
    """Write a notebook of code cells: (source, grade_id or None)."""
    content = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "outputs": [],
                "source": source,
                "metadata": ({"nbgrader": {"grade_id": grade_id, "solution": True}} if grade_id else {}),
            }
            for source, grade_id in cells
        ],
    }
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def run(extracted: extract.ExtractedNotebook) -> dict:
    """Execute the kept statements (these test notebooks are trusted) and return the namespace."""
    return extract.load_trusted(extracted, module_name="extract_test")


def test_keeps_only_definitions(tmp_path):
    path = notebook(
        tmp_path,
        (
            "import math\nx = train_for_hours()\nprint('hi')\n"
            "def f(a):\n    return math.sqrt(a)\nfor i in range(10**9):\n    pass\n"
            "class C:\n    k = 3\nLIMIT = 5\nopt = [1, (2, 3)]\n",
            None,
        ),
    )
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("math",), ("f",), ("C",), ("LIMIT",), ("opt",)]
    namespace = run(extracted)
    assert namespace["f"](9) == 3 and namespace["C"].k == 3 and namespace["LIMIT"] == 5
    assert "x" not in namespace and "i" not in namespace


@pytest.mark.parametrize(
    "line, kept",
    [
        ("device = get_device()", True),
        ("device = torch.device('cpu')", True),
        ("SMOKE = smoke_mode()", True),
        ("device = pick_gpu()", False),
        ("model = SimCLRModel()", False),
        ("n = len(data)", False),
        ("a, b = 1, 2", True),
        ("x: int = 3", True),
        ("obj.attr = 3", False),
        ("d['k'] = 1", False),
    ],
)
def test_keeps_only_cheap_bindings(line, kept):
    import ast

    assert (extract.kept_names(ast.parse(line).body[0]) is not None) == kept


def test_strips_ipython_syntax_keeping_line_numbers(tmp_path):
    source = (
        "%load_ext autoreload\n!pip install foo\nfiles = !ls\nt = %timeit -o f()\nf?\n"
        "def g():\n    %time x = 1\n    return 2\n"
    )
    path = notebook(tmp_path, (source, None))
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("g",)]
    assert extracted.statements[0].lineno == 6
    assert run(extracted)["g"]() == 2


@pytest.mark.parametrize(
    "magic, kept", [("%%time", True), ("%%capture out", True), ("%%bash", False), ("%%writefile x.py", False)]
)
def test_cell_magics(tmp_path, magic, kept):
    extracted = extract.extract(notebook(tmp_path, (f"{magic}\ndef f():\n    return 1\n", None)))
    assert bool(extracted.statements) == kept


def test_statements_sharing_a_line_run_only_the_kept_one(tmp_path):
    path = notebook(tmp_path, ("import math; raise SystemExit('would stop the grader')\n", None))
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("math",)]
    assert "math" in run(extracted)


def test_try_blocks_of_imports_are_kept(tmp_path):
    path = notebook(
        tmp_path,
        ("try:\n    import kornia_missing as k\nexcept ImportError:\n    import math as k\n", None),
        ("try:\n    import math\nexcept ImportError:\n    for p in []:\n        pass\n", None),
    )
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("k", "k")]
    assert run(extracted)["k"].__name__ == "math"


def test_later_definitions_replace_earlier_ones(tmp_path):
    path = notebook(
        tmp_path,
        ("def nt_xent(z1, z2, tau=0.5):\n    return 'first'\n", "nt_xent"),
        ("def nt_xent(z1, z2, tau=0.5):\n    return 'second'\n", None),
    )
    assert run(extract.extract(path))["nt_xent"](0, 0) == "second"


def test_syntax_error_costs_only_its_cell(tmp_path):
    path = notebook(
        tmp_path,
        ("def nt_xent(z1, z2, tau=0.5):\n    return (\n", "nt_xent"),
        ("def barlow_loss(z1, z2, alpha, eps=1e-5):\n    return 1.0\n", "barlow_loss"),
    )
    extracted = extract.extract(path)
    assert "line 2" in extracted.task_problem("nt_xent") and "syntax error" in extracted.task_problem("nt_xent")
    assert extracted.task_problem("barlow_loss") is None
    assert run(extracted)["barlow_loss"](0, 0, 0.1) == 1.0
    assert any("syntax error" in w for w in extracted.warnings)


def test_graded_cells_found_by_name_when_metadata_is_broken(tmp_path):
    path = notebook(
        tmp_path, ("def nt_xent(z1, z2, tau=0.5):\n    return 1\n", None), ("def evaluate(c, d):\n    return (\n", None)
    )
    extracted = extract.extract(path)
    assert extracted.task_cell("nt_xent").index == 0
    assert extracted.task_cell("evaluate").index == 1  # found by a regex, the cell does not parse
    assert "syntax error" in extracted.task_problem("evaluate")


def test_statement_labels_name_cell_and_grade_id(tmp_path):
    extracted = extract.extract(notebook(tmp_path, ("x = 1", None), ("def f():\n    pass\n", "nt_xent")))
    assert extracted.statements[-1].label == "cell 2 (grade_id nt_xent)"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "not a valid notebook"),
        (b'{"cells": 3}', "not a Jupyter notebook"),
        (b'{"nbformat": 3, "cells": []}', "notebook format 3"),
        (b"\xff\xfe", "not a valid notebook"),
    ],
)
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
        names = {n for task in assignment.cell_tasks for n in TASKS[task]}
        needed = extract.needed_statements(extracted.statements, names | {"EMA", "device"})
        bound = {n for s in needed for n in s.names}
        assert names <= bound, names - bound
        assert not bound & {"plt", "plot_history", "fit", "show_images"}, bound
        for task in assignment.cell_tasks:
            assert extracted.task_cell(task).grade_id == task


@pytest.mark.parametrize(
    "files, assignment, expected, note",
    [
        (["ssl_methods.ipynb"], None, "ssl_methods", ""),
        (["simclr_homework.ipynb", "simclr_lin_best.pt"], None, "simclr_homework", ""),
        (["nested/deeper/ssl_methods.ipynb"], None, "ssl_methods", ""),
        (["jdoe_ssl_methods (2).ipynb"], None, "ssl_methods", "please keep the file name"),
        (["ssl_methods.ipynb", ".ipynb_checkpoints/ssl_methods-checkpoint.ipynb"], None, "ssl_methods", ""),
        (["ssl_methods.ipynb", "simclr_homework.ipynb"], "simclr_homework", "simclr_homework", ""),
    ],
)
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


# --------------------------------------------------------------------------------------
# Hostile notebooks: size, nesting, super-linear text, caps
# --------------------------------------------------------------------------------------
def code_notebook(tmp_path: Path, *sources: str) -> Path:
    return notebook(tmp_path, *[(source, None) for source in sources])


def test_a_notebook_over_the_size_cap_is_not_read(tmp_path):
    path = tmp_path / "ssl_methods.ipynb"
    with open(path, "wb") as handle:
        handle.truncate(extract.MAX_NOTEBOOK_BYTES + 1)  # sparse: nothing is written
    assert extract.MAX_NOTEBOOK_BYTES <= 32 * 2**20  # survives a 2 GB container (json.loads of 32 MB: < 1 GB)
    with pytest.raises(extract.NotebookError, match="clear the cell outputs"):
        extract.extract(path)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "content, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested more than"),
        ('{"cells": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}", "nested more than"),
        ('{"cells": [' + "[]," * 300_000 + "[]]}", "too many values"),
        ('{"cells": [' + "0," * 2_100_000 + "0]}", "too many values"),
    ],
)
def test_deep_or_huge_json_is_a_clear_error_not_a_crash(tmp_path, content, message):
    """json.loads would raise RecursionError (the grader died with no results.json) or build
    hundreds of MB of lists; both are refused by a linear scan before it runs."""
    path = tmp_path / "ssl_methods.ipynb"
    path.write_text(content)
    with pytest.raises(extract.NotebookError, match=message):
        extract.extract(path)


def test_json_scan_ignores_brackets_and_commas_inside_strings():
    text = json.dumps({"cells": [{"source": "[" * 1000 + "," * 3_000_000 + '\\"{'}]}).encode()
    assert extract.json_shape_problem(text) is None
    assert extract.json_shape_problem(b'["unterminated [[[[') is None  # json.loads reports it


# The regular expressions extraction used before its scans were made linear (the oracle for
# short lines, where they are fast).
_OLD_HELP_LINE = __import__("re").compile(r"^\s*[\w.]+\s*\?\??\s*$|^\s*\?\??[\w.]+\s*$")
_OLD_MAGIC_ASSIGN = __import__("re").compile(r"^\s*[\w.,\s]+=\s*[%!]")
_OLD_NAMES = __import__("re").compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", flags=__import__("re").M)


def _lines():
    pieces = [
        "",
        " ",
        "  ",
        "\t",
        "a",
        "f",
        "obj.attr",
        "x,y",
        "é",
        "_",
        "1",
        "?",
        "??",
        "???",
        "=",
        "==",
        "%",
        "!",
        "%timeit",
        "!ls",
        "(",
        "x ",
        " ?",
        "a b",
        "\r",
        ".",
        ",",
    ]
    for first in pieces:
        for second in pieces:
            for third in ["", "?", " ", "%", "=", "!", "x", "??"]:
                yield first + second + third


def test_linear_ipython_scans_agree_with_the_old_expressions():
    for line in _lines():
        assert extract._is_help_line(line) == bool(_OLD_HELP_LINE.match(line)), repr(line)
        assert extract._is_magic_assign(line) == bool(_OLD_MAGIC_ASSIGN.match(line)), repr(line)
    source = "def f(x):\nclass  C_1(B):\nasync   def g():\n  def inner():\ndefine = 1\ndef 1x():\nclass\tD: pass\n"
    assert extract._regex_names(source) == tuple(_OLD_NAMES.findall(source)) == ("f", "C_1", "g", "D")
    # the old expression's \s+ also ran across line ends ("class\nasync" named "async"); the scan does not
    assert extract._regex_names("class\nasync def\ndef h():\n") == ("h",)


@pytest.mark.timeout(20)
def test_stripping_is_linear_on_long_lines():
    """70,000 spaces took the old expression about 60 s per pass; every shape of long line
    now takes one linear scan."""
    for line in [
        " " * 70_000,
        " " * 70_000 + "x",
        "a" * 70_000 + " ?x",
        ", " * 35_000 + "= 1",
        "a " * 35_000 + "=",
        "?" + "a" * 70_000 + " b",
        "." * 70_000 + "?",
    ]:
        assert extract.strip_ipython(line + "\nx = 1\n").endswith("x = 1\n")


@pytest.mark.timeout(20)
def test_thousands_of_statements_in_one_cell_are_parsed_once(tmp_path):
    """2,500 statements in one cell took 165 s when the cell was re-parsed per statement."""
    count = 2500
    source = "import math\n" + "".join(f"def f{i}():\n    return {i}\n" for i in range(count))
    extracted = extract.extract(code_notebook(tmp_path, source))
    assert len(extracted.statements) == count + 1
    assert extract.imported_modules(extracted.statements) == {"math"}
    payload = extract.statements_payload(extracted.statements)
    namespace: dict = {}
    for statement in payload["statements"]:  # as the worker compiles them
        code = compile_node(
            payload["cells"][statement["label"]], statement["node"], statement["label"], statement["flags"]
        )
        exec(code, namespace)  # noqa: S102 - this test's own notebook
    assert namespace[f"f{count - 1}"]() == count - 1
    assert run(extracted)["f7"]() == 7


def test_tracebacks_keep_the_cells_line_numbers(tmp_path):
    source = "%matplotlib inline\r\nimport math; x = 1\r\n\r\n@staticmethod\r\ndef broken():\r\n    return 1 / 0\r\n"
    extracted = extract.extract(code_notebook(tmp_path, source))
    statement = extracted.statements[-1]
    assert statement.names == ("broken",) and statement.lineno == 4
    namespace: dict = {}
    code = compile_node(statement.cell_source, statement.node, statement.label, statement.future_flags)
    exec(code, namespace)  # noqa: S102
    with pytest.raises(ZeroDivisionError) as info:
        namespace["broken"].__func__()
    assert info.traceback[-1].lineno + 1 == 6  # pytest's line numbers are 0-based
    assert info.traceback[-1].path == "<cell 1>"


@pytest.mark.parametrize(
    "source, cap, value",
    [
        ("x = " + "1" * 60 + "\n", "MAX_LINE_CHARS", 50),
        ("def f():\n    return 1\n" * 10, "MAX_CELL_CHARS", 100),
        ("import math\n" * 30, "MAX_CELL_STATEMENTS", 20),
    ],
)
def test_a_cell_over_a_cap_costs_only_its_own_tasks(tmp_path, monkeypatch, source, cap, value):
    monkeypatch.setattr(extract, cap, value)
    path = notebook(
        tmp_path,
        ("def nt_xent(z1, z2, tau=0.5):\n    return 1\n" + source, "nt_xent"),
        ("def barlow_loss(z1, z2, alpha, eps=1e-5):\n    return 2\n", "barlow_loss"),
    )
    extracted = extract.extract(path)
    assert "was not graded" in extracted.task_problem("nt_xent")
    assert any("was not graded" in w for w in extracted.warnings)
    assert extracted.task_problem("barlow_loss") is None
    assert run(extracted)["barlow_loss"](0, 0, 0.1) == 2 and "nt_xent" not in run(extracted)
    assert extracted.task_cell("nt_xent").names[0] == "nt_xent"


def test_statements_and_cells_past_the_caps_are_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(extract, "MAX_STATEMENTS", 3)
    path = notebook(
        tmp_path,
        ("def a():\n    pass\ndef b():\n    pass\n", None),
        ("def nt_xent(z1, z2):\n    pass\ndef c():\n    pass\n", "nt_xent"),
        ("def barlow_loss(z1, z2):\n    pass\n", "barlow_loss"),
    )
    extracted = extract.extract(path)
    assert [s.names for s in extracted.statements] == [("a",), ("b",)]
    assert "more than 3 definitions" in extracted.task_problem("nt_xent")
    assert "more than 3 definitions" in extracted.task_problem("barlow_loss")
    assert sum("more than 3 definitions" in w for w in extracted.warnings) == 1
    monkeypatch.setattr(extract, "MAX_CELLS", 1)
    extracted = extract.extract(path)
    assert extracted.task_cell("nt_xent") is None and any("only the first 1" in w for w in extracted.warnings)
