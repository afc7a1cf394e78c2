"""Rehearse the Gradescope image build: the generated setup.sh in a fresh Debian root, then grading.

::

    sudo python benchmarks/gradescope_rehearsal.py [--assignment ssl_methods] [--suite bookworm]
                                                   [--torch-wheels DIR] [--base-root DIR] [--keep]

What it does, as root on a Linux machine with ``debootstrap`` (``apt-get install debootstrap``):

1. a bare root made the way Gradescope's base image is made, from a distribution's packages:
   ``debootstrap --variant=minbase SUITE`` from ``deb.debian.org`` (bookworm: python3 3.11;
   ``--base-root`` reuses one made before, which is recorded);
2. the assignment's zip, built by `autograder.gradescope.build_zip` and unpacked into
   ``/autograder/source`` of a copy of that root, ``run_autograder`` copied to
   ``/autograder/run_autograder``, as Gradescope does;
3. the zip's ``setup.sh`` run by ``chroot`` as root, with ``/proc``, ``/sys`` and ``/dev``
   mounted. PyPI is reached over the network. When PyPI's CPU index of PyTorch
   (download.pytorch.org) cannot be reached, the CPU wheels of torch and torchvision come
   from ``--torch-wheels`` (mounted read-only at ``/wheels``, ``SSL_LAB_TORCH_WHEELS``), and
   the zip's torch pins are set to the versions of those wheels (recorded);
4. ``/autograder/run_autograder`` in the root on the reference solution and on an empty
   submission; their results.json (score, tests) are recorded.

The record, with setup.sh's output, each step's seconds, what was installed (``pip freeze``,
the environment's size) and the scores, goes to ``benchmarks/results/gradescope_rehearsal-*.json``.
A rehearsal takes several minutes (PyTorch's wheels, and grading on the CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from autograder.contract import ASSIGNMENTS  # noqa: E402
from autograder.gradescope import GRADER_REQUIREMENTS, IMAGE_VENV, build_zip  # noqa: E402
from autograder.wheels import TORCH_CPU_INDEX, reachable  # noqa: E402

RESULTS = PROJECT_ROOT / "benchmarks" / "results"
MIRRORS = {
    "bookworm": "http://deb.debian.org/debian",
    "trixie": "http://deb.debian.org/debian",
    "jammy": "http://archive.ubuntu.com/ubuntu",
    "noble": "http://archive.ubuntu.com/ubuntu",
}
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WHEEL = re.compile(r"^(?P<name>[A-Za-z0-9_]+)-(?P<version>[^-]+)-(?P<python>cp\d+)-")


def run_logged(command: list[str], log: list[dict], *, env: dict | None = None, timeout: float = 3600) -> int:
    """Run `command`, echo its output, and log every line with the seconds since the start."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
    )
    assert process.stdout is not None
    for line in process.stdout:
        log.append({"t": round(time.monotonic() - started, 1), "line": line.rstrip("\n")})
        print(line, end="", flush=True)
    return process.wait(timeout=timeout)


def make_base_root(suite: str, target: Path) -> float:
    started = time.monotonic()
    subprocess.run(
        ["debootstrap", "--variant=minbase", suite, str(target), MIRRORS[suite]], check=True, stdout=subprocess.DEVNULL
    )
    return time.monotonic() - started


@contextlib.contextmanager
def mounted(root: Path, wheels: Path | None):
    """/proc, /sys, /dev (and /dev/pts) in `root`, the wheel folder read-only at /wheels."""
    mounts = [
        ("proc", root / "proc", ["-t", "proc", "proc"]),
        ("sys", root / "sys", ["-t", "sysfs", "sysfs"]),
        ("dev", root / "dev", ["--bind", "/dev"]),
        ("pts", root / "dev" / "pts", ["--bind", "/dev/pts"]),
    ]
    if wheels is not None:
        mounts.append(("wheels", root / "wheels", ["--bind", str(wheels)]))
    done = []
    try:
        for name, point, args in mounts:
            point.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", *args, str(point)], check=True)
            done.append(point)
            if name == "wheels":
                subprocess.run(["mount", "-o", "remount,bind,ro", str(point)], check=True)
        yield
    finally:
        for point in reversed(done):
            subprocess.run(["umount", str(point)], check=False)


def remove_root(root: Path) -> None:
    """Delete the rehearsal root, never what is still mounted in it (the machine's /dev, ...)."""
    prefix = str(root.resolve()) + "/"
    still = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(prefix)
    ]
    if still:
        print(f"not deleting {root}: still mounted there: {still}", file=sys.stderr)
        return
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


def local_torch_pins(wheels: Path, python_tag: str) -> dict[str, str]:
    """{"torch": "2.13.0", "torchvision": "0.28.0"} from the wheel files for `python_tag`."""
    found = {}
    for path in sorted(wheels.glob("*.whl")):
        match = WHEEL.match(path.name)
        if match and match["python"] == python_tag and match["name"] in ("torch", "torchvision"):
            found[match["name"]] = match["version"].split("+")[0]
    return found


def chroot_python_tag(root: Path) -> str:
    """cp311 for the python3 that the root's apt would install (from its package lists)."""
    result = subprocess.run(
        [
            "chroot",
            str(root),
            "/bin/sh",
            "-c",
            "apt-get update -qq >/dev/null 2>&1; apt-cache show python3 | sed -n 's/^Version: //p'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    version = result.stdout.split()[0]  # e.g. 3.11.2-1+b1
    major, minor = version.split(".")[:2]
    return f"cp{major}{minor}"


def grade(root: Path, files: list[Path], env: dict) -> dict:
    autograder = root / "autograder"
    for name in ("submission", "results"):
        shutil.rmtree(autograder / name, ignore_errors=True)
        (autograder / name).mkdir()
    for path in files:
        shutil.copy(path, autograder / "submission" / path.name)
    (autograder / "submission_metadata.json").write_text('{"users": [{"email": "student@example.com"}]}')
    log: list[dict] = []
    started = time.monotonic()
    status = run_logged(["chroot", str(root), "/autograder/run_autograder"], log, env=env)
    seconds = time.monotonic() - started
    results = json.loads((autograder / "results" / "results.json").read_text())
    tests = results.get("tests", [])
    return {
        "files": [path.name for path in files],
        "exit_status": status,
        "seconds": round(seconds, 1),
        "score": results.get("score"),
        "max_score": sum(t.get("max_score", 0) for t in tests),
        "tests": len(tests),
        "passed": sum(t.get("status") == "passed" for t in tests),
        "grader_error": bool(results.get("extra_data", {}).get("grader_error")),
        "output_head": str(results.get("output", ""))[:500],
        "log_tail": [entry["line"] for entry in log[-40:]],
    }


def step_seconds(log: list[dict]) -> dict[str, float]:
    """Seconds per setup.sh step, from the times of its "== [n/8] ..." lines."""
    marks = [(entry["t"], entry["line"][3:]) for entry in log if re.match(r"^== \[\d/\d\]", entry["line"])]
    end = log[-1]["t"] if log else 0.0
    return {name: round((marks[i + 1][0] if i + 1 < len(marks) else end) - t, 1) for i, (t, name) in enumerate(marks)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="ssl_methods", choices=list(ASSIGNMENTS))
    parser.add_argument("--suite", default="bookworm", choices=sorted(MIRRORS))
    parser.add_argument(
        "--torch-wheels",
        type=Path,
        help="folder with CPU wheels of torch and torchvision, used when PyTorch's CPU index cannot be reached",
    )
    parser.add_argument(
        "--base-root",
        type=Path,
        help="a bare root made before by debootstrap (copied, never changed); default: make one",
    )
    parser.add_argument("--test-split", type=Path, help="simclr_homework: --test-split for the zip")
    parser.add_argument("--workdir", type=Path, help="where the roots go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the rehearsal root")
    parser.add_argument("--out", type=Path, help="the record (default: benchmarks/results/...)")
    parser.add_argument("--note", action="append", default=[], help="a note to keep in the record (repeatable)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        print("run as root on a machine with debootstrap (apt-get install debootstrap)", file=sys.stderr)
        return 2
    started = time.monotonic()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ssl-lab-rehearsal-"))
    workdir.mkdir(parents=True, exist_ok=True)
    record: dict = {
        "benchmark": "gradescope_rehearsal",
        "time_utc": stamp,
        "assignment": args.assignment,
        "command": "python benchmarks/gradescope_rehearsal.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "suite": args.suite,
        "mirror": MIRRORS[args.suite],
        "notes": args.note,
    }

    # 1. The bare root.
    if args.base_root:
        base = args.base_root
        record["base_root"] = {"reused": str(base), "note": "made earlier with debootstrap --variant=minbase"}
    else:
        base = workdir / f"base-{args.suite}"
        seconds = make_base_root(args.suite, base)
        record["base_root"] = {"debootstrap_seconds": round(seconds, 1)}
    root = workdir / "root"
    if root.exists():
        remove_root(root)
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    python_tag = chroot_python_tag(root)
    record["image_python3"] = python_tag

    # 2. The zip; torch pins from the local wheels when PyTorch's CPU index is out of reach.
    grader_requirements = GRADER_REQUIREMENTS
    wheels = None
    record["torch_cpu_index_reachable"] = reachable(TORCH_CPU_INDEX)
    if not record["torch_cpu_index_reachable"]:
        if args.torch_wheels is None:
            print(f"{TORCH_CPU_INDEX} cannot be reached: pass --torch-wheels DIR", file=sys.stderr)
            return 2
        wheels = args.torch_wheels.resolve()
        pins = local_torch_pins(wheels, python_tag)
        if set(pins) != {"torch", "torchvision"}:
            print(f"{wheels} lacks {python_tag} wheels of torch and torchvision (found {pins})", file=sys.stderr)
            return 2
        text = GRADER_REQUIREMENTS.read_text()
        for name, version in pins.items():
            text = re.sub(rf"^{name}==\S+", f"{name}=={version}", text, flags=re.M)
        grader_requirements = workdir / "requirements-grader.txt"
        grader_requirements.write_text(text)
        record["torch_wheels"] = {
            "folder": str(args.torch_wheels),
            "files": sorted(p.name for p in wheels.glob("*.whl")),
            "pins_replaced": pins,
        }
    archive = build_zip(
        args.assignment, workdir / "dist", test_split=args.test_split, grader_requirements=grader_requirements
    )
    record["zip"] = {
        "name": archive.name,
        "bytes": archive.stat().st_size,
        "build": json.loads(zipfile.ZipFile(archive).read("BUILD.json")),
    }
    source = root / "autograder" / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(opened.read(info))
            target.chmod((info.external_attr >> 16) & 0o777 or 0o644)
    shutil.copy(source / "run_autograder", root / "autograder" / "run_autograder")
    record["requirements_grader"] = grader_requirements.read_text().splitlines()

    env = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
    # A network whose HTTPS goes through a proxy with its own certificate authority (as on the
    # machine this was first run on) needs that authority inside the root too: pip is pointed
    # at this machine's bundle (PIP_CERT), kept apart from the root's own ca-certificates.
    host_bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(host_bundle).is_file():
        shutil.copy(host_bundle, root / "etc" / "rehearsal-host-ca.crt")
        env["PIP_CERT"] = "/etc/rehearsal-host-ca.crt"
        record["pip_cert"] = f"this machine's {host_bundle} (PIP_CERT), for its HTTPS proxy"
    if wheels is not None:
        env["SSL_LAB_TORCH_WHEELS"] = "/wheels"
    try:
        with mounted(root, wheels):
            # 3. setup.sh, as Gradescope runs it.
            log: list[dict] = []
            t0 = time.monotonic()
            status = run_logged(["chroot", str(root), "/bin/bash", "/autograder/source/setup.sh"], log, env=env)
            record["setup"] = {
                "exit_status": status,
                "seconds": round(time.monotonic() - t0, 1),
                "step_seconds": step_seconds(log),
                "output": [e["line"] for e in log],
            }
            venv = root / IMAGE_VENV.lstrip("/")
            if (venv / "bin" / "python").exists():
                freeze = subprocess.run(
                    ["chroot", str(root), f"{IMAGE_VENV}/bin/python", "-m", "pip", "freeze"],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                size = subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True)
                record["installed"] = {
                    "pip_freeze": freeze.stdout.split(),
                    "venv_bytes": int(size.stdout.split()[0]) if size.returncode == 0 else None,
                }
            # 4. Grading, when the image would have been built.
            if status == 0:
                solution = PROJECT_ROOT / "solutions" / f"{args.assignment}.ipynb"
                record["grading"] = {"reference": grade(root, [solution], env), "empty": grade(root, [], env)}
    finally:
        if not args.keep:
            remove_root(root)
    record["total_minutes"] = round((time.monotonic() - started) / 60, 2)
    out = args.out or RESULTS / f"gradescope_rehearsal-{stamp}.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"\nwrote {out}: setup.sh exit {record['setup']['exit_status']} in {record['setup']['seconds']} s"
        + "".join(
            f"; {name} {r['score']}/{r['max_score']} in {r['seconds']} s"
            for name, r in record.get("grading", {}).items()
        )
    )
    return 0 if record["setup"]["exit_status"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
