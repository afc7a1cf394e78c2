"""Compiling the statements extraction kept: the same code in the grader and in the worker.

`autograder.extract` decides which top-level statements of a notebook's cells define
something; the grader compiles the reference's with `compile_tree`, and the worker compiles
the submission's, one at a time, with `compile_node` from the cell's text and the
statement's position. Both go through this module, so they run exactly the statements
extraction kept, even when a kept and a dropped statement share a line.

Copied into the sandbox with the rest of `autograder.in_sandbox`: standard library only.
"""

from __future__ import annotations

import ast
import functools
from typing import Any


@functools.lru_cache(maxsize=4)
def parse_cell(source: str) -> ast.Module:
    """A cell's syntax tree, parsed once for all its statements (the worker compiles one
    statement at a time, in notebook order, so a cache of a few cells is enough)."""
    return ast.parse(source)


def compile_node(cell_source: str, node: int, label: str, flags: int = 0) -> Any:
    """Compile the `node`-th top-level statement of a cell (line numbers as in the cell).

    Shared by the grader (reference) and the worker (submission), so both run exactly the
    statements extraction kept, even when a kept and a dropped statement share a line. The
    cell is parsed once for all its statements (`parse_cell`), not once per statement.
    """
    tree = parse_cell(cell_source)
    return compile_tree(tree.body[node], label, flags)


def compile_tree(node: ast.stmt, label: str, flags: int = 0) -> Any:
    """Compile one parsed top-level statement as a module of its own (`compile_node`)."""
    module = ast.Module(body=[node], type_ignores=[])
    return compile(module, f"<{label}>", "exec", flags=flags, dont_inherit=True)
