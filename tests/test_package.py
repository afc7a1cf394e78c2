"""The helpers package as a whole: its exports, and that it holds no graded answer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import helpers

HELPERS_DIR = Path(helpers.__file__).parent

# Every name a graded task of DESIGN.md defines. The notebooks are given helpers; if helpers
# defined one of these, a student could import the answer.
GRADED_NAMES = {
    "extract_features_and_labels", "run_knn_probe", "run_linear_probe", "SimCLRModel",
    "nt_xent", "simclr_train_step", "BYOLModel", "EMA", "byol_train_step", "barlow_loss",
    "barlow_train_step", "finetune_train_step", "evaluate",
}


@pytest.mark.parametrize("name", helpers.__all__)
def test_every_export_resolves(name):
    """Does `from helpers import <name>` work for every advertised name?"""
    assert getattr(helpers, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nt_xent'"):
        helpers.nt_xent  # noqa: B018


@pytest.mark.parametrize("path", sorted(HELPERS_DIR.rglob("*.py")),
                         ids=lambda p: p.relative_to(HELPERS_DIR).as_posix())
def test_no_graded_task_is_defined_in_helpers(path):
    """No module-level function or class of helpers has a graded task's name."""
    tree = ast.parse(path.read_text())
    defined = {node.name for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    defined |= {target.id for node in tree.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert not defined & GRADED_NAMES, (
        f"{path.name} defines {sorted(defined & GRADED_NAMES)}, the answer to a graded task; "
        "helpers must only hold what the notebooks are given")


@pytest.mark.parametrize("path", sorted(HELPERS_DIR.rglob("*.py")),
                         ids=lambda p: p.relative_to(HELPERS_DIR).as_posix())
def test_helpers_never_import_solutions_or_autograder(path):
    """helpers ships to students (and into the sandbox): no module of it, in any subpackage,
    may import the reference solutions or the grader."""
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.split(".")[0] in {"solutions", "autograder"} for name in imported), imported
