"""An interpreter the sandbox user can read, for grading in ``uid`` mode in the tests.

The ``uid`` mode (root without namespaces: Gradescope's container) needs the grader's Python
and packages where the unprivileged sandbox user can read them; Gradescope's ``setup.sh``
installs them in /opt. The test machines keep theirs in a virtual environment that may lie
under /root (not traversable by other users). This builds the same thing the way setup.sh
would, cheaply: a virtual environment of the system's own ``python3`` (outside /root) whose
site-packages are hard links to the running environment's files (same Python minor version,
so the same compiled extensions), readable by everyone. The grader refuses to run in uid mode
without it (fail closed), which `test_sandbox_modes` checks too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path("/var/tmp/ssl-lab-uid-python")


def _system_python() -> str | None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.access(candidate, os.X_OK) and not os.path.realpath(candidate).startswith("/root"):
            return candidate
    return None


def readable_python() -> tuple[str | None, str]:
    """(path of the interpreter, "") or (None, why it cannot be made)."""
    if os.geteuid() != 0:
        return None, "uid mode needs root"
    system = _system_python()
    if system is None:
        return None, f"no system python{sys.version_info.major}.{sys.version_info.minor} outside /root"
    python = ROOT / "bin" / "python"
    marker = ROOT / ".complete"
    source = Path(sysconfig.get_paths()["purelib"])
    if marker.exists() and marker.read_text() == str(source):
        return str(python), ""
    shutil.rmtree(ROOT, ignore_errors=True)
    subprocess.run([system, "-m", "venv", "--without-pip", str(ROOT)], check=True, capture_output=True)
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    shutil.rmtree(target, ignore_errors=True)
    try:
        subprocess.run(["cp", "-al", str(source), str(target)], check=True, capture_output=True)
    except subprocess.CalledProcessError:  # another file system: copy instead
        shutil.copytree(source, target, symlinks=True)
    for folder in [ROOT, *[p for p in ROOT.rglob("*") if p.is_dir() and not p.is_symlink()]]:
        folder.chmod(0o755)
    marker.write_text(str(source))
    return str(python), ""
