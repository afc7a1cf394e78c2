"""Build a submission's module from a notebook: top-level imports, functions and classes only.

The grader never runs a notebook top to bottom (that would retrain on a CPU). It reads the
code cells, strips IPython syntax (``%magics``, ``!shell`` lines, ``obj?`` help), parses each
cell with `ast` and keeps, in notebook order, only the top-level statements that define
things:

- ``import`` / ``from ... import`` (and ``try:`` blocks made only of imports),
- ``def`` / ``async def`` / ``class`` (with their decorators),
- ``NAME = <literal>`` and the set-up cell's cheap runtime bindings
  (``device = get_device()``, ``SMOKE = smoke_mode()``, ``torch.device(...)``), so that a
  function using the notebook's global ``device`` works as it does in the kernel.

Everything else (training loops, plots, prints, checks) is dropped. A later definition of
a name replaces an earlier one, as in the kernel. A cell with a syntax error contributes
nothing and costs only the tasks defined in it; it is reported with its line and message.

Graded cells are found by their nbgrader ``grade_id`` (the task id of DESIGN.md's
contract); when a student broke the metadata, by the names the contract says the task
defines. The same extraction builds the reference module from ``solutions/`` (executed in
the grader's process; trusted) and the student's module (executed only in the sandboxed
worker, statement by statement).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.in_sandbox.statements import compile_tree, parse_cell

from .contract import TASKS  # relative: the sandboxed worker imports this module as sslgrader_worker.extract

#: Calls whose result a kept top-level assignment may bind (cheap, no training).
SAFE_CALLS = frozenset(
    {
        "get_device",
        "smoke_mode",
        "torch.device",
        "helpers.get_device",
        "helpers.runtime.get_device",
        "helpers.smoke_mode",
        "helpers.runtime.smoke_mode",
    }
)

#: Cell magics whose body is ordinary Python (the magic line is dropped, the body kept).
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})

#: Largest notebook file read (the reference notebooks are under 100 KB; outputs make the rest).
MAX_NOTEBOOK_BYTES = 32 * 2**20
#: Deepest nesting of JSON arrays and objects read (nbformat needs about 8 levels).
MAX_JSON_DEPTH = 64
#: Most JSON arrays and objects, and most JSON values (containers plus commas), read: 32 MB
#: of ``[],[],...`` would otherwise become about 850 MB of Python lists.
MAX_JSON_CONTAINERS = 200_000
MAX_JSON_VALUES = 2_000_000
#: Caps on what is parsed (each about 100 times what the reference notebooks have: 73 cells,
#: cells of at most 2,346 characters, lines of at most 128, at most 27 statements per cell
#: and 61 kept statements per notebook). A cell over a cap is not parsed and costs only the
#: tasks defined in it; cells past MAX_CELLS are not read.
MAX_CELLS = 2000
MAX_CELL_CHARS = 200_000
MAX_LINE_CHARS = 10_000
MAX_CELL_STATEMENTS = 3000
MAX_STATEMENTS = 6000
_CLEAR_OUTPUTS = "clear the cell outputs (Edit > Clear All Outputs), save, and submit it again"


class NotebookError(ValueError):
    """The file is not a notebook the grader can read (the message says why)."""


@dataclass(frozen=True)
class Statement:
    """One kept top-level statement of a code cell.

    Attributes:
        index: position in the module (notebook order).
        cell: index of its code cell in the notebook (0-based over all cells).
        label: where it came from, for tracebacks, e.g. "cell 12 (grade_id nt_xent)".
        cell_source: the cell's source after `strip_ipython` (same line numbers as the cell).
        node: index of the statement in the parsed cell's top-level body.
        lineno: first line of the statement (decorators included), 1-based in the cell.
        names: the names the statement binds.
        future_flags: compiler flags of the cell's ``from __future__`` imports.
        tree: the parsed statement (extraction parses each cell once; None: parsed on demand).
    """

    index: int
    cell: int
    label: str
    cell_source: str
    node: int
    lineno: int
    names: tuple[str, ...]
    future_flags: int = 0
    tree: ast.stmt | None = field(default=None, compare=False, repr=False)

    def statement_node(self) -> ast.stmt:
        """The parsed statement (from extraction, else from the cell parsed once and cached)."""
        return self.tree if self.tree is not None else parse_cell(self.cell_source).body[self.node]


@dataclass
class CodeCell:
    """A code cell: its grade_id (if any), the names it defines, its syntax error, or why it
    was not parsed at all (`problem`: over one of the caps)."""

    index: int
    grade_id: str | None
    source: str
    names: tuple[str, ...] = ()
    syntax_error: str | None = None
    problem: str | None = None

    @property
    def label(self) -> str:
        suffix = f" (grade_id {self.grade_id})" if self.grade_id else ""
        return f"cell {self.index + 1}{suffix}"


@dataclass
class ExtractedNotebook:
    """The result of extraction: statements to execute, cells, and what went wrong."""

    path: Path
    statements: list[Statement] = field(default_factory=list)
    cells: list[CodeCell] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def task_cell(self, task: str) -> CodeCell | None:
        """The graded cell of `task`: by grade_id, else the last cell defining its names."""
        by_id = [c for c in self.cells if c.grade_id == task]
        if by_id:
            return by_id[-1]
        names = set(TASKS.get(task, ()))
        candidates = [c for c in self.cells if names & set(c.names)]
        return candidates[-1] if candidates else None

    def task_problem(self, task: str) -> str | None:
        """Why `task` cannot be graded from this notebook (a syntax error, a cap), else None."""
        cell = self.task_cell(task)
        if cell is not None and cell.syntax_error:
            return f"The {cell.label} has a syntax error, so nothing in it could be graded: {cell.syntax_error}"
        if cell is not None and cell.problem:
            return f"The {cell.label} was not graded: {cell.problem}"
        return None

    def defined_names(self) -> set[str]:
        return {name for statement in self.statements for name in statement.names}


# ======================================================================================
# Reading notebooks
# ======================================================================================
def read_notebook(path: str | Path) -> dict:
    """Load a notebook's JSON (nbformat 4) with clear errors, reading only a regular file.

    The file is opened without following a link or blocking (`autograder.safe_files`), is at
    most `MAX_NOTEBOOK_BYTES`, and its JSON is checked for nesting depth and number of
    values (`json_shape_problem`) before `json.loads` builds it.

    Raises:
        NotebookError: a link, pipe, device or folder; too large, too deep, not JSON, not
            an nbformat-4 notebook.
    """
    from . import safe_files

    path = Path(path)
    try:
        data = safe_files.read_regular(path, MAX_NOTEBOOK_BYTES, what="notebook", too_large=f"; {_CLEAR_OUTPUTS}")
    except safe_files.SubmittedFileError as error:
        raise NotebookError(str(error)) from None
    problem = json_shape_problem(data)
    if problem:
        raise NotebookError(
            f"{path.name} {problem}; {_CLEAR_OUTPUTS}. If it still fails, download the "
            "notebook again with File > Download > .ipynb"
        ) from None
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise NotebookError(
            f"{path.name} is not a valid notebook file (not JSON: {error}). "
            "Download it again with File > Download > .ipynb"
        ) from None
    except (RecursionError, MemoryError):  # guarded by json_shape_problem; kept as a last line
        raise NotebookError(f"{path.name} is too large or too deeply nested to read; {_CLEAR_OUTPUTS}") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookError(f"{path.name} is not a Jupyter notebook (no list of cells)")
    if notebook.get("nbformat", 4) != 4:
        raise NotebookError(
            f"{path.name} uses notebook format {notebook.get('nbformat')}; save it with a current Jupyter (format 4)"
        )
    return notebook


# A JSON string, unterminated at the end of the data included. Possessive: it never backtracks.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S])*+"?')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"[]{},")


def json_shape_problem(data: bytes) -> str | None:
    """Why `json.loads(data)` would nest too deeply or build too many objects, else None.

    Linear in len(data): strings are removed by a regular expression without backtracking,
    brackets and commas are counted in C, and the depth is followed only when the number of
    brackets is within `MAX_JSON_CONTAINERS`.
    """
    skeleton = _JSON_STRING.sub(b"", data).translate(None, _NOT_STRUCTURE)
    containers = skeleton.count(b"[") + skeleton.count(b"{")
    if containers > MAX_JSON_CONTAINERS or containers + skeleton.count(b",") > MAX_JSON_VALUES:
        return (
            f"holds too many values for the grader to read (more than {MAX_JSON_CONTAINERS:,} lists or "
            f"{MAX_JSON_VALUES:,} values)"
        )
    depth = 0
    for byte in skeleton.translate(None, b","):
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            return f"is nested more than {MAX_JSON_DEPTH} levels deep (a notebook needs about 8)"
    return None


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def _grade_id(cell: dict) -> str | None:
    metadata = cell.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return grade_id if isinstance(grade_id, str) and grade_id else None


# ======================================================================================
# IPython syntax
# ======================================================================================
def _is_word_or_dot(text: str) -> bool:
    """`text` is non-empty and made of the characters of the regular expression ``[\\w.]``."""
    return bool(text) and all(ch.isalnum() or ch in "_." for ch in text)


def _is_help_line(line: str) -> bool:
    """``obj?``, ``obj.attr??`` or ``?obj`` alone on a line (IPython help).

    A scan in linear time (the regular expression this replaces backtracked on long lines).
    """
    text = line.strip()
    body = text.rstrip("?")
    if 1 <= len(text) - len(body) <= 2 and _is_word_or_dot(body.rstrip()):
        return True
    body = text.lstrip("?")
    return 1 <= len(text) - len(body) <= 2 and _is_word_or_dot(body)


def _is_magic_assign(line: str) -> bool:
    """``files = !ls`` or ``t = %timeit -o f()``: names, dots, commas and spaces, then ``=``,
    then (after spaces) ``%`` or ``!``. Linear time, as `_is_help_line`."""
    equals = line.find("=")
    if equals <= 0:
        return False
    if not all(ch.isalnum() or ch in "_.," or ch.isspace() for ch in line[:equals]):
        return False
    rest = line[equals + 1 :].lstrip()
    return rest[:1] in ("%", "!") and bool(rest)


def strip_ipython(source: str) -> str | None:
    """Replace IPython-only lines by `pass` (same indentation, same line numbers).

    Line endings are normalised to ``\\n`` first (the parser counts ``\\r`` as one too).
    Linear in the length of the cell. Returns None for a cell magic whose body is not Python
    (``%%bash``, ``%%writefile``...).
    """
    if "\r" in source:
        source = source.replace("\r\n", "\n").replace("\r", "\n")
    lines = source.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or _is_help_line(line) or _is_magic_assign(line):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}pass" if indent else "")
        else:
            out.append(line)
    return "\n".join(out)


# ======================================================================================
# Which statements are kept
# ======================================================================================
def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_safe_value(node: ast.AST) -> bool:
    if _is_literal(node):
        return True
    if isinstance(node, ast.Call) and _dotted(node.func) in SAFE_CALLS:
        return all(_is_literal(arg) for arg in node.args) and all(_is_literal(k.value) for k in node.keywords)
    return False


def _target_names(target: ast.AST) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = [_target_names(t) for t in target.elts]
        return None if any(n is None for n in names) else [n for sub in names for n in sub]
    return None


def _import_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    names = []
    for alias in node.names:
        if alias.name == "*":
            continue
        names.append(alias.asname or alias.name.split(".")[0])
    return names


def kept_names(node: ast.stmt) -> tuple[str, ...] | None:
    """The names a kept top-level statement binds, or None when the statement is dropped."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return tuple(_import_names(node))
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, ast.Assign) and node.value is not None and _is_safe_value(node.value):
        names = [_target_names(t) for t in node.targets]
        if all(n is not None for n in names):
            return tuple(n for sub in names for n in sub)
    if isinstance(node, ast.AnnAssign) and node.value is not None and node.simple and _is_safe_value(node.value):
        return (node.target.id,)
    if isinstance(node, ast.Try) and not getattr(node, "finalbody", None):
        blocks = [node.body, node.orelse] + [handler.body for handler in node.handlers]
        inner = [s for block in blocks for s in block]
        if all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Pass)) for s in inner):
            return tuple(n for s in inner if not isinstance(s, ast.Pass) for n in _import_names(s))
    return None


def _regex_names(source: str) -> tuple[str, ...]:
    """Names a cell that does not parse seems to define (for attributing its syntax error):
    ``def NAME``, ``async def NAME`` and ``class NAME`` at the start of a line. Linear time."""
    names = []
    for line in source.split("\n"):
        if not line.startswith(("def", "class", "async")):
            continue
        words = line.split(None, 2)
        if words[0] == "async" and len(words) > 1 and words[1] == "def":
            words = words[1:]
        if words[0] not in ("def", "class") or len(words) < 2:
            continue
        name = words[1]
        end = 0
        while end < len(name) and (name[end].isalnum() or name[end] == "_"):
            end += 1
        if end and (name[0].isalpha() or name[0] == "_") and name[0].isascii():
            names.append(name[:end])
    return tuple(names)


def _future_flags(tree: ast.Module) -> int:
    import __future__

    flags = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
    return flags


def _cell_cap_problem(source: str, statements: int | None = None) -> str | None:
    """Why a cell is over a cap (`MAX_CELL_CHARS`, `MAX_LINE_CHARS`, `MAX_CELL_STATEMENTS`), else None."""
    if len(source) > MAX_CELL_CHARS:
        return (
            f"it has {len(source):,} characters, more than the {MAX_CELL_CHARS:,} the grader reads in one cell; "
            "split it or move data out of the code"
        )
    longest = max(map(len, source.replace("\r", "\n").split("\n")), default=0)
    if longest > MAX_LINE_CHARS:
        return (
            f"one of its lines has {longest:,} characters, more than the {MAX_LINE_CHARS:,} the grader reads in "
            "one line; break it up"
        )
    if statements is not None and statements > MAX_CELL_STATEMENTS:
        return (
            f"it has {statements:,} top-level statements, more than the {MAX_CELL_STATEMENTS:,} the grader reads "
            "in one cell; split it"
        )
    return None


def extract(notebook_path: str | Path) -> ExtractedNotebook:
    """Extract the definitions of a notebook (see the module docstring).

    Each cell is parsed once; every pass over a cell's text is linear in its length. A cell
    over one of the caps (`MAX_CELL_CHARS`, `MAX_LINE_CHARS`, `MAX_CELL_STATEMENTS`) is not
    parsed, and a warning says why; only cells before `MAX_CELLS` and statements before
    `MAX_STATEMENTS` are kept.

    Raises:
        NotebookError: the file is not a readable nbformat-4 notebook (`read_notebook`).
    """
    path = Path(notebook_path)
    notebook = read_notebook(path)
    result = ExtractedNotebook(path=path)
    cells = notebook["cells"]
    if len(cells) > MAX_CELLS:
        result.warnings.append(f"the notebook has {len(cells):,} cells; only the first {MAX_CELLS:,} were read")
    full = ""  # set when MAX_STATEMENTS is reached: later cells are not parsed
    for index, cell in enumerate(cells[:MAX_CELLS]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        raw = _cell_source(cell)
        code_cell = CodeCell(index=index, grade_id=_grade_id(cell), source=raw)
        result.cells.append(code_cell)
        if full:  # said once, in the warning of the cell that reached the cap
            code_cell.problem, code_cell.names = full, _regex_names(raw)
            continue
        problem = _cell_cap_problem(raw)
        if problem:
            _refuse_cell(result, code_cell, problem)
            continue
        source = strip_ipython(raw)
        if source is None:
            continue
        try:
            tree = ast.parse(source, filename=code_cell.label)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
            line = getattr(error, "lineno", None)
            message = getattr(error, "msg", None) or str(error)
            code_cell.syntax_error = f"line {line}: {message}" if line else message
            code_cell.names = _regex_names(raw)
            result.warnings.append(
                f"{code_cell.label} has a syntax error ({code_cell.syntax_error}); nothing in it was graded"
            )
            continue
        problem = _cell_cap_problem(raw, len(tree.body))
        if problem:
            _refuse_cell(result, code_cell, problem)
            continue
        flags = _future_flags(tree)
        kept: list[tuple[int, ast.stmt, tuple[str, ...]]] = []
        for position, node in enumerate(tree.body):
            names = kept_names(node)
            if names is not None:
                kept.append((position, node, names))
        if len(result.statements) + len(kept) > MAX_STATEMENTS:
            full = (
                f"the notebook has more than {MAX_STATEMENTS:,} definitions, the most the grader reads, "
                "so this cell and the ones after it were not read"
            )
            _refuse_cell(result, code_cell, full)
            code_cell.names = tuple(n for _, _, names in kept for n in names)
            continue
        for position, node, names in kept:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            result.statements.append(
                Statement(
                    index=len(result.statements),
                    cell=index,
                    label=code_cell.label,
                    cell_source=source,
                    node=position,
                    lineno=start,
                    names=names,
                    future_flags=flags,
                    tree=node,
                )
            )
        code_cell.names = tuple(n for _, _, names in kept for n in names)
    return result


def _refuse_cell(result: ExtractedNotebook, cell: CodeCell, problem: str) -> None:
    """Mark a cell over a cap: it costs the tasks defined in it (found by name), with a warning."""
    cell.problem = problem
    cell.names = _regex_names(cell.source)
    result.warnings.append(f"{cell.label} was not graded: {problem}")


def statements_payload(statements: list[Statement]) -> dict:
    """The statements as plain data for the worker: {"cells": {label: source}, "statements": [...]}."""
    cells = {s.label: s.cell_source for s in statements}
    return {
        "cells": cells,
        "statements": [
            {
                "index": s.index,
                "label": s.label,
                "node": s.node,
                "lineno": s.lineno,
                "names": list(s.names),
                "flags": s.future_flags,
            }
            for s in statements
        ],
    }


def imported_modules(statements: list[Statement]) -> set[str]:
    """The modules the kept import statements name (``import a.b`` and ``from a.b import c``: a.b)."""
    modules: set[str] = set()
    for statement in statements:
        for inner in ast.walk(statement.statement_node()):
            if isinstance(inner, ast.Import):
                modules.update(alias.name for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom) and inner.module and not inner.level:
                modules.add(inner.module)
    return modules


def used_names(statement: Statement) -> set[str]:
    """Every global name a statement may read (names loaded anywhere inside it)."""
    node = statement.statement_node()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def needed_statements(statements: list[Statement], roots: set[str]) -> list[Statement]:
    """The statements that bind `roots` and, transitively, the names those statements use."""
    needed, frontier, chosen = set(), set(roots), set()
    while frontier:
        needed |= frontier
        new: set[str] = set()
        for statement in statements:
            if statement.index not in chosen and needed & set(statement.names):
                chosen.add(statement.index)
                new |= used_names(statement)
        frontier = new - needed
    return [s for s in statements if s.index in chosen]


def load_trusted(extracted: ExtractedNotebook, module_name: str = "reference", roots: set[str] | None = None) -> dict:
    """Execute the kept statements of a TRUSTED notebook (the reference) in a fresh namespace.

    Only for notebooks from ``solutions/``; a submission's statements run only in the worker.
    With `roots`, only the statements those names depend on run (the grader does not need
    the plotting or training imports of a notebook).

    Raises:
        RuntimeError: a statement failed (names the cell and the error).
    """
    import linecache
    import sys
    import types

    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    statements = extracted.statements if roots is None else needed_statements(extracted.statements, roots)
    for statement in statements:
        filename = f"<{statement.label}>"
        linecache.cache[filename] = (len(statement.cell_source), None, statement.cell_source.splitlines(True), filename)
        code = compile_tree(statement.statement_node(), statement.label, statement.future_flags)
        try:
            exec(code, module.__dict__)  # noqa: S102 - trusted solution notebook
        except Exception as error:
            raise RuntimeError(
                f"{extracted.path.name}, {statement.label} line {statement.lineno}: {type(error).__name__}: {error}"
            ) from error
    return module.__dict__
