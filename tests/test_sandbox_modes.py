"""Attacks on the grader itself, graded in both isolation modes that run as root: ``namespace``
(a Linux VM, CI) and ``uid`` (no namespaces: Gradescope's container, simulated here by a
process whose seccomp filter refuses ``unshare``, as Docker's default profile does).

The attacks (tests/submissions/attacks.py) forge the harness's records, write malformed
answers, harvest the reference through the step oracles and carry hidden inputs across
tests, reach for the zygote, the network, secrets and the host's shared folders, and
burn time under every per-call limit. Each class must cost the submission (never the
grader), in both modes, and leave nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_python import readable_python

from autograder.tests.tasks import unit_points
from submissions.attacks import (
    FORGE_RECORDS,
    HARVEST,
    MALFORMED_FRAMES,
    SLOW,
    SURROUNDINGS,
    attack_notebook,
    replace_task,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the namespace and uid modes need root")
SSL_POINTS = sum(unit_points("ssl_methods").values())  # the points markers of ssl_methods' graded tests
LEFTOVERS = (
    "/tmp/ssl-lab-leftover",
    "/dev/shm/ssl-lab-leftover",
    "/var/tmp/ssl-lab-leftover",
    "/tmp/.harvest",
    "/dev/shm/.harvest",
    "/var/tmp/.harvest",
)

#: Runs a command in a process that cannot create namespaces (what a Docker container with the
#: default seccomp profile gives the grader), so `--isolation auto` must choose uid mode.
NO_UNSHARE = r"""
import errno, os, sys
import pyseccomp as seccomp
rules = seccomp.SyscallFilter(seccomp.ALLOW)
rules.add_rule(seccomp.ERRNO(errno.EPERM), "unshare")
for flag in (0x00020000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
rules.load()
os.execv(sys.argv[1], sys.argv[1:])
"""


def _grade(python: str, folder: Path, mode: str, *extra: str) -> tuple[dict, subprocess.CompletedProcess, float]:
    command = [
        python,
        "-m",
        "autograder",
        "grade",
        str(folder),
        "--unit-only",
        "--quiet",
        "--results",
        str(folder / "results.json"),
        "--call-timeout",
        "5",
        "--load-timeout",
        "8",
        *extra,
    ]
    if mode == "uid":  # auto mode under a filter that refuses unshare: the Gradescope container
        command = [python, "-c", NO_UNSHARE, python, *command[1:]]
    else:
        command += ["--isolation", mode]
    started = time.monotonic()
    process = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    path = folder / "results.json"
    assert path.exists(), process.stdout[-2000:] + process.stderr[-2000:]
    return json.loads(path.read_text()), process, seconds


def _task(results: dict, task: str) -> dict:
    return results["extra_data"]["tasks"][task]


def _outputs(results: dict, task: str) -> str:
    return "\n".join(t["output"] for t in results["tests"] if task in t["tags"])


@pytest.fixture(scope="module", params=["namespace", "uid"])
def mode(request) -> tuple[str, str]:
    """(mode, interpreter): uid mode runs with an interpreter the sandbox user can read."""
    if os.geteuid() != 0:
        pytest.skip("the namespace and uid modes need root")
    if request.param == "namespace":
        return "namespace", sys.executable
    python, why = readable_python()
    if python is None:
        pytest.fail(f"cannot prepare uid mode here: {why}")
    return "uid", python


@pytest.fixture(scope="module")
def graded(mode, tmp_path_factory) -> dict:
    """Every attack submission graded once in `mode`."""
    name, python = mode
    root = tmp_path_factory.mktemp(f"attacks-{name}")
    root.chmod(0o755)
    marker = root / "marker"
    marker.mkdir()
    marker.chmod(0o777)  # writable by anyone: only confinement keeps the worker out
    other = root / "other-student"  # a submission beside the attacker's, world-readable
    other.mkdir()
    (other / "answer.txt").write_text("OTHER-STUDENT-SECRET")
    for path in (other, other / "answer.txt"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for leftover in LEFTOVERS:
        Path(leftover).unlink(missing_ok=True)
    solution = PROJECT_ROOT / "solutions" / "ssl_methods.ipynb"
    values = {"marker": str(marker), "secret": str(other / "answer.txt"), "root": str(PROJECT_ROOT)}
    notebooks = {
        "forge": attack_notebook(PROJECT_ROOT / "notebooks" / "ssl_methods.ipynb", [FORGE_RECORDS]),
        "forge-hw": attack_notebook(PROJECT_ROOT / "notebooks" / "simclr_homework.ipynb", [FORGE_RECORDS]),
        "attacks": replace_task(
            attack_notebook(solution, [MALFORMED_FRAMES, HARVEST], **values), "simclr_forward", SURROUNDINGS, **values
        ),
        "slow": attack_notebook(solution, [SLOW]),
        "reference": json.loads(solution.read_text()),
    }
    graded = {"mounts_before": _mounts()}
    for sample, notebook in notebooks.items():
        folder = root / sample
        folder.mkdir()
        folder.chmod(0o755)
        file_name = "simclr_homework.ipynb" if sample.endswith("-hw") else "ssl_methods.ipynb"
        (folder / file_name).write_text(json.dumps(notebook))
        extra = ("--budget", "15") if sample == "slow" else ()
        graded[sample] = _grade(python, folder, name, *extra)
    time.sleep(0.5)
    graded["marker"] = marker
    graded["mounts_after"] = _mounts()
    return graded


def _mounts() -> list[str]:
    """The host's mount points (the sandbox's mounts live in its own namespace)."""
    return sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())


@needs_root
def test_the_mode_asked_for_is_the_mode_that_ran(graded, mode):
    for sample in ("forge", "attacks", "reference"):
        results, process, _ = graded[sample]
        assert process.returncode == 0, (process.stderr[-2000:], results["extra_data"].get("grader_errors"))
        extra = results["extra_data"]
        assert extra["sandbox"] == mode[0]
        assert extra["sandbox_applied"].startswith("confinement: uid ") and "uid 0," not in extra["sandbox_applied"]
        assert "Landlock applied" in extra["sandbox_applied"] and "seccomp applied" in extra["sandbox_applied"]
    assert graded["reference"][0]["score"] == SSL_POINTS


@needs_root
@pytest.mark.parametrize("sample", ["forge", "forge-hw"])
def test_rewriting_the_harness_forges_nothing(graded, sample):
    """An untouched notebook whose load-time code replaces every harness operation by one that
    returns records built from the grader's inputs (or none) earns nothing."""
    results, process, _ = graded[sample]
    assert process.returncode == 0, results["extra_data"].get("grader_errors")
    assert results["score"] == 0, [(t["name"], t["output"][:200]) for t in results["tests"] if t["score"]]
    assert "grader_errors" not in results["extra_data"]
    assert any("could not read" in t["output"] for t in results["tests"]), results["tests"][0]["output"]


@needs_root
def test_attacks_cost_only_their_own_tasks(graded):
    results, process, _ = graded["attacks"]
    assert process.returncode == 0 and "grader_errors" not in results["extra_data"], results["output"][-2000:]
    for task in ("extract_features", "probes", "simclr_forward", "nt_xent", "byol_forward", "byol_step", "barlow_step"):
        row = _task(results, task)
        assert row["score"] == row["max_score"], (task, _outputs(results, task)[:1500])
    for task in ("barlow_loss", "ema", "simclr_step"):
        assert _task(results, task)["score"] < _task(results, task)["max_score"], task


@needs_root
def test_malformed_answers_are_the_submissions_fault(graded):
    results, _, _ = graded["attacks"]
    assert "could not be read" in _outputs(results, "barlow_loss")
    assert "could not read" in _outputs(results, "ema")


@needs_root
def test_the_reference_cannot_be_harvested_and_nothing_survives_a_test(graded):
    """The hidden nt_xent inputs, kept in every writable place, are gone by the visible step
    test, and the step oracle refuses tensors that are not the step's own projections and
    answers no more often than a correct step asks."""
    results, _, _ = graded["attacks"]
    step = _outputs(results, "simclr_step")
    assert "HARVEST-FOUND 0" in step, step[:2000]
    assert "HARVESTED" not in json.dumps(results)
    assert "REFUSED" in step
    for leftover in LEFTOVERS:
        assert not Path(leftover).exists(), leftover
    assert not (graded["marker"] / "harvest").exists()


@needs_root
def test_the_worker_reaches_nothing_around_it(graded):
    results, _, _ = graded["attacks"]
    output = _outputs(results, "simclr_forward")
    assert "uid 0 " not in output and "euid 0 " not in output, output
    for forbidden in ("PTRACED", "READ ", "SOCKET AF_INET", "UNSHARED", "MOUNTED", "OTHER-STUDENT-SECRET"):
        assert forbidden not in output, (forbidden, output)
    assert "groups []" in output
    assert not (graded["marker"] / "leftover").exists()
    for leftover in LEFTOVERS:
        assert not Path(leftover).exists(), leftover


@needs_root
def test_a_thread_that_outlives_its_call_reaches_no_later_test(graded):
    """HARVEST's nt_xent starts a thread that kills its process 1.5 s later: every later test
    runs in a fresh worker, so nt_xent keeps every point."""
    results, _, _ = graded["attacks"]
    assert _task(results, "nt_xent")["score"] == _task(results, "nt_xent")["max_score"]


@needs_root
def test_slow_calls_stop_at_the_budget(graded):
    """Calls that each stay under the per-call limit stop at the submission's time budget (15 s
    here); the remaining tests fail at once with a message, and grading stays short."""
    results, process, seconds = graded["slow"]
    reference_seconds = graded["reference"][2]
    assert process.returncode == 0
    assert results["extra_data"]["student_code_seconds"] <= 15 + 6
    assert "time budget for running your code" in json.dumps(results)
    assert seconds < reference_seconds + 15 + 20, (seconds, reference_seconds)


@needs_root
def test_no_process_of_the_sandbox_user_is_left(graded):
    import pwd

    import psutil

    uid = pwd.getpwnam("sslgrader").pw_uid
    left = [
        p.info for p in psutil.process_iter(["pid", "uids", "cmdline"]) if p.info["uids"] and p.info["uids"].real == uid
    ]
    assert left == []


def test_uid_mode_refuses_an_interpreter_the_sandbox_user_cannot_read(tmp_path):
    """Fail closed: where the sandbox user cannot run the grader's Python (here: a virtual
    environment under /root), uid mode stops with a grader error; nothing runs as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.path.realpath(sys.executable).startswith("/root") and not sys.prefix.startswith("/root"):
        pytest.skip("this interpreter is readable by other users")
    folder = tmp_path / "sub"
    folder.mkdir()
    marker = tmp_path / "RAN-AS-ROOT"
    notebook = attack_notebook(
        PROJECT_ROOT / "solutions" / "ssl_methods.ipynb", [f"class _Mark:\n    open({str(marker)!r}, 'w').close()\n"]
    )
    (folder / "ssl_methods.ipynb").write_text(json.dumps(notebook))
    results, process, _ = _grade(sys.executable, folder, "uid")
    assert process.returncode == 2
    assert "cannot run" in results["output"] and "not your fault" in results["output"]
    assert not marker.exists()


@needs_root
def test_no_mount_is_added_to_the_host(graded):
    assert graded["mounts_after"] == graded["mounts_before"]


@needs_root
def test_run_autograder_in_a_container_that_cannot_unshare(tmp_path):
    """Gradescope's container, simulated: run_autograder under a filter that refuses unshare
    (Docker's default profile), with the interpreter installed where the sandbox user can read
    it (setup.sh's /opt/ssl-lab/venv). The grader picks uid mode, says so, grades the
    reference in full and contains an attack; nothing is left behind."""
    from test_gradescope import assert_valid_results, finish, run_autograder, unpack

    from autograder.gradescope import build_zip

    python, why = readable_python()
    if python is None:
        pytest.fail(f"cannot prepare uid mode here: {why}")
    wrapper = tmp_path / "python-without-unshare"
    wrapper.write_text(
        f"#!{python}\n"
        + NO_UNSHARE.replace(
            "os.execv(sys.argv[1], sys.argv[1:])", f"os.execv({python!r}, [{python!r}, *sys.argv[1:]])"
        )
    )
    wrapper.chmod(0o755)
    archive = build_zip("ssl_methods", tmp_path / "dist")
    roots = {}
    for name in ("reference", "attack"):
        roots[name] = unpack(archive, tmp_path / name)
    shutil.copy(PROJECT_ROOT / "solutions" / "ssl_methods.ipynb", roots["reference"] / "submission")
    values = {
        "marker": str(tmp_path),
        "secret": str(roots["reference"] / "submission" / "ssl_methods.ipynb"),
        "root": str(roots["attack"] / "source"),
    }
    attack = replace_task(
        json.loads((PROJECT_ROOT / "solutions" / "ssl_methods.ipynb").read_text()),
        "simclr_forward",
        SURROUNDINGS,
        **values,
    )
    (roots["attack"] / "submission" / "ssl_methods.ipynb").write_text(json.dumps(attack))
    results = {name: finish(run_autograder(root, python=str(wrapper)), root) for name, root in roots.items()}
    for result in results.values():
        assert_valid_results(result)
    assert results["reference"]["score"] == SSL_POINTS, results["reference"]["output"][-2000:]
    assert results["attack"]["score"] == SSL_POINTS, results["attack"]["output"][-2000:]
    output = "\n".join(t["output"] for t in results["attack"]["tests"] if "simclr_forward" in t["tags"])
    assert re.search(r"\buid [1-9]\d* euid [1-9]\d* groups \[\]", output), output  # the attack ran, unprivileged
    for forbidden in ("PTRACED", "READ ", "SOCKET AF_INET", "UNSHARED", "MOUNTED", "BEGIN SOLUTION"):
        assert forbidden not in output, (forbidden, output)
    for result in results.values():
        assert result["extra_data"]["sandbox"] == "uid", result["extra_data"]
        assert "Landlock applied" in result["extra_data"]["sandbox_applied"]
    for leftover in LEFTOVERS:
        assert not Path(leftover).exists(), leftover
