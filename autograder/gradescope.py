"""Gradescope: build an assignment's autograder zip, and run it inside Gradescope's image.

Building (on the instructor's machine)::

    python -m autograder gradescope --assignment simclr_homework [--test-split PATH]
                                    [--course-config my_course.toml] [--output dist/]
    python -m autograder.gradescope build --assignment ssl_methods        # the same, directly

writes ``dist/<assignment>-autograder.zip``, laid out as Gradescope's specification asks
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): ``setup.sh`` and
``run_autograder`` at the root, next to everything they need, which Gradescope unpacks into
``/autograder/source``:

    setup.sh, run_autograder         from autograder/gradescope_files/ (assignment filled in)
    requirements-grader.txt          the pins setup.sh installs (autograder/requirements-grader.txt:
                                     wheels for CPython 3.10 to 3.13, `autograder.wheels`)
    helpers/                         the package the reference and the students' code import
    autograder/                      the grader, its graded suite, course.toml (the rubric)
    solutions/<assignment>.ipynb     the reference (only this assignment's)
    data/cifar10-test.pt             simclr_homework with --test-split: the test split, embedded
    BUILD.json                       what was built: assignment, rubric, test split, commit

Without ``--test-split``, the homework's ``setup.sh`` downloads the CIFAR-10 test split once
when Gradescope builds the image, so grading never downloads. ``--test-split`` embeds a local
copy instead: a prepared ``.pt`` file (``python -m autograder.checkpoint_grading prepare``)
or any source `helpers.data.load_cifar10` reads (e.g. ``../shared/data/cifar10-jpeg``).
The zip is reproducible: the same inputs give the same bytes (fixed timestamps and order).

Beside the zip, ``<assignment>-autograder-docker/`` holds a ``Dockerfile`` for Gradescope's
"Manual Docker configuration" and ``source/``, the zip's files: the image it builds (from
``gradescope/autograder-base``) runs the same ``setup.sh``, so it has the same contents and
passes the same checks. ``setup.sh`` installs into ``/opt/ssl-lab/venv`` (`IMAGE_VENV`) with
the image's ``python3`` (CPython 3.10 to 3.13: Ubuntu 22.04, Gradescope's default base image,
has 3.10) and, as its last step, runs ``python -m autograder check-sandbox``, so an image
where the sandbox cannot isolate a submission fails to build.

Running (``run_autograder`` calls ``python -m autograder.gradescope run``, as root):

1. lock the tree down: ``/autograder`` and its ``source``, ``submission`` and
   ``submission_metadata.json`` become readable by root only, ``results`` root-owned and not
   writable by others, so the sandbox user (`autograder.sandbox.SANDBOX_USER`) that runs the
   students' code can neither read the grader, the reference or the test split, nor write
   the results;
2. grade ``/autograder/submission`` with `autograder.grading.grade` in this (root) process,
   which writes ``/autograder/results/results.json`` itself; ``/autograder/submission_metadata.json``
   is named to the checkpoint tests (``$SSL_LAB_SUBMISSION_METADATA``) for the course's rate
   limit of checkpoint evaluations (`autograder.checkpoint.rate_limit`; off by default);
3. check the results against Gradescope's format (``gradescope_files/results.schema.json``)
   and print the score table to stdout (which Gradescope shows to instructors only);
4. if the grader itself crashed, still write a valid ``results.json`` that says so (score 0,
   "not your fault"), so the student never sees Gradescope's bare "autograder failed".

The root (``/autograder``) is ``$SSL_LAB_GRADESCOPE_ROOT`` when set, so the tests run the real
``run_autograder`` on a temporary folder laid out like Gradescope's.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FILES = Path(__file__).resolve().parent / "gradescope_files"
RESULTS_SCHEMA = FILES / "results.schema.json"
ENV_ROOT = "SSL_LAB_GRADESCOPE_ROOT"
DEFAULT_ROOT = Path("/autograder")
#: The earliest timestamp a zip can hold: every member gets it, so builds are reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
_PACKAGE_SUFFIXES = {".py", ".toml", ".ini", ".json"}
#: The grading image's virtual environment: outside /root and /autograder, owned by root,
#: readable by the sandbox user. setup.sh creates it, run_autograder runs its python.
IMAGE_VENV = "/opt/ssl-lab/venv"
GRADER_REQUIREMENTS = Path(__file__).resolve().with_name("requirements-grader.txt")


class BuildError(ValueError):
    """The zip cannot be built as asked (the message says what to do)."""


# ======================================================================================
# Building the zip
# ======================================================================================
def _assignments() -> dict:
    from autograder.assignments import ASSIGNMENTS

    return ASSIGNMENTS


def _package_files(root: Path, package: str) -> list[tuple[Path, str]]:
    """(file, name in the zip) for the sources of `package` (no caches, no templates)."""
    folder = root / package
    if not (folder / "__init__.py").is_file():
        raise BuildError(f"{folder}/__init__.py is missing: the zip needs the {package} package")
    members = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or _SKIP_PARTS & set(relative.parts) or path.suffix not in _PACKAGE_SUFFIXES:
            continue
        members.append((path, relative.as_posix()))
    return members


def _template(name: str, assignment: str, needs_test_split: bool) -> bytes:
    from autograder.sandbox import SANDBOX_USER
    from autograder.wheels import GRADER_PYTHONS

    text = (FILES / name).read_text()
    for key, value in (
        ("@ASSIGNMENT@", assignment),
        ("@NEEDS_TEST_SPLIT@", "1" if needs_test_split else "0"),
        ("@SANDBOX_USER@", SANDBOX_USER),
        ("@VENV@", IMAGE_VENV),
        ("@PYTHONS@", " ".join(GRADER_PYTHONS)),
    ):
        text = text.replace(key, value)
    leftover = [part.split("@")[0] for part in text.split("@")[1::2] if part.isupper()]
    if leftover:
        raise BuildError(f"{name}: unfilled placeholders {leftover}")
    return text.encode()


def _git_commit(root: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _embedded_test_split(test_split: Path, rubric, workdir: Path) -> tuple[Path, dict]:
    """A prepared test split file for the zip, from a prepared file or any CIFAR-10 source."""
    from autograder.checkpoint.split import TestSplitUnavailable, load_test_split_file, prepare_test_split
    from helpers.data import DataSourceError

    test_split = Path(test_split).expanduser()
    if not test_split.exists():
        raise BuildError(f"--test-split {test_split} does not exist")
    try:
        if test_split.is_file() and test_split.suffix == ".pt":
            prepared = test_split
        else:
            prepared = prepare_test_split(
                workdir / "cifar10-test.pt",
                source=test_split,
                download=False,
                download_root=workdir / "decode",
                verbose=False,
            )
        split = load_test_split_file(prepared)
    except (DataSourceError, TestSplitUnavailable) as error:
        raise BuildError(f"--test-split {test_split}: {error}") from None
    if len(split) != rubric.test_images:
        raise BuildError(
            f"--test-split {test_split} has {len(split):,} images; the course configuration expects "
            f"{rubric.test_images:,} (test_images): use the full CIFAR-10 test split"
        )
    digest = hashlib.sha256(prepared.read_bytes()).hexdigest()
    return prepared, {
        "embedded": True,
        "images": len(split),
        "source": split.source.split(", prepared copy ")[0],
        "file_sha256": digest,
    }


def build_zip(
    assignment: str,
    output: str | os.PathLike | None = None,
    *,
    test_split: str | os.PathLike | None = None,
    course_config: str | os.PathLike | None = None,
    project_root: str | os.PathLike | None = None,
    grader_requirements: str | os.PathLike | None = None,
) -> Path:
    """Write ``<output>/<assignment>-autograder.zip`` (see the module docstring).

    Args:
        assignment: ``simclr_homework`` or ``ssl_methods``.
        output: the folder to write to (default ``<project>/dist``).
        test_split: simclr_homework only: a prepared ``.pt`` split or a CIFAR-10 source to
            embed as ``data/cifar10-test.pt`` (default: ``setup.sh`` downloads it).
        course_config: a ``course.toml`` to ship instead of ``autograder/course.toml``.
        project_root: the project to pack (default: this one).
        grader_requirements: the requirements file to ship as ``requirements-grader.txt``
            (default: ``autograder/requirements-grader.txt``; the build rehearsal swaps the
            torch pins for the CPU build it has on disk).

    Returns:
        The path of the zip.

    Raises:
        BuildError: unknown assignment, a missing file, a test split for an assignment
            without a checkpoint, or a test split / course configuration that cannot be used.
    """
    from autograder.checkpoint.rubric import CourseConfigError, load_course_config

    assignments = _assignments()
    if assignment not in assignments:
        raise BuildError(f"unknown assignment {assignment!r}; choose one of {', '.join(assignments)}")
    spec = assignments[assignment]
    needs_test_split = "checkpoint" in spec.tasks
    root = Path(project_root) if project_root else PROJECT_ROOT
    if test_split is not None and not needs_test_split:
        raise BuildError(f"{assignment} grades no checkpoint, so it needs no test split; leave out --test-split")
    config_path = Path(course_config) if course_config else root / "autograder" / "course.toml"
    try:
        rubric = load_course_config(config_path)
    except CourseConfigError as error:
        raise BuildError(str(error)) from None
    notebook = root / "solutions" / spec.notebook
    requirements = Path(grader_requirements) if grader_requirements else root / "autograder" / GRADER_REQUIREMENTS.name
    for needed in (notebook, requirements):
        if not needed.is_file():
            raise BuildError(f"{needed} is missing: the zip needs it")

    out_dir = Path(output) if output else root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{assignment}-autograder.zip"
    with tempfile.TemporaryDirectory() as workdir:
        from autograder.wheels import GRADER_PYTHONS

        build_info = {
            "assignment": assignment,
            "notebook": spec.notebook,
            "built_with": "python -m autograder gradescope",
            "git_commit": _git_commit(root),
            "pythons": list(GRADER_PYTHONS),
            "venv": IMAGE_VENV,
        }
        members: list[tuple[Path | bytes, str, int]] = [
            (_template("setup.sh", assignment, needs_test_split), "setup.sh", 0o755),
            (_template("run_autograder", assignment, needs_test_split), "run_autograder", 0o755),
            (requirements, "requirements-grader.txt", 0o644),
            (notebook, f"solutions/{spec.notebook}", 0o644),
        ]
        members += [(path, name, 0o644) for path, name in _package_files(root, "helpers")]
        members += [
            (path, name, 0o644) for path, name in _package_files(root, "autograder") if name != "autograder/course.toml"
        ]
        members.append((config_path.read_bytes(), "autograder/course.toml", 0o644))
        if needs_test_split:
            build_info["checkpoint_rubric"] = dataclasses.asdict(rubric)
            if test_split is not None:
                prepared, info = _embedded_test_split(Path(test_split), rubric, Path(workdir))
                members.append((prepared, "data/cifar10-test.pt", 0o644))
                build_info["test_split"] = info
            else:
                build_info["test_split"] = {
                    "embedded": False,
                    "how": "setup.sh downloads it with torchvision and stores data/cifar10-test.pt in the image",
                }
        members.append((json.dumps(build_info, indent=1, sort_keys=True).encode() + b"\n", "BUILD.json", 0o644))
        names = [name for _, name, _ in members]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise BuildError(f"duplicate members {sorted(duplicates)}")
        temporary = target.with_name(f".{target.name}.tmp")
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for content, name, mode in sorted(members, key=lambda member: member[1]):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.create_system = 3  # Unix, so the permission bits are honoured when unpacked
                data = content if isinstance(content, bytes) else Path(content).read_bytes()
                archive.writestr(info, data)
        os.replace(temporary, target)
    return target


DOCKERFILE = """\
# Gradescope "Manual Docker configuration" for the SSL Lab autograder of {assignment}.
# Generated by `python -m autograder gradescope` beside {zip_name}: source/ holds exactly the
# zip's files, and the build runs the same setup.sh, with the same checks, as a zip upload
# (it fails when the sandbox cannot isolate a submission on the image). From this folder:
#     docker build -t YOUR_DOCKERHUB_USER/ssl-lab-{assignment}:1 .
#     docker push YOUR_DOCKERHUB_USER/ssl-lab-{assignment}:1
# then name that image on the assignment's Configure Autograder page (Manual Docker
# configuration). Gradescope requires an image built on one of its base images; the tag
# `latest` is its default base image (Ubuntu 22.04), another tag can be chosen with
# `--build-arg TAG=...`. setup.sh accepts any base image whose python3 is CPython {pythons}.
ARG BASE_REPO=gradescope/autograder-base
ARG TAG=latest
FROM ${{BASE_REPO}}:${{TAG}}

ADD source /autograder/source
RUN cp /autograder/source/run_autograder /autograder/run_autograder \\
    && chmod 755 /autograder/run_autograder /autograder/source/setup.sh
RUN apt-get update \\
    && bash /autograder/source/setup.sh \\
    && apt-get clean && rm -rf /var/lib/apt/lists/*

# The base image defines CMD and ENTRYPOINT (Gradescope's harness); they are not redefined here.
"""


def write_docker_context(archive: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write ``<assignment>-autograder-docker/`` beside `archive`: ``Dockerfile`` and ``source/``.

    ``source/`` is the zip's content, with its permission bits, so the image holds what a zip
    upload would; the Dockerfile (`DOCKERFILE`) runs the same ``setup.sh``. An existing
    folder of that name is replaced.

    Returns:
        The folder.
    """
    import shutil

    from autograder.wheels import GRADER_PYTHONS

    archive = Path(archive)
    with zipfile.ZipFile(archive) as opened:
        assignment = json.loads(opened.read("BUILD.json"))["assignment"]
        folder = Path(output) if output else archive.with_name(f"{assignment}-autograder-docker")
        if folder.exists():
            shutil.rmtree(folder)
        source = folder / "source"
        source.mkdir(parents=True)
        for info in opened.infolist():
            target = source / info.filename
            if info.is_dir() or not target.resolve().is_relative_to(source.resolve()):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(opened.read(info))
            target.chmod((info.external_attr >> 16) & 0o777 or 0o644)
    pythons = f"{GRADER_PYTHONS[0]} to {GRADER_PYTHONS[-1]}"
    (folder / "Dockerfile").write_text(DOCKERFILE.format(assignment=assignment, zip_name=archive.name, pythons=pythons))
    return folder


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m autograder gradescope`` (for `autograder.cli`)."""
    parser.add_argument(
        "--assignment", required=True, help="which assignment's autograder to build: simclr_homework or ssl_methods"
    )
    parser.add_argument(
        "--test-split",
        type=Path,
        help="simclr_homework: embed this CIFAR-10 test split (a prepared .pt file or a folder / "
        ".tar.gz of test/<class>/*.jpg) instead of letting setup.sh download it",
    )
    parser.add_argument(
        "--course-config",
        type=Path,
        help="a course.toml with your thresholds and points (default: autograder/course.toml)",
    )
    parser.add_argument("--output", type=Path, help="folder to write the zip to (default: dist/)")


def cmd_build(args: argparse.Namespace) -> int:
    """``python -m autograder gradescope ...``: build the zip and say what to do with it."""
    try:
        path = build_zip(args.assignment, args.output, test_split=args.test_split, course_config=args.course_config)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 64
    with zipfile.ZipFile(path) as archive:
        info = json.loads(archive.read("BUILD.json"))
    size = path.stat().st_size / 2**20
    docker = write_docker_context(path)
    print(f"wrote {path} ({size:.1f} MiB)")
    print(f"wrote {docker}/Dockerfile and {docker.name}/source/ (Manual Docker configuration: the same files)")
    split = info.get("test_split")
    if split:
        print(
            "test split: "
            + (
                f"embedded ({split['images']:,} images from {split['source']})"
                if split["embedded"]
                else "downloaded by setup.sh when Gradescope builds the image"
            )
        )
    if "checkpoint_rubric" in info:
        from autograder.checkpoint.rubric import load_course_config

        print(load_course_config(args.course_config or PROJECT_ROOT / "autograder" / "course.toml").summary())
    print(
        "Upload the zip on the assignment's 'Configure Autograder' page (base image: Ubuntu 22.04, the default); "
        "see README.md, 'For instructors'."
    )
    return 0


# ======================================================================================
# Running inside Gradescope's image
# ======================================================================================
def lock_down(root: Path) -> list[str]:
    """Make the grading tree private to root (only when running as root); returns what changed.

    ``root``, ``source``, ``submission`` and ``submission_metadata.json``: no access for group
    and others; ``results``: root's, ``rwxr-xr-x``. The grader (root) needs nothing else; the
    sandbox gets its own copy of `helpers` in a temporary folder.
    """
    if os.geteuid() != 0:
        return []
    changed = []
    for path, mode in (
        (root, 0o700),
        (root / "source", 0o700),
        (root / "submission", 0o700),
        (root / "submission_metadata.json", 0o600),
        (root / "results", 0o755),
    ):
        try:
            if path.is_symlink():
                continue
            if path.exists():
                if path == root / "results":
                    os.chown(path, 0, 0)
                path.chmod(mode)
                changed.append(f"{path} {mode:o}")
        except OSError as error:
            changed.append(f"{path}: {error.strerror or error}")
    return changed


def validate_results(results: dict) -> list[str]:
    """Problems of a results dictionary against Gradescope's format ([] when valid)."""
    problems = []
    try:
        text = json.dumps(results, allow_nan=False)
    except ValueError as error:
        return [f"not valid JSON: {error}"]
    if len(text.encode()) > 1_000_000:
        problems.append(f"results.json is {len(text.encode()):,} bytes; keep it under 1 MB")
    try:
        import jsonschema
    except ImportError:
        return problems + ["jsonschema is not installed: format not checked"]
    schema = json.loads(RESULTS_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(results), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.path) or "(top level)"
        problems.append(f"{where}: {error.message}")
    return problems


def _fallback_results(message: str, seconds: float) -> dict:
    return {
        "score": 0.0,
        "execution_time": round(seconds, 2),
        "output": message,
        "output_format": "text",
        "stdout_visibility": "hidden",
        "tests": [],
        "extra_data": {"grader_error": True},
    }


def run(root: str | os.PathLike, assignment: str) -> int:
    """Grade ``<root>/submission`` for `assignment` and write ``<root>/results/results.json``.

    Returns:
        0 whenever a results.json was written (Gradescope reads it either way).
    """
    from autograder.results import write_json_atomic

    started = time.monotonic()
    root = Path(root)
    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    for line in lock_down(root):
        print(f"lock-down: {line}", flush=True)
    try:
        from autograder import grading
        from autograder.checkpoint.rate_limit import metadata_named

        options = grading.GradeOptions(
            assignment=assignment, results=results_path, progress=lambda text: print(text, flush=True)
        )
        with metadata_named(root / "submission_metadata.json"):
            outcome = grading.grade(root / "submission", options)
        results = outcome.results
        print("\n" + grading.summary_table(results), flush=True)
        print(f"score {results['score']:g} ({time.monotonic() - started:.1f} s); exit code {outcome.exit_code}")
    except Exception:  # noqa: BLE001 - whatever broke, the student gets a valid results.json
        trace = traceback.format_exc()
        print(trace, flush=True)
        results = _fallback_results(
            "The autograder failed before it could grade your submission; this is not your fault. Please tell "
            "your instructor (the details are in the autograder's log).",
            time.monotonic() - started,
        )
        write_json_atomic(results, results_path)
    problems = validate_results(json.loads(results_path.read_text()))
    for problem in problems:
        print(f"results.json format: {problem}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build dist/<assignment>-autograder.zip")
    add_build_arguments(build)
    build.set_defaults(handler=cmd_build)
    run_parser = commands.add_parser("run", help="grade inside Gradescope's image (called by run_autograder)")
    run_parser.add_argument("--root", type=Path, default=Path(os.environ.get(ENV_ROOT) or DEFAULT_ROOT))
    run_parser.add_argument("--assignment", required=True)
    run_parser.set_defaults(handler=lambda args: run(args.root, args.assignment))
    args = parser.parse_args(argv)
    return int(args.handler(args))


__all__ = [
    "BuildError",
    "IMAGE_VENV",
    "add_build_arguments",
    "build_zip",
    "cmd_build",
    "lock_down",
    "main",
    "run",
    "validate_results",
    "write_docker_context",
]

if __name__ == "__main__":
    raise SystemExit(main())
