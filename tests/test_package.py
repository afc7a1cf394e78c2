"""The helpers package as a whole: its exports, that it holds no graded answer, and that
`pip install` (from a checkout or from the student zip) makes `import helpers` work."""

from __future__ import annotations

import ast
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import helpers
from autograder.contract import GRADED_NAMES  # the notebooks are given helpers: none may be an answer

HELPERS_DIR = Path(helpers.__file__).parent


@pytest.mark.parametrize("name", helpers.__all__)
def test_every_export_resolves(name):
    """Does `from helpers import <name>` work for every advertised name?"""
    assert getattr(helpers, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nt_xent'"):
        helpers.nt_xent  # noqa: B018


@pytest.mark.parametrize("path", sorted(HELPERS_DIR.rglob("*.py")), ids=lambda p: p.relative_to(HELPERS_DIR).as_posix())
def test_no_graded_task_is_defined_in_helpers(path):
    """No module-level function or class of helpers has a graded task's name."""
    tree = ast.parse(path.read_text())
    defined = {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    defined |= {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert not defined & GRADED_NAMES, (
        f"{path.name} defines {sorted(defined & GRADED_NAMES)}, the answer to a graded task; "
        "helpers must only hold what the notebooks are given"
    )


# ----------------------------------------------------------------------------- installing

PROJECT_ROOT = HELPERS_DIR.parent


def _fresh_venv(folder: Path) -> Path:
    """A virtual environment without pip or packages of its own that sees this environment's
    site-packages (torch, pip, setuptools: nothing is downloaded), but not the project."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "this_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


#: Every module of the checkout's helpers, subpackages included ("helpers.data.loading", ...).
HELPERS_MODULES = sorted(
    ".".join(path.relative_to(HELPERS_DIR.parent).with_suffix("").parts).removesuffix(".__init__")
    for path in HELPERS_DIR.rglob("*.py")
)


def _where_helpers(python: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Where `python` imports helpers from, once every module of it imported (so a subpackage
    left out of the installed package fails), and whether it can find the grader."""
    return _run(
        python,
        "-c",
        "import helpers, importlib, importlib.util; "
        f"[importlib.import_module(name) for name in {HELPERS_MODULES!r}]; "
        "print(helpers.__file__); print(importlib.util.find_spec('autograder') is None)",
        cwd=cwd,
    )


@pytest.mark.slow  # about 13-16 s each on a shared 2-core CPU (a venv, a build, torch imported)
@pytest.mark.parametrize("source", ["checkout", "student zip"])
def test_pip_install_makes_helpers_importable(source, tmp_path):
    """Does `pip install -e <checkout>` (or `pip install ./ssl-lab` from the student zip) make
    `import helpers` and every module of it (subpackages too) work from any folder, and install
    helpers only (no autograder)?"""
    pytest.importorskip("setuptools")  # the build backend, used without network (--no-build-isolation)
    python = _fresh_venv(tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = _where_helpers(python, elsewhere)
    assert before.returncode != 0 and "No module named 'helpers'" in before.stderr, "helpers importable before install"
    if source == "checkout":
        target, editable = PROJECT_ROOT, ["-e"]
    else:
        from autograder.release import ZIP_FOLDER, build_student_zip

        with zipfile.ZipFile(build_student_zip(PROJECT_ROOT, output=tmp_path / "ssl-lab-student.zip")) as zf:
            zf.extractall(tmp_path / "unzipped")
        target, editable = tmp_path / "unzipped" / ZIP_FOLDER, []
    installed = _run(
        python,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        *editable,
        str(target),
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    after = _where_helpers(python, elsewhere)
    assert after.returncode == 0, after.stderr[-2000:]
    location, no_autograder = after.stdout.split()
    if source == "checkout":
        assert Path(location) == HELPERS_DIR / "__init__.py"  # editable: the checkout's own files
    else:
        assert Path(location).is_relative_to(tmp_path / "venv")  # copied into the environment
    assert no_autograder == "True", "the package must install helpers only, never the grader"


@pytest.mark.parametrize("path", sorted(HELPERS_DIR.rglob("*.py")), ids=lambda p: p.relative_to(HELPERS_DIR).as_posix())
def test_helpers_never_import_solutions_or_autograder(path):
    """helpers ships to students (and into the sandbox): no module of it, in any subpackage,
    may import the reference solutions or the grader."""
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.split(".")[0] in {"solutions", "autograder"} for name in imported), imported
