"""Do the pinned requirements install as wheels on every Python version we claim?

::

    python -m autograder wheels                  # both requirement files, their claimed Pythons
    python -m autograder wheels --grader         # only what the Gradescope image installs
    python -m autograder wheels --student --python 3.14
    python -m autograder.wheels                  # the same, directly (CI's .ci/run calls this)

For each claimed CPython version, ``pip download --no-deps --only-binary=:all:
--python-version X.Y --implementation cp --platform <manylinux x86_64 up to glibc 2.35>``
fetches the pinned files into a temporary folder (deleted at once) from PyPI; torch and
torchvision of the grading image come from PyTorch's CPU index, which ``setup.sh`` installs
from, or from PyPI's files of the same release when that index cannot be reached (said in
the output). A pin without a wheel for a version fails the check, naming the pin and the
version. Environment markers (``; python_version < "3.11"``) are evaluated for the target
version, not for the Python running the check. Local pip settings (find-links, extra
indexes, constraints) are ignored so that the answer is PyPI's. CI runs this (``.ci/run``).

The platform is Ubuntu 22.04's (glibc 2.35), Gradescope's default base image, the oldest
glibc this bundle is installed on; a wheel for a newer glibc would not install there.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GRADER_REQUIREMENTS = Path(__file__).resolve().with_name("requirements-grader.txt")
STUDENT_REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
#: The CPython versions whose wheels every pin of requirements-grader.txt has: setup.sh
#: refuses any other, and README.md states them.
GRADER_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
#: The same for requirements.txt (students and instructors); README.md and
#: README.students.md state them.
STUDENT_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
PYPI = "https://pypi.org/simple"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Packages that the grading image takes from PyTorch's CPU index.
TORCH_PACKAGES = ("torch", "torchvision")
#: Ubuntu 22.04's glibc: manylinux wheels up to this version install there.
GLIBC = (2, 35)


@dataclasses.dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of a requirements file (``marker``: its environment marker)."""

    name: str
    version: str
    marker: str | None
    line: str

    def applies_to(self, python: str) -> bool:
        """Whether the line applies to CPython `python` ("3.10") on Linux x86_64."""
        if self.marker is None:
            return True
        environment = {
            "python_version": python,
            "python_full_version": f"{python}.0",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "os_name": "posix",
        }
        return Marker(self.marker).evaluate(environment)


@dataclasses.dataclass(frozen=True)
class Missing:
    """A pin without an installable wheel for one Python version."""

    pin: Pin
    python: str
    index: str
    detail: str

    def __str__(self) -> str:
        return f"{self.pin.line}: no wheel for CPython {self.python} on {self.index} ({self.detail})"


def read_pins(path: str | os.PathLike) -> list[Pin]:
    """The pins of a requirements file; anything but ``name==version`` is an error."""
    pins = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==" or requirement.url or requirement.extras:
            raise ValueError(f"{path}:{number}: {line!r} is not a plain 'name==version' pin")
        marker = str(requirement.marker) if requirement.marker else None
        pins.append(Pin(requirement.name, specifiers[0].version, marker, line))
    return pins


def platform_tags(glibc: tuple[int, int] = GLIBC) -> list[str]:
    """The manylinux x86_64 tags a system with this glibc installs (pure wheels always do)."""
    major, newest = glibc
    tags = [f"manylinux_{major}_{minor}_x86_64" for minor in range(newest, 4, -1)]
    return tags + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def _pip_environment() -> dict[str, str]:
    """os.environ without the pip settings that would add local sources or constraints."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIP_") or key in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_CLIENT_CERT")
    }
    environment["PIP_CONFIG_FILE"] = os.devnull
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return environment


def pip_download(
    pins: Sequence[Pin], python: str, index: str, *, pip: Sequence[str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """``pip download --no-deps --only-binary=:all:`` of `pins` for CPython `python` from `index`."""
    command = list(pip or [sys.executable, "-m", "pip"]) + [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--progress-bar",
        "off",
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--index-url",
        index,
    ]
    for tag in platform_tags():
        command += ["--platform", tag]
    with tempfile.TemporaryDirectory(prefix="ssl-lab-wheels-") as folder:
        command += ["--dest", folder] + [f"{pin.name}=={pin.version}" for pin in pins]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_pip_environment())


def reachable(index: str, timeout: float = 10) -> bool:
    """Whether `index` answers (a HEAD request on its torch page)."""
    try:
        request = urllib.request.Request(f"{index}/torch/", method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _reason(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR")]
    return (lines[0] if lines else output.strip().splitlines()[-1] if output.strip() else "pip failed")[:300]


def check(
    path: str | os.PathLike,
    pythons: Sequence[str],
    *,
    torch_index: str | None = None,
    pypi: str = PYPI,
    pip: Sequence[str] | None = None,
    log=print,
) -> list[Missing]:
    """Every pin of `path` against every version in `pythons`; returns what is missing.

    Args:
        path: a requirements file of ``name==version`` pins.
        pythons: CPython versions, e.g. ``("3.10", "3.11")``.
        torch_index: where torch and torchvision are checked (default: PyPI with the rest).
        pypi: the index for the other pins.
        pip: the pip command (default: this interpreter's).
        log: called with one line per Python version.
    """
    pins = read_pins(path)
    missing: list[Missing] = []
    for python in pythons:
        started = time.monotonic()
        wanted = [pin for pin in pins if pin.applies_to(python)]
        groups = (
            [
                (torch_index, [p for p in wanted if p.name in TORCH_PACKAGES]),
                (pypi, [p for p in wanted if p.name not in TORCH_PACKAGES]),
            ]
            if torch_index
            else [(pypi, wanted)]
        )
        found = 0
        for index, group in groups:
            if not group:
                continue
            result = pip_download(group, python, index, pip=pip)
            if result.returncode == 0:
                found += len(group)
                continue
            for pin in group:  # name every missing pin, not only the first pip stopped at
                single = pip_download([pin], python, index, pip=pip)
                if single.returncode == 0:
                    found += 1
                else:
                    missing.append(Missing(pin, python, index, _reason(single.stdout + single.stderr)))
        log(f"CPython {python}: {found} of {len(wanted)} pins have wheels ({time.monotonic() - started:.0f} s)")
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder wheels", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grader", action="store_true", help="check autograder/requirements-grader.txt only")
    parser.add_argument("--student", action="store_true", help="check requirements.txt only")
    parser.add_argument(
        "--python",
        action="append",
        help="a CPython version to check instead of the claimed ones (repeatable)",
    )
    args = parser.parse_args(argv)
    both = args.grader == args.student
    torch_index = TORCH_CPU_INDEX if reachable(TORCH_CPU_INDEX) else PYPI
    if torch_index == PYPI:
        print(
            f"{TORCH_CPU_INDEX} cannot be reached: torch and torchvision of the grading image are checked "
            "against PyPI's files of the same release"
        )
    problems: list[Missing] = []
    if args.grader or both:
        print(f"{GRADER_REQUIREMENTS.relative_to(PROJECT_ROOT)} (the Gradescope image):")
        problems += check(GRADER_REQUIREMENTS, args.python or GRADER_PYTHONS, torch_index=torch_index)
    if args.student or both:
        print(f"{STUDENT_REQUIREMENTS.relative_to(PROJECT_ROOT)} (students and instructors):")
        problems += check(STUDENT_REQUIREMENTS, args.python or STUDENT_PYTHONS)
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    print("every pin has a wheel" if not problems else f"{len(problems)} pins without a wheel")
    return 1 if problems else 0


__all__ = [
    "GRADER_PYTHONS",
    "GRADER_REQUIREMENTS",
    "Missing",
    "Pin",
    "STUDENT_PYTHONS",
    "STUDENT_REQUIREMENTS",
    "TORCH_CPU_INDEX",
    "check",
    "main",
    "platform_tags",
    "read_pins",
]

if __name__ == "__main__":
    raise SystemExit(main())
