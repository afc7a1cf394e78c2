"""Tests of autograder.gradescope: the autograder zip, its setup.sh, and run_autograder on
sample submissions in a temporary root laid out like Gradescope's.

Gradescope's results.json format is checked against a JSON Schema written from its
specification (autograder/gradescope_files/results.schema.json). The end-to-end runs use
the simclr_homework zip (the assignment with both unit tests and a checkpoint) with an
embedded calibration test split of 200 images and a course configuration that expects
that many, so the checkpoint's accuracy is known (see tests/test_checkpoint_grading.py).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
from checkpoint_fixtures import calibration_classifier, calibration_test_split

from autograder import gradescope
from autograder.checkpoint.split import save_test_split
from autograder.gradescope import RESULTS_SCHEMA, BuildError, build_zip, validate_results
from autograder.tests.tasks import unit_points
from helpers.checkpoint import save_classifier

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads(RESULTS_SCHEMA.read_text())
REQUIREMENTS = (PROJECT_ROOT / "autograder" / "requirements-grader.txt").read_text()
UNIT_POINTS = sum(unit_points("simclr_homework").values())  # the points markers of its unit tests
SPLIT_IMAGES = 200


# ======================================================================================
# Helpers
# ======================================================================================
def pinned(package: str) -> str:
    return next(line for line in REQUIREMENTS.splitlines() if line.startswith(f"{package}=="))


def unpack(archive: Path, root: Path) -> Path:
    """Lay out a Gradescope root: source/ (the zip, with its permission bits), submission/, results/."""
    source = root / "source"
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(opened.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def assert_valid_results(results: dict) -> None:
    """results.json follows Gradescope's format, and its totals add up."""
    jsonschema.Draft202012Validator(SCHEMA).validate(results)
    assert validate_results(results) == []
    assert results["score"] == pytest.approx(sum(test["score"] for test in results["tests"]))
    numbers = [test["number"] for test in results["tests"]]
    assert len(numbers) == len(set(numbers))


def run_autograder(root: Path, python: str = sys.executable, timeout: float = 420) -> subprocess.Popen:
    """Start <root>/source/run_autograder as Gradescope would (working directory <root>)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SSL_LAB_", "PYTEST_"))}
    env.update(SSL_LAB_GRADESCOPE_ROOT=str(root), SSL_LAB_PYTHON=python)
    log = open(root.parent / f"{root.name}.log", "w")
    return subprocess.Popen(
        [str(root / "source" / "run_autograder")], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def finish(process: subprocess.Popen, root: Path, timeout: float = 420) -> dict:
    code = process.wait(timeout=timeout)
    log = (root.parent / f"{root.name}.log").read_text()
    assert code == 0, log[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    return results


def with_cell(notebook: Path, grade_id: str, source: str) -> dict:
    """The notebook with the code of the cell `grade_id` replaced."""
    document = json.loads(notebook.read_text())
    cells = [c for c in document["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1, grade_id
    cells[0]["source"] = source
    return document


# ======================================================================================
# Fixtures
# ======================================================================================
@pytest.fixture(scope="module")
def small_split(tmp_path_factory) -> Path:
    """A 200-image calibration split: the calibration classifier gets 180 right (90 %)."""
    split = calibration_test_split(SPLIT_IMAGES, 180)
    return save_test_split(
        split.images, split.labels, tmp_path_factory.mktemp("split") / "cifar10-test.pt", split.source
    )


@pytest.fixture(scope="module")
def small_course(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("course") / "course.toml"
    path.write_text(f"[checkpoint]\ntest_images = {SPLIT_IMAGES}\nbatch_size = 50\nthreads = 1\n")
    return path


@pytest.fixture(scope="module")
def homework_zip(tmp_path_factory, small_split, small_course) -> Path:
    return build_zip(
        "simclr_homework", tmp_path_factory.mktemp("dist"), test_split=small_split, course_config=small_course
    )


@pytest.fixture(scope="module")
def methods_zip(tmp_path_factory) -> Path:
    return build_zip("ssl_methods", tmp_path_factory.mktemp("dist"))


# ======================================================================================
# The zip
# ======================================================================================
def test_schema_is_a_valid_json_schema_and_rejects_what_gradescope_would():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    good = {
        "score": 3.0,
        "execution_time": 1.5,
        "output": "x",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": "a",
                "score": 1.0,
                "max_score": 1.0,
                "status": "passed",
                "visibility": "visible",
                "tags": ["t"],
                "number": "1.1",
                "output": "ok",
                "output_format": "text",
            }
        ],
        "leaderboard": [{"name": "Accuracy", "value": 0.9}, {"name": "Time", "value": 15.1, "order": "asc"}],
    }
    jsonschema.validate(good, SCHEMA)
    for bad in (
        {"tests": [{"name": "no score anywhere"}]},
        {"score": 1, "tests": [{"score": 1, "status": "ok"}]},
        {"score": 1, "tests": [{"score": 1, "visibility": "public"}]},
        {"score": 1, "stdout_visibility": "always"},
        {"score": "10"},
        {"score": 1, "tets": []},
        {"score": 1, "leaderboard": [{"name": "Time", "value": 1, "order": "up"}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)
    assert (
        validate_results({"score": float("nan")}) and "not valid JSON" in validate_results({"score": float("nan")})[0]
    )


@pytest.mark.parametrize("assignment", ["simclr_homework", "ssl_methods"])
def test_zip_layout(assignment, homework_zip, methods_zip, small_course):
    """setup.sh and run_autograder sit at the root (executable), next to what they need;
    nothing else of the project (tests, other solutions, caches, git) is packed."""
    archive = homework_zip if assignment == "simclr_homework" else methods_zip
    assert archive.name == f"{assignment}-autograder.zip"
    with zipfile.ZipFile(archive) as opened:
        infos = {info.filename: info for info in opened.infolist()}
        names = set(infos)
        for script in ("setup.sh", "run_autograder"):
            assert (infos[script].external_attr >> 16) & 0o777 == 0o755, script
        assert {
            "requirements-grader.txt",
            "BUILD.json",
            "autograder/course.toml",
            "autograder/__main__.py",
            "autograder/tests/test_checkpoint.py",
            "helpers/checkpoint.py",
            f"solutions/{assignment}.ipynb",
        } <= names
        assert not [n for n in names if n.startswith(("tests/", "notebooks/", ".git", "dist/", ".venv"))]
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert [n for n in names if n.startswith("solutions/")] == [f"solutions/{assignment}.ipynb"]
        info = json.loads(opened.read("BUILD.json"))
        setup = opened.read("setup.sh").decode()
        run = opened.read("run_autograder").decode()
        assert opened.read("requirements-grader.txt").decode() == REQUIREMENTS
        assert "requirements.txt" not in names  # the students' pins need Python 3.11+: not the image's
        if assignment == "simclr_homework":
            assert "data/cifar10-test.pt" in names
            assert opened.read("autograder/course.toml") == small_course.read_bytes()
            assert info["test_split"]["embedded"] and info["test_split"]["images"] == SPLIT_IMAGES
            assert 'NEEDS_TEST_SPLIT="1"' in setup
        else:
            assert not [n for n in names if n.startswith("data/")]
            assert 'NEEDS_TEST_SPLIT="0"' in setup and "test_split" not in info
    assert info["assignment"] == assignment
    assert "@" not in setup.replace("$@", "").replace("[@]", "") and f'--assignment "{assignment}"' in run
    assert "https://download.pytorch.org/whl/cpu" in setup and "requirements-grader.txt" in setup
    assert 'VENV="${SSL_LAB_VENV:-/opt/ssl-lab/venv}"' in setup and 'PYTHONS="3.10 3.11 3.12 3.13"' in setup
    assert "/opt/ssl-lab/venv/bin/python" in run and info["pythons"] == ["3.10", "3.11", "3.12", "3.13"]
    # The sandbox check is setup.sh's last command.
    commands = [line for line in setup.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-2].startswith('"$PY" -m autograder check-sandbox ||') and commands[-1] == 'echo "== set-up done"'
    for script in (setup, run):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_docker_context_holds_the_zip_and_runs_its_setup(methods_zip, tmp_path):
    """Beside the zip: a Dockerfile on Gradescope's base image that copies run_autograder to
    /autograder and runs the same setup.sh, and source/ with exactly the zip's files and modes."""
    folder = gradescope.write_docker_context(methods_zip, tmp_path / "docker")
    dockerfile = (folder / "Dockerfile").read_text()
    assert "ARG BASE_REPO=gradescope/autograder-base" in dockerfile and "FROM ${BASE_REPO}:${TAG}" in dockerfile
    assert "ADD source /autograder/source" in dockerfile
    assert "cp /autograder/source/run_autograder /autograder/run_autograder" in dockerfile
    assert "bash /autograder/source/setup.sh" in dockerfile and "CMD" not in dockerfile.replace("CMD and", "")
    with zipfile.ZipFile(methods_zip) as opened:
        for info in opened.infolist():
            path = folder / "source" / info.filename
            assert path.read_bytes() == opened.read(info), info.filename
            assert stat.S_IMODE(path.stat().st_mode) == (info.external_attr >> 16) & 0o777, info.filename
        assert sorted(
            p.relative_to(folder / "source").as_posix() for p in (folder / "source").rglob("*") if p.is_file()
        ) == sorted(opened.namelist())


def test_build_is_reproducible(methods_zip, tmp_path):
    again = build_zip("ssl_methods", tmp_path)
    assert again.read_bytes() == methods_zip.read_bytes()


def test_build_refuses_what_cannot_work(tmp_path, small_split):
    with pytest.raises(BuildError, match="unknown assignment"):
        build_zip("homework", tmp_path)
    with pytest.raises(BuildError, match="grades no checkpoint"):
        build_zip("ssl_methods", tmp_path, test_split=small_split)
    with pytest.raises(BuildError, match="has 200 images; the course configuration expects 10,000"):
        build_zip("simclr_homework", tmp_path, test_split=small_split)
    with pytest.raises(BuildError, match="does not exist"):
        build_zip("simclr_homework", tmp_path, test_split=tmp_path / "missing.pt")
    bad = tmp_path / "bad.toml"
    bad.write_text("[checkpoint]\npoint = 3\n")
    with pytest.raises(BuildError, match="did you mean 'points'"):
        build_zip("simclr_homework", tmp_path, course_config=bad)
    assert not list(tmp_path.glob("*.zip"))


def test_cli_builds_the_zip(tmp_path, capsys):
    """`python -m autograder gradescope --assignment A` (and `python -m autograder.gradescope
    build`) write the zip; a wrong call exits 64 with a message."""
    from autograder import cli

    assert cli.main(["gradescope", "--assignment", "ssl_methods", "--output", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "ssl_methods-autograder.zip").is_file()
    assert (tmp_path / "a" / "ssl_methods-autograder-docker" / "Dockerfile").is_file()
    assert "Ubuntu 22.04" in capsys.readouterr().out
    assert gradescope.main(["build", "--assignment", "ssl_methods", "--output", str(tmp_path / "b")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert cli.main(["gradescope", "--assignment", "homework", "--output", str(tmp_path / "c")]) == 64
    assert "unknown assignment 'homework'" in capsys.readouterr().err


def test_homework_build_says_which_checkpoint_options_are_on(tmp_path, capsys):
    """Building the homework's zip prints the checkpoint's credit rule, leaderboard and rate
    limit as configured, where the instructor looks right after building."""
    from autograder import cli

    course = tmp_path / "course.toml"
    course.write_text(
        '[checkpoint]\ncredit = "linear"\nzero_credit_threshold = 70\nfull_credit_threshold = 90\n'
        "bonus_threshold = 100\n[checkpoint.leaderboard]\nenabled = true\n"
        "[checkpoint.rate_limit]\nevaluations = 2\nwindow_hours = 12\n"
    )
    assert cli.main(["gradescope", "--assignment", "simclr_homework", "--output", str(tmp_path / "a")]) == 0
    assert (
        "checkpoint: threshold credit (10 points at 75 %, +5 bonus at 85 %); leaderboard off; rate limit off"
        in capsys.readouterr().out
    )
    assert (
        cli.main(
            [
                "gradescope",
                "--assignment",
                "simclr_homework",
                "--course-config",
                str(course),
                "--output",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "linear credit (0 points at 70 % up to 10 at 90 %, +5 bonus growing up to 100 %)" in out
    assert "leaderboard on" in out and "rate limit 2 evaluation(s) per 12 h" in out
    with zipfile.ZipFile(tmp_path / "b" / "simclr_homework-autograder.zip") as opened:
        rubric = json.loads(opened.read("BUILD.json"))["checkpoint_rubric"]
    assert rubric["leaderboard"]["enabled"] and rubric["rate_limit"] == {"evaluations": 2, "window_hours": 12.0}


def test_run_names_the_submission_metadata_to_the_grader(tmp_path, monkeypatch):
    """run_autograder's grading reads /autograder/submission_metadata.json for the checkpoint's
    rate limit ($SSL_LAB_SUBMISSION_METADATA while grading, restored afterwards)."""
    from autograder import grading
    from autograder.checkpoint.rate_limit import ENV_METADATA
    from autograder.results import write_json_atomic

    seen = {}

    def fake_grade(folder, options):
        seen["metadata"] = os.environ.get(ENV_METADATA)
        results = {"score": 0.0, "output": "", "tests": [], "extra_data": {}}
        write_json_atomic(results, options.results)
        return grading.GradeOutcome(results, 0, options.results, "ssl_methods")

    monkeypatch.setattr(grading, "grade", fake_grade)
    monkeypatch.delenv(ENV_METADATA, raising=False)
    (tmp_path / "submission").mkdir()
    assert gradescope.run(tmp_path, "ssl_methods") == 0
    assert seen["metadata"] == str(tmp_path / "submission_metadata.json")
    assert ENV_METADATA not in os.environ


@pytest.mark.realdata
def test_homework_zip_embeds_the_real_test_split(cifar_source, tmp_path):
    """--test-split ../shared/data/cifar10-jpeg embeds the full 10,000-image split as
    data/cifar10-test.pt, and the grader code reads it back from an unpacked zip."""
    from autograder.checkpoint.rubric import CheckpointRubric
    from autograder.checkpoint.split import resolve_test_split

    archive = build_zip("simclr_homework", tmp_path / "dist", test_split=cifar_source)
    with zipfile.ZipFile(archive) as opened:
        info = json.loads(opened.read("BUILD.json"))
        opened.extract("data/cifar10-test.pt", tmp_path / "source")
    assert info["test_split"]["embedded"] and info["test_split"]["images"] == 10_000
    assert str(cifar_source.resolve()) in info["test_split"]["source"]
    split = resolve_test_split(CheckpointRubric(test_split_sources=()), project_root=tmp_path / "source", environ={})
    assert len(split) == 10_000 and "baked into the grading image" in split.source


# ======================================================================================
# setup.sh, with the commands it calls replaced by recorders
# ======================================================================================
FAKE_COMMAND = """#!/usr/bin/env bash
echo "{name} $*" >> "{log}"
{body}
"""


def _fake(bin_dir: Path, name: str, log: Path, body: str = "exit 0") -> None:
    path = bin_dir / name
    path.write_text(FAKE_COMMAND.format(name=name, log=log, body=body))
    path.chmod(0o755)


def _run_setup(
    root: Path,
    tmp_path: Path,
    *,
    python_version: str | None = None,
    failing: str | None = None,
    env: dict | None = None,
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run <root>/source/setup.sh with apt-get, useradd, id, chown, runuser and the venv's
    python replaced by recorders. python3 is the real interpreter (or reports
    `python_version`); "-m venv DIR" makes a recording venv python that passes only
    `-m autograder.checkpoint_grading` on to the real one; a venv call whose arguments
    contain `failing` exits 1. Returns the result and the recorded calls."""
    bin_dir, log, venv = tmp_path / "bin", tmp_path / "calls.log", tmp_path / "opt" / "ssl-lab" / "venv"
    bin_dir.mkdir()
    for name in ("apt-get", "useradd", "chown", "runuser"):
        _fake(bin_dir, name, log)
    if python_version:  # and no other supported pythonX.Y on the PATH
        for other in ("3.10", "3.11", "3.12", "3.13"):
            _fake(bin_dir, f"python{other}", log, "exit 127")
    _fake(bin_dir, "id", log, "exit 1")  # the sandbox user does not exist yet
    recorder = tmp_path / "venv-python"
    fail = f'case "$*" in *"{failing}"*) exit 1 ;; esac\n' if failing else ""
    recorder.write_text(
        FAKE_COMMAND.format(
            name="venv-python",
            log=log,
            body=(
                fail + 'if [ "$1" = "-" ]; then cat > /dev/null; exit 0; fi\n'
                'if [ "$1 $2" = "-m autograder.checkpoint_grading" ]; then exec "'
                + sys.executable
                + '" "$@"; fi\nexit 0'
            ),
        )
    )
    recorder.chmod(0o755)
    version = (
        f'if [ "$1" = "-c" ]; then case "$2" in *version_info*) echo {python_version}; exit 0 ;; esac; fi\n'
        if python_version
        else ""
    )
    _fake(
        bin_dir,
        "python3",
        log,
        version
        + (
            'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$4/bin" && cp "'
            + str(recorder)
            + '" "$4/bin/python"; '
            'exit 0; fi\nexec "' + sys.executable + '" "$@"'
        ),
    )
    environment = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SSL_LAB_GRADESCOPE_ROOT": str(root),
        "SSL_LAB_VENV": str(venv),
        **(env or {}),
    }
    result = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")], env=environment, capture_output=True, text=True, timeout=300
    )
    return result, log.read_text().splitlines() if log.exists() else []


def test_setup_sh_installs_cpu_torch_first_creates_the_user_and_ends_with_the_sandbox_check(homework_zip, tmp_path):
    """setup.sh: the pinned pip, then the CPU build of torch and torchvision at the pinned
    versions from PyTorch's CPU index, then requirements-grader.txt as wheels only, pip check
    and an import check; the sandbox user; the venv root-owned and checked as that user; the
    embedded test split verified with the real grader code; the source private to root; and
    `python -m autograder check-sandbox` last."""
    root = unpack(homework_zip, tmp_path / "autograder")
    result, calls = _run_setup(root, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    pip = [i for i, c in enumerate(calls) if "-m pip" in c and " install " in c]
    cpu = [i for i in pip if "--index-url https://download.pytorch.org/whl/cpu" in calls[i]]
    rest = [i for i in pip if f"-r {root}/source/requirements-grader.txt" in calls[i]]
    assert len(pip) == 3 and pinned("pip") in calls[pip[0]] and cpu == [pip[1]] and rest == [pip[2]], calls
    assert pinned("torch") in calls[cpu[0]] and pinned("torchvision") in calls[cpu[0]]
    assert all("--only-binary=:all:" in calls[i] for i in pip)
    check = [
        i
        for i, c in enumerate(calls)
        if c.endswith("-m pip --disable-pip-version-check --no-cache-dir --no-input check")
    ]
    assert check and check[0] > rest[0]
    assert any(c.startswith("apt-get install") and "python3-venv" in c for c in calls)
    assert any(
        c.startswith("useradd --system --no-create-home --shell /usr/sbin/nologin --user-group sslgrader")
        for c in calls
    )
    assert any(c.startswith("chown -R root:root") for c in calls)
    assert any(c.startswith("runuser -u sslgrader -- ") for c in calls)
    assert any("-m autograder.checkpoint_grading check" in c for c in calls)
    assert not any("checkpoint_grading prepare" in c for c in calls)  # the split was embedded
    assert calls[-1].startswith("venv-python -m autograder check-sandbox"), calls[-3:]
    assert "test split: 200 images" in result.stdout and "== set-up done" in result.stdout
    assert stat.S_IMODE((root / "source").stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((root / "source" / "data" / "cifar10-test.pt").stat().st_mode) & 0o077 == 0


def test_setup_sh_takes_torch_from_a_local_wheel_folder(methods_zip, tmp_path):
    """With SSL_LAB_TORCH_WHEELS, torch and torchvision come from that folder only (no index)."""
    root = unpack(methods_zip, tmp_path / "autograder")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    result, calls = _run_setup(root, tmp_path, env={"SSL_LAB_TORCH_WHEELS": str(wheels)})
    assert result.returncode == 0, result.stderr[-2000:]
    torch = [c for c in calls if pinned("torch") in c and " install " in c and "-r " not in c]
    assert len(torch) == 1 and f"--no-index --find-links {wheels} --no-deps" in torch[0]
    assert not any("download.pytorch.org" in c for c in calls)


@pytest.mark.parametrize("python_version", ["3.8", "3.14"])
def test_setup_sh_refuses_a_python_without_wheels_before_installing_anything(methods_zip, tmp_path, python_version):
    """An image whose python3 is not CPython 3.10 to 3.13 fails the build at once, saying which
    versions work and which base image to choose; no virtual environment is made."""
    root = unpack(methods_zip, tmp_path / "autograder")
    result, calls = _run_setup(root, tmp_path, python_version=python_version)
    assert result.returncode == 1
    assert "SSL Lab set-up FAILED" in result.stderr and "CPython 3.10 3.11 3.12 3.13 only" in result.stderr
    assert "Ubuntu 22.04" in result.stderr
    assert not any("-m venv" in c or "pip" in c for c in calls)


@pytest.mark.parametrize(
    "failing, message",
    [
        ("-r ", "could not install requirements-grader.txt as wheels"),
        ("download.pytorch.org", f"could not install {pinned('torch')} {pinned('torchvision')}"),
        ("check-sandbox", "the sandbox cannot isolate a submission on this image"),
    ],
)
def test_setup_sh_fails_the_build_when_a_step_fails(methods_zip, tmp_path, failing, message):
    """A failed install, or a sandbox that cannot isolate a submission, fails the image build
    with a message naming the step, never a submission later."""
    root = unpack(methods_zip, tmp_path / "autograder")
    result, _ = _run_setup(root, tmp_path, failing=failing)
    assert result.returncode == 1 and "== set-up done" not in result.stdout
    assert f"SSL Lab set-up FAILED: {message}" in result.stderr, result.stderr[-1000:]


# ======================================================================================
# run_autograder on sample submissions
# ======================================================================================
def _hostile_notebook(root: Path) -> dict:
    """The student notebook whose nt_xent tries to overwrite the results, read the reference,
    write into the grader's tree and run shell commands when it is called."""
    code = f"""import os
import pathlib


def nt_xent(z1, z2, tau=0.5):
    root = pathlib.Path({str(root)!r})
    for target in (root / "results" / "results.json", pathlib.Path("/autograder/results/results.json")):
        try:
            target.write_text('{{"score": 1000, "tests": []}}')
        except Exception as error:
            print("results blocked:", type(error).__name__)
    try:
        print("STOLEN:", (root / "source" / "solutions" / "simclr_homework.ipynb").read_text()[:3000])
    except Exception as error:
        print("reference blocked:", type(error).__name__)
    for name in ("source/PWNED", "results/PWNED", "PWNED"):
        try:
            (root / name).write_text("x")
        except Exception:
            pass
    os.system(f"touch {{root}}/results/PWNED_SHELL {{root}}/PWNED_SHELL")
    return z1.sum() * 1000
"""
    return with_cell(PROJECT_ROOT / "notebooks" / "simclr_homework.ipynb", "nt_xent", code)


class _Shell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.slow
def test_run_autograder_on_reference_untouched_and_hostile_submissions(homework_zip, tmp_path):
    """run_autograder grades /autograder/submission into /autograder/results/results.json in
    Gradescope's format: the reference solution with a 90 % checkpoint earns everything plus
    the bonus; the untouched student notebook without a checkpoint earns 0 with a clear
    message; a hostile submission neither overwrites the results, nor reads the reference,
    nor writes into the grader's tree, and its code-running checkpoint is not run."""
    roots = {name: unpack(homework_zip, tmp_path / name) for name in ("reference", "untouched", "hostile")}
    shutil.copy(PROJECT_ROOT / "solutions" / "simclr_homework.ipynb", roots["reference"] / "submission")
    save_classifier(calibration_classifier(), roots["reference"] / "submission" / "simclr_lin_best.pt")
    shutil.copy(PROJECT_ROOT / "notebooks" / "simclr_homework.ipynb", roots["untouched"] / "submission")
    hostile = roots["hostile"]
    (hostile / "submission" / "simclr_homework.ipynb").write_text(json.dumps(_hostile_notebook(hostile)))
    (hostile / "submission" / "simclr_lin_best.pt").write_bytes(
        pickle.dumps({"state_dict": _Shell(f"touch {hostile}/PWNED_PICKLE")}, protocol=2)
    )
    (hostile / "submission_metadata.json").write_text('{"users": [{"email": "student@example.com"}]}')

    processes = {name: run_autograder(root) for name, root in roots.items()}
    results = {name: finish(process, roots[name]) for name, process in processes.items()}
    for name, result in results.items():
        assert_valid_results(result)
        assert stat.S_IMODE(roots[name].stat().st_mode) == 0o700, name  # only root may enter

    reference = results["reference"]
    assert reference["score"] == UNIT_POINTS + 10 + 5, reference["output"]
    assert all(test["status"] == "passed" for test in reference["tests"])
    checkpoint = [t for t in reference["tests"] if t["tags"] == ["checkpoint"]]
    assert [(t["score"], t["max_score"]) for t in checkpoint] == [(10.0, 10.0), (5.0, 0.0)]
    assert "test accuracy 90.00 % (180 of 200" in checkpoint[0]["output"]
    assert "calibration split" in checkpoint[0]["output"]

    untouched = results["untouched"]
    assert untouched["score"] == 0
    checkpoint = [t for t in untouched["tests"] if t["tags"] == ["checkpoint"]]
    assert "No file named simclr_lin_best.pt in your submission" in checkpoint[0]["output"]
    assert len(untouched["tests"]) == len(reference["tests"])

    bad = results["hostile"]
    assert bad["score"] < 1000 and bad["tests"]
    nt_xent = [t for t in bad["tests"] if t["tags"] == ["nt_xent"]]
    assert nt_xent and all(t["status"] == "failed" for t in nt_xent)
    checkpoint = [t for t in bad["tests"] if t["tags"] == ["checkpoint"]]
    assert "nothing in it was run" in checkpoint[0]["output"]
    text = json.dumps(bad)
    assert "### BEGIN SOLUTION" not in text and "STOLEN: {" not in text
    leftovers = [p.relative_to(hostile) for p in hostile.rglob("PWNED*")]
    assert leftovers == [], leftovers


def test_run_autograder_always_leaves_valid_results(tmp_path, methods_zip):
    """When Python cannot start, run_autograder still writes a valid results.json that says it
    is not the student's fault; when the grader crashes (no submission folder), so does
    autograder.gradescope.run."""
    root = unpack(methods_zip, tmp_path / "no-python")
    results = finish(run_autograder(root, python="/nonexistent/python"), root)
    assert_valid_results(results)
    assert results["score"] == 0 and "not your fault" in results["output"]

    root = unpack(methods_zip, tmp_path / "no-submission")
    (root / "submission").rmdir()
    assert gradescope.run(root, "ssl_methods") == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert_valid_results(results)
    assert results["score"] == 0 and "not your fault" in results["output"]


# ======================================================================================
# autograder.wheels: the pins' wheels per Python version (CI runs it against PyPI)
# ======================================================================================
def test_wheel_check_reads_pins_markers_and_names_every_missing_pin(tmp_path):
    """Markers are evaluated for the target Python; a failing download is retried pin by pin
    so that every missing pin is named; torch and torchvision are asked of their own index.
    pip is replaced by a script that has no wheel of `scipy` for 3.10."""
    from autograder import wheels

    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        '# comment\ntorch==2.14.1\nnumpy==2.2.6  # why\nscipy==1.15.3\ntomli==2.5.0; python_version < "3.11"\n'
    )
    pins = wheels.read_pins(requirements)
    assert [(p.name, p.version) for p in pins] == [
        ("torch", "2.14.1"),
        ("numpy", "2.2.6"),
        ("scipy", "1.15.3"),
        ("tomli", "2.5.0"),
    ]
    assert pins[3].applies_to("3.10") and not pins[3].applies_to("3.11")
    log = tmp_path / "pip.log"
    fake = tmp_path / "pip"
    fake.write_text(
        f'#!/usr/bin/env bash\necho "$*" >> {log}\n'
        'case "$*" in *"--python-version 3.10"*scipy==*) echo "ERROR: no scipy" >&2; exit 1 ;; esac\n'
    )
    fake.chmod(0o755)
    missing = wheels.check(
        requirements,
        ["3.10", "3.11"],
        torch_index="https://cpu.example/simple",
        pypi="https://pypi.example/simple",
        pip=[str(fake)],
        log=lambda line: None,
    )
    assert [(m.pin.name, m.python) for m in missing] == [("scipy", "3.10")]
    assert "no wheel for CPython 3.10" in str(missing[0]) and "ERROR: no scipy" in str(missing[0])
    calls = log.read_text().splitlines()
    assert all(
        "--only-binary=:all:" in c and "--no-deps" in c and "--platform manylinux_2_35_x86_64" in c for c in calls
    )
    assert not any("manylinux_2_36" in c for c in calls)
    torch = [c for c in calls if "torch==2.14.1" in c]
    assert torch and all("--index-url https://cpu.example/simple" in c and "numpy" not in c for c in torch)
    assert any("tomli==2.5.0" in c and "--python-version 3.10" in c for c in calls)
    assert not any("tomli" in c and "--python-version 3.11" in c for c in calls)
    bad = tmp_path / "bad.txt"
    bad.write_text("numpy>=2\n")
    with pytest.raises(ValueError, match="not a plain 'name==version' pin"):
        wheels.read_pins(bad)


def test_readmes_state_the_pythons_that_are_checked():
    """README.md names the image's Python range and the students' range that CI checks."""
    from autograder.wheels import GRADER_PYTHONS, STUDENT_PYTHONS

    readme = (PROJECT_ROOT / "README.md").read_text()
    students = (PROJECT_ROOT / "README.students.md").read_text()
    assert f"CPython {GRADER_PYTHONS[0]} to {GRADER_PYTHONS[-1]}" in readme
    assert f"CPython {STUDENT_PYTHONS[0]} to {STUDENT_PYTHONS[-1]}" in readme
    assert "Ubuntu 22.04" in readme and "Ubuntu 24.04" not in readme
    assert "3.10 or newer" not in readme + students
