"""Grader side of the sandbox: start the worker, send it calls, read its answers safely.

How a submission is isolated depends on what the machine allows (decided once per process
by `detect_isolation`, which fails closed: it raises SandboxError rather than run code as
root or without confinement):

``namespace`` (the grader runs as root and ``unshare`` works: CI here, a Linux VM)
    The zygote lives in fresh mount, pid, network, ipc and uts namespaces, chrooted into a
    tmpfs root that shows only the system directories, the Python installation and its own
    package copy (all read-only) plus a private, size-capped ``/tmp``. The project
    (``solutions/``, ``autograder/``, ``tests/``), the results file and other submissions
    do not exist there. No network (a loopback that is down); everything left behind dies
    with the namespace.
``uid`` (root, but no namespaces: a container such as Gradescope's, where Docker's default
    profile refuses ``unshare``)
    No private root: the project's secret folders lose world access (``chmod o-rwx``), the
    worker's user is ``sslgrader<N>`` (one per parallel grade-all process), and Landlock (where
    the kernel has it) limits its reads to Python and its package and its writes to a private
    folder. Its leftover processes are killed through the process tree and by uid, and its
    files in the host's ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are removed after every call.
    The sandbox user must be able to run this Python (setup.sh installs it in /opt), else
    grading stops.
``process`` (not root: an instructor's laptop)
    A separate process of the same user, confined by Landlock (required) and seccomp.
``unconfined`` (asked for explicitly, never as root)
    A separate process with the limits only, for code the instructor trusts.

In every mode the zygote never runs submission code and keeps the grader's user (root in
the first two modes); each call gets a child freshly forked from it, which drops to the
sandbox user and confines itself (`autograder.confine`: no groups or capabilities,
no_new_privs, not dumpable, Landlock, seccomp) before it loads the submission. The first
child of a submission is probed (`Worker._verify`): grading stops when it could reach a
secret. Each call has a time limit, and the submission a total budget (the grader's answers
to its requests and the restarts it caused included); memory and disk are capped; output
is captured through a pipe and truncated (first and last few KB per call); answers are
size-capped and parsed by `autograder.protocol`; nothing is ever unpickled.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import json
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The unprivileged user the worker runs as when the grader is root (Gradescope's setup.sh
#: can create it up front: `useradd --system --no-create-home --shell /usr/sbin/nologin sslgrader`).
SANDBOX_USER = "sslgrader"
#: Folders of the project the worker must never read (uid mode makes them non-world-readable).
SECRET_FOLDERS = ("solutions", "autograder", "tests", ".git", "dist", "data")
#: Folders every worker may read (besides the Python installation and its own package).
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc", "/proc", "/sys", "/dev")
#: Modules the zygote imports once so that every worker (re)start is fast.
PRELOAD = ("numpy", "torch", "torch.nn", "torch.nn.functional", "torch.utils.data", "torchvision",
           "sklearn.neighbors", "sklearn.linear_model", "sklearn.metrics", "matplotlib", "matplotlib.pyplot",
           "tqdm", "tqdm.auto", "IPython.display", "kornia", "helpers", "helpers.data", "helpers.augment", "helpers.models",
           "helpers.checkpoint", "helpers.probes", "helpers.train", "helpers.recipes", "helpers.plots",
           "helpers.checks")
#: Files copied into the worker's package (the only grader code the sandbox sees; no answers).
WORKER_MODULES = ("protocol.py", "harness.py", "worker.py", "extract.py", "contract.py", "confine.py")
PACKAGE = "sslgrader_worker"

#: Caps on one answer of the worker: the grader's memory stays bounded whatever a submission returns.
MAX_RESPONSE_HEADER = 2 * 2**20
MAX_RESPONSE_PAYLOAD = 32 * 2**20
OUTPUT_HEAD = 1200  # bytes kept of what one call printed: the first ...
OUTPUT_TAIL = 1200  # ... and the last (results.PRINTED_CHARS shows both)
MARKER_DIGITS = 20  # digits of a call's sequence number in its end marker (at most)
DISK_INODES = 20_000  # files a worker may create outside a tmpfs of its own (uid, process modes)


# ======================================================================================
# Limits and isolation
# ======================================================================================
def _available_memory_mb() -> int:
    available = psutil.virtual_memory().available
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            available = min(available, int(limit) - usage)
    return max(0, available // 2**20)


def _protocol() -> Any:
    """`autograder.protocol`, imported on first use: it imports torch, and the command line
    starts the sandbox before the grader pays for that import."""
    from autograder import protocol

    return protocol


def preload_for(imported: set[str]) -> tuple[str, ...]:
    """The allow-listed PRELOAD modules a submission imports (plus torch): what its zygote
    should import once. Nothing outside the allow-list is ever imported in the zygote."""
    return tuple(m for m in PRELOAD if m == "torch" or any(i == m or i.startswith(m + ".") or m.startswith(i + ".")
                                                          for i in imported))


def default_memory_mb() -> int:
    """Memory a worker may use above its start-up size: half of what is free, 256-1536 MB."""
    return int(min(1536, max(256, _available_memory_mb() // 2)))


@dataclass
class Limits:
    """Per-worker limits.

    Attributes:
        call_timeout: seconds one call of the submission's code may take.
        load_timeout: seconds one top-level statement may take while the submission is loaded
            (an import of a library the sandbox did not preload can be slow on a busy machine).
        start_timeout: seconds the worker may take to start (imports torch & co.).
        memory_mb: memory above the worker's start-up size (address space and RSS).
        file_mb: largest file the worker may write.
        tmp_mb: size of its private /tmp and /dev/shm (namespace mode).
        processes: RLIMIT_NPROC of the sandbox user (threads count too; not in process mode).
        budget_s: wall time of the submission's code in all (loading, calls and the grader's
            answers to its requests); when it is used up, the remaining tests fail at once.
        load_total: seconds all statements together may take to load (each has `load_timeout`).
    """

    call_timeout: float = 10.0
    load_timeout: float = 30.0
    start_timeout: float = 240.0
    memory_mb: int = field(default_factory=default_memory_mb)
    file_mb: int = 64
    tmp_mb: int = 256
    processes: int = 512
    budget_s: float = 60.0
    load_total: float = 60.0


@dataclass
class Isolation:
    """What the sandbox does on this machine (see the module docstring)."""

    mode: str  # "namespace" | "uid" | "process" | "unconfined"
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = {
            "namespace": f"sandbox: namespaces (mount, pid, net), private root, user {self.user}",
            "uid": f"sandbox: separate user {self.user}, no namespaces",
            "process": "sandbox: separate process of your user, confined by Landlock and seccomp (not running as root)",
            "unconfined": "sandbox: NONE (separate process only, --isolation unconfined)",
        }[self.mode]
        return head + "".join(f"\n  - {note}" for note in self.notes)


class SandboxError(RuntimeError):
    """The sandbox itself failed (a grader problem, not the submission's)."""


_ISOLATION: dict[str, Isolation] = {}


def ensure_user(name: str = SANDBOX_USER) -> tuple[int, int, str]:
    """(uid, gid, name) of the dedicated sandbox user, created if absent (SandboxError if it
    cannot be: sharing a user such as `nobody` with other software is not isolation)."""
    try:
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid, name
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    try:
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "--user-group", name], check=True, capture_output=True, timeout=30)
        entry = pwd.getpwnam(name)
    except (OSError, subprocess.SubprocessError, KeyError) as error:
        raise SandboxError(f"the sandbox user {name} does not exist and could not be created ({error}); create it "
                           f"with `useradd --system --no-create-home --shell /usr/sbin/nologin --user-group {name}`") from None
    if entry.pw_uid == 0:
        raise SandboxError(f"the sandbox user {name} has uid 0")
    return entry.pw_uid, entry.pw_gid, name


def _namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    try:
        result = subprocess.run([unshare, "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child",
                                 "--", sys.executable, "-c", "pass"], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _python_runs_as(uid: int, gid: int) -> bool:
    """Whether `uid` can start this Python and import torch (every module a submission may
    import lazily must be readable by the sandbox user)."""
    try:
        result = subprocess.run([sys.executable, "-I", "-c", "import torch"], user=uid, group=gid, extra_groups=[],
                                capture_output=True, timeout=240, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def protect_paths(paths: list[Path]) -> list[str]:
    """Remove world access from `paths` (owner and group unchanged); returns what was changed."""
    changed = []
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & 0o007:
            try:
                path.chmod(mode & ~0o007)
            except OSError:
                continue
            changed.append(str(path))
    return changed


def protect_tree(root: Path = PROJECT_ROOT) -> list[str]:
    """Remove world access from the project's secret folders; returns what was changed."""
    return [Path(p).name for p in protect_paths([root / name for name in SECRET_FOLDERS])]


MODES = ("auto", "namespace", "uid", "process", "unconfined")


def detect_isolation(requested: str = "auto") -> Isolation:
    """Decide how to isolate the worker on this machine (cached per requested mode).

    Fails closed: raises SandboxError, naming what is missing, whenever the submission could
    run as root or with access to the grader. ``process`` (not root) and ``uid`` are checked
    again by the worker's probe when the sandbox starts (`Worker._verify`).
    """
    if requested in _ISOLATION:
        return _ISOLATION[requested]
    if requested not in MODES:
        raise ValueError(f"unknown isolation {requested!r}; use one of {', '.join(MODES)}")
    root = os.geteuid() == 0
    if requested == "unconfined":
        if root:
            raise SandboxError("refusing to run submissions unconfined as root; use --isolation auto")
        isolation = Isolation("unconfined", notes=[
            "UNCONFINED (--isolation unconfined): the submission runs as you, in a separate process with time "
            "and memory limits only, and can read and write whatever you can. Use it only for code you trust."])
    elif not root:
        if requested in ("namespace", "uid"):
            raise SandboxError(f"--isolation {requested} needs the grader to run as root (it switches to the "
                               f"unprivileged user {SANDBOX_USER})")
        isolation = Isolation("process", notes=[
            "the submission runs as you, in a separate process confined by Landlock (it can read only Python "
            "and its packages, and write only a private folder) and seccomp, with time and memory limits"])
    elif requested == "process":
        raise SandboxError("--isolation process would run the submission as root; use auto, namespace or uid")
    elif requested in ("auto", "namespace") and _namespaces_work():
        isolation = Isolation("namespace", *ensure_user())
    elif requested == "namespace":
        raise SandboxError("--isolation namespace: namespaces (unshare) are not available here")
    else:
        # Without pid namespaces, processes of one uid can signal each other: parallel grading
        # processes (grade-all) each get their own user, sslgrader<slot>.
        uid, gid, user = ensure_user(SANDBOX_USER + os.environ.get("SSLGRADER_SLOT", ""))
        if not _python_runs_as(uid, gid):
            raise SandboxError(
                f"the sandbox user {user} cannot run {sys.executable} and import torch, and the grader cannot use "
                f"namespaces here (unshare refused, or --isolation uid), so submissions cannot be isolated. Install Python and the requirements "
                f"where {user} can read them (outside /root, e.g. a virtual environment in /opt; the Gradescope "
                f"setup.sh does this), or run the grader where unshare works.")
        notes = ["no namespaces (unshare refused, or --isolation uid): the submission runs as its own user, confined by "
                 "Landlock and seccomp where the kernel allows (see 'applied' below); its leftover processes and "
                 "files are removed after every call"]
        changed = protect_tree()
        if changed:
            notes.append("removed world access from " + ", ".join(changed) + " so that user cannot read them")
        isolation = Isolation("uid", uid, gid, user, notes)
    _ISOLATION[requested] = isolation
    return isolation


def confinement_problems(isolation: Isolation, applied: dict) -> list[str]:
    """What makes the confinement a child reported (`autograder.confine.Confinement`) too weak
    for its mode; empty when it is enough."""
    if isolation.mode == "unconfined":
        return []
    problems = []
    if applied.get("uid") in (0, None):
        problems.append("the worker would run as root")
    if isolation.uid is not None and applied.get("uid") != isolation.uid:
        problems.append(f"the worker runs as uid {applied.get('uid')}, not as {isolation.user}")
    if isolation.mode in ("namespace", "uid") and applied.get("groups"):
        problems.append(f"the worker kept supplementary groups {applied.get('groups')}")
    if str(applied.get("capabilities", "")).strip("0"):
        problems.append(f"the worker kept capabilities ({applied.get('capabilities')})")
    if not applied.get("no_new_privs"):
        problems.append("no_new_privs could not be set")
    if applied.get("dumpable"):
        problems.append("the worker is dumpable (another process of its user could trace it)")
    if isolation.mode == "process" and not str(applied.get("landlock", "")).startswith("applied"):
        problems.append(f"Landlock is needed when the grader does not run as root, and it is "
                        f"{applied.get('landlock')}; run the grader as root (it then uses a separate user), or "
                        f"pass --isolation unconfined to run code you trust without confinement")
    return problems


def applied_summary(applied: dict | None) -> str:
    """One line on what confined the last submission's worker (for the instructor's output)."""
    if not applied:
        return "confinement: not probed"
    return (f"confinement: uid {applied.get('uid')}, groups {applied.get('groups') or 'none'}, capabilities none, "
            f"no_new_privs, not dumpable; Landlock {applied.get('landlock')}; seccomp {applied.get('seccomp')}")


def _set_subreaper() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    except (OSError, AttributeError):
        pass


# ======================================================================================
# Submission faults: how a call can fail because of the submission
# ======================================================================================
class SubmissionFault(Exception):
    """A call failed because of the submission; `str()` is the message for the student.

    What the submission printed meanwhile is not part of the message: `Worker.take_output`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotImplementedYet(SubmissionFault):
    pass


class MissingDefinition(SubmissionFault):
    pass


class CodeRaised(SubmissionFault):
    pass


class WorkerDied(SubmissionFault):
    pass


class CallTimedOut(SubmissionFault):
    pass


class BadAnswer(SubmissionFault):
    pass


class BudgetExhausted(SubmissionFault):
    pass


@dataclass
class Budget:
    """Wall time a submission's code may take in all: loading, every call, and the grader's
    answers to its requests during a call (`Limits.budget_s`)."""

    seconds: float
    used: float = 0.0

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.used)


# ======================================================================================
# Output capture
# ======================================================================================
class OutputCapture:
    """The worker's stdout+stderr, cut into one segment per call by the worker's end markers.

    Every segment keeps its first `OUTPUT_HEAD` and last `OUTPUT_TAIL` bytes and counts the
    rest, so megabytes of printing cost nothing but the reading.
    """

    def __init__(self, token: str) -> None:
        self.prefix = f"\x00SSLG-END:{token}:".encode()
        self.pending = bytearray()
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.ended: list[int] = []

    def _add(self, data: bytes) -> None:
        self.total += len(data)
        room = OUTPUT_HEAD - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > OUTPUT_TAIL:
                del self.tail[: len(self.tail) - OUTPUT_TAIL]

    def feed(self, data: bytes) -> None:
        self.pending += data
        while True:
            at = self.pending.find(self.prefix)
            if at < 0:
                keep = len(self.prefix) + 24  # a marker may be split across reads
                if len(self.pending) > keep:
                    self._add(bytes(self.pending[:-keep]))
                    del self.pending[:-keep]
                return
            digits = at + len(self.prefix)
            # A real marker ends with a few digits and a NUL: look no further than that, so a
            # prefix without its end (the submission printing it) is plain output, never a
            # reason to hold everything after it.
            end = self.pending.find(b"\x00", digits, digits + MARKER_DIGITS + 1)
            if end < 0:
                if len(self.pending) - digits <= MARKER_DIGITS:  # may still arrive
                    self._add(bytes(self.pending[:at]))
                    del self.pending[:at]
                    return
                self._add(bytes(self.pending[: at + 1]))
                del self.pending[: at + 1]
                continue
            self._add(bytes(self.pending[:at]))
            try:
                self.ended.append(int(self.pending[digits:end]))
            except ValueError:
                pass
            del self.pending[: end + 1]

    def take(self, flush: bool = False) -> str:
        """The text captured since the last `take` (with the middle elided if it was long)."""
        if flush and self.pending:
            self._add(bytes(self.pending))
            self.pending.clear()
        head, tail, total = bytes(self.head), bytes(self.tail), self.total
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        if total == 0:
            return ""
        text = head.decode("utf-8", "replace")
        if tail:
            omitted = total - len(head) - len(tail)
            if omitted > 0:
                text += f"\n[... {omitted} bytes of output omitted ...]\n"
            text += tail.decode("utf-8", "replace")
        return text.replace("\x00", "")


# ======================================================================================
# Zygote handle
# ======================================================================================
def _python_paths() -> list[str]:
    """Folders the worker needs to run this Python with its packages (exposed read-only)."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), *site.getsitepackages()}
    for path in list(candidates):
        candidates.add(os.path.realpath(path))
    system = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc")
    project = str(PROJECT_ROOT)
    chosen: list[str] = []
    for path in sorted(candidates, key=len):
        if not os.path.isdir(path) or path.startswith(system) or path == "/":
            continue
        if project == path or project.startswith(path + os.sep):
            raise SandboxError(f"Python lives at {path}, which contains the project; create the virtual "
                               "environment inside the project (e.g. .venv) or install Python elsewhere")
        if not any(path == c or path.startswith(c + os.sep) for c in chosen):
            chosen.append(path)
    return chosen


def remove_tree(path: str | os.PathLike) -> None:
    """Remove `path` and everything below it, however deep a submission nested it (no
    recursion in Python, no path longer than PATH_MAX: GNU rm walks it with fts), never
    following a link; errors are ignored, as for a folder that is already gone."""
    path = str(path)
    if not os.path.lexists(path):
        return
    rm = shutil.which("rm") or "/bin/rm"
    try:
        subprocess.run([rm, "-rf", "--one-file-system", "--", path], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        pass
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        try:
            os.unlink(path)
        except OSError:
            pass


def _remove_stale_workdirs() -> None:
    """Remove the work folders of sandboxes whose grader process no longer exists (killed
    before it could clean up)."""
    for folder in Path(tempfile.gettempdir()).glob("sslgrader-*"):
        try:
            owner = int((folder / "grader.pid").read_text())
        except (OSError, ValueError):
            continue
        if not psutil.pid_exists(owner):
            remove_tree(folder)


def _prepare_package(workdir: Path, uid: int | None, gid: int | None) -> Path:
    """Copy the worker modules and `helpers` into `workdir/pkg` (readable, not writable, by the worker)."""
    pkg = workdir / "pkg"
    (pkg / PACKAGE).mkdir(parents=True)
    (pkg / PACKAGE / "__init__.py").write_text('"""Copy of the autograder\'s worker modules (no answers)."""\n')
    here = Path(__file__).resolve().parent
    for name in WORKER_MODULES:
        shutil.copy2(here / name, pkg / PACKAGE / name)
    shutil.copytree(PROJECT_ROOT / "helpers", pkg / "helpers", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [workdir, *pkg.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    pkg.chmod(0o755)
    return pkg


class Zygote:
    """The grader's handle on one sandbox (its zygote process and the worker it forks)."""

    def __init__(self, isolation: Isolation, limits: Limits, preload: tuple[str, ...] = PRELOAD) -> None:
        self.isolation = isolation
        self.limits = limits
        self.preload = preload
        _remove_stale_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix="sslgrader-"))
        self.workdir.chmod(0o755)
        (self.workdir / "grader.pid").write_text(str(os.getpid()))
        self.process: subprocess.Popen | None = None
        self.ctrl: socket.socket | None = None
        self.log_path = self.workdir / "zygote.log"
        self.ready: dict | None = None
        self.host_pid: int | None = None
        self.preexisting: set[int] = set()
        self.confine: dict = {}
        self.applied: dict | None = None  # the confinement the first child reported (Worker._verify)
        self._start()

    # --- life cycle -----------------------------------------------------------------------
    def _start(self) -> None:
        iso = self.isolation
        _set_subreaper()
        self.preexisting = {c.pid for c in psutil.Process().children(recursive=True)}
        pkg = _prepare_package(self.workdir, iso.uid, iso.gid)
        if iso.mode == "namespace":
            home = "/tmp"
            wipe = ["/tmp", "/dev/shm"]
        else:
            home_path = self.workdir / "home"
            home_path.mkdir()
            if iso.uid is not None:
                os.chown(home_path, iso.uid, iso.gid)
            home_path.chmod(0o700)
            home = str(home_path)
            wipe = [home]
        expose = _python_paths()
        #: How each child confines itself (autograder.confine): what it may read and write.
        self.confine = {"uid": iso.uid, "gid": iso.gid, "writable": wipe,
                        "readable": [*SYSTEM_FOLDERS, *expose, str(pkg)]}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {
            "mode": iso.mode, "ctrl_fd": theirs.fileno(),
            "pkg": str(pkg), "newroot": str(self.workdir / "root"), "expose": expose,
            "tmp_mb": self.limits.tmp_mb, "preload": list(self.preload), "wipe": wipe,
        }
        (self.workdir / "root").mkdir()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MALLOC_ARENA_MAX": "2", "CUDA_VISIBLE_DEVICES": "", "SSL_LAB_DEVICE": "cpu",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": os.path.join(home, ".mpl"), "TQDM_DISABLE": "1",
            "JOBLIB_MULTIPROCESSING": "0", "LOKY_MAX_CPU_COUNT": "1",
        }
        launch = ("import sys; sys.path.insert(0, sys.argv[1]); "
                  f"import {PACKAGE}.worker as worker; worker.main(sys.argv[1:])")
        command = [sys.executable, "-I", "-B", "-c", launch, str(pkg), json.dumps(config)]
        kwargs: dict[str, Any] = {}
        if iso.mode == "namespace":
            command = [shutil.which("unshare") or "unshare", "--mount", "--net", "--pid", "--ipc", "--uts",
                       "--fork", "--kill-child", "--", *command]
        # The zygote keeps the grader's user (root in the namespace and uid modes: no worker can
        # signal or trace it); each forked child drops to the sandbox user and confines itself.
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            pass_fds=[theirs.fileno()], env=env, cwd="/",
                                            start_new_session=True, **kwargs)
        finally:
            log.close()
            theirs.close()
        self.ctrl = ours

    def wait_ready(self) -> dict:
        """Block until the zygote has imported everything (or raise SandboxError)."""
        if self.ready is None:
            event = self._receive(self.limits.start_timeout, "start")
            if event.get("event") != "ready":
                raise SandboxError(f"the worker sent {event!r} instead of starting")
            self.ready = event
            self.host_pid = self._find_zygote_pid()
        return self.ready

    def _find_zygote_pid(self) -> int:
        assert self.process is not None
        if self.isolation.mode != "namespace":
            return self.process.pid
        for _ in range(100):
            children = psutil.Process(self.process.pid).children()
            if children:
                return children[0].pid
            time.sleep(0.02)
        raise SandboxError("the worker's namespace has no process")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def _receive(self, timeout: float, what: str) -> dict:
        assert self.ctrl is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError(f"the worker did not answer ({what}) within {timeout:.0f} s\n{self._log_tail()}")
            self.ctrl.settimeout(min(remaining, 0.5))
            try:
                data = self.ctrl.recv(1 << 16)
            except socket.timeout:
                if not self.alive():
                    raise SandboxError(f"the worker process exited during {what}:\n{self._log_tail()}") from None
                continue
            if not data:
                raise SandboxError(f"the worker process closed its channel during {what}:\n{self._log_tail()}")
            return json.loads(data)

    def send(self, command: dict, fds: list[int] | None = None) -> None:
        assert self.ctrl is not None
        data = json.dumps(command).encode()
        if fds:
            socket.send_fds(self.ctrl, [data], fds)
        else:
            self.ctrl.send(data)

    def receive_event(self, timeout: float) -> dict:
        return self._receive(timeout, "a command")

    def poll_event(self) -> dict | None:
        """A pending control event, if any (non-blocking)."""
        assert self.ctrl is not None
        self.ctrl.settimeout(0)
        try:
            data = self.ctrl.recv(1 << 16)
        except (BlockingIOError, socket.timeout):
            return None
        except OSError:
            return {"event": "gone"}
        return json.loads(data) if data else {"event": "gone"}

    def reset(self, wipe: bool = False) -> None:
        """Kill every process of the sandbox but the zygote (and wipe its /tmp if `wipe`)."""
        self.send({"cmd": "reset", "wipe": wipe})
        while True:
            event = self.receive_event(30)
            if event.get("event") == "reset":
                break
        if self.isolation.mode == "uid" and self.isolation.uid is not None:
            remove_files_of(self.isolation.uid)

    def sandbox_processes(self) -> list[psutil.Process]:
        """The processes of this sandbox other than the zygote (host view)."""
        if self.host_pid is None:
            return []
        try:
            return psutil.Process(self.host_pid).children(recursive=True)
        except psutil.Error:
            return []

    def close(self) -> None:
        """Stop the zygote and kill everything it (or the submission) started."""
        if self.process is not None:
            try:
                if self.alive():
                    self.send({"cmd": "exit"})
                    self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            for pid in [self.process.pid]:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.process.kill()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.process = None
        kill_leftovers(self.preexisting)
        if self.isolation.mode == "uid":  # the sandbox user is this grading process's alone (one per slot)
            for process in psutil.process_iter(["uids"]):
                try:
                    if process.info["uids"] and process.info["uids"].real == self.isolation.uid:
                        process.kill()
                except psutil.Error:
                    pass
            remove_files_of(self.isolation.uid)
        if self.ctrl is not None:
            self.ctrl.close()
            self.ctrl = None
        remove_tree(self.workdir)


SHARED_TEMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def remove_files_of(uid: int, folders: tuple[str, ...] = SHARED_TEMP_FOLDERS) -> int:
    """Remove what `uid` created in the shared temporary folders (uid mode without Landlock
    can write there); returns the number of entries removed."""
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries[:100_000]:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                remove_tree(entry.path)
                removed += 1
            except OSError:
                continue
    return removed


def kill_leftovers(preexisting: set[int] = frozenset()) -> int:
    """Kill this process's descendants that were not there before (subreaper orphans included)."""
    killed = 0
    for _ in range(50):
        victims = [p for p in psutil.Process().children(recursive=True) if p.pid not in preexisting]
        if not victims:
            break
        for process in victims:
            try:
                process.kill()
                killed += 1
            except psutil.Error:
                pass
        psutil.wait_procs(victims, timeout=1)
    return killed


_ZYGOTES: dict[tuple, Zygote] = {}


def shared_zygote(isolation: Isolation, limits: Limits, preload: tuple[str, ...] = PRELOAD) -> Zygote:
    """A started zygote for these settings, reused across submissions in this process
    (`preload` applies when it has to be started)."""
    key = (isolation.mode, limits.memory_mb, limits.tmp_mb, limits.file_mb, limits.processes)
    zygote = _ZYGOTES.get(key)
    if zygote is None or not zygote.alive():
        if zygote is not None:
            zygote.close()
        zygote = _ZYGOTES[key] = Zygote(isolation, limits, preload)
    zygote.limits = limits
    return zygote


@atexit.register
def close_all() -> None:
    """Close every zygote of this process (also run at exit)."""
    for zygote in list(_ZYGOTES.values()):
        zygote.close()
    _ZYGOTES.clear()


# ======================================================================================
# A submission's worker
# ======================================================================================
@dataclass
class LoadReport:
    """How loading the submission's statements went."""

    errors: dict[str, str] = field(default_factory=dict)  # name -> why it is not defined
    skipped: dict[int, str] = field(default_factory=dict)  # statement index -> why it was skipped
    output: str = ""


class Worker:
    """Runs operations on one submission in the sandbox; restarts the child after a failure.

    Args:
        zygote: the sandbox to fork workers from.
        statements: `autograder.extract.statements_payload(...)` of the submission.
        limits: time and memory limits.
    """

    MAX_LOAD_RESTARTS = 4

    def __init__(self, zygote: Zygote, statements: dict, limits: Limits, budget: Budget | None = None,
                 secrets: dict | None = None, restart_zygote: Callable[[], Zygote] | None = None) -> None:
        self.zygote = zygote
        self.statements = statements
        self.limits = limits
        self.budget = budget or Budget(limits.budget_s)
        self.secrets = secrets or {"read": [], "write": []}
        self.restart_zygote = restart_zygote
        self.verified = False
        self.used = False  # the child has run an operation: the next one gets a fresh child
        self.loaded_once = False
        self.names = {s["index"]: s for s in statements["statements"]}
        self.load_report = LoadReport()
        self.child_alive = False
        self.started_once = False
        self.seq = 0
        self.token = ""
        self.capture = OutputCapture("")
        self.request_fd = self.response_fd = self.output_fd = -1
        self.protocol = _protocol()
        self.reader: Any = None
        self.child_host_pid: int | None = None
        self.rss_baseline = 0
        self.pending_output = ""
        self.restarts = 0
        self._memory_checked = 0.0
        self._budget_bound = False
        self.disk_baseline = (0, 0)

    # --- child life cycle -------------------------------------------------------------------
    def _close_pipes(self) -> None:
        for fd in (self.request_fd, self.response_fd, self.output_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.request_fd = self.response_fd = self.output_fd = -1

    def _kill_child(self) -> None:
        if self.child_host_pid is not None:
            try:
                os.kill(self.child_host_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.child_alive = False
        self._drain_output()
        self._close_pipes()

    def _spawn(self) -> None:
        started = time.monotonic()
        restarted = False
        if not self.zygote.alive() and self.restart_zygote is not None:
            # The zygote is gone (e.g. killed from a submission's worker in process mode): the next
            # call gets a new sandbox; what failed meanwhile was reported as the submission's.
            self.zygote = self.restart_zygote()
            self.started_once = False
            restarted = True
        self.zygote.wait_ready()
        if self.started_once:
            try:
                self.zygote.reset(wipe=True)
            except (SandboxError, OSError, ValueError):
                if self.restart_zygote is None:
                    raise
                self.zygote.close()
                self.zygote = self.restart_zygote()
                self.zygote.wait_ready()
                restarted = True
            self.restarts += 1
        if restarted and self.verified:  # a sandbox this submission broke: its time is the submission's
            self.budget.used += time.monotonic() - started
        self.started_once = True
        while self.zygote.poll_event() is not None:  # stale events of a previous child
            pass
        request_r, request_w = os.pipe()
        response_r, response_w = os.pipe()
        output_r, output_w = os.pipe()
        self.token = secrets.token_hex(8)
        limits = {"memory_mb": self.limits.memory_mb, "file_mb": self.limits.file_mb,
                  "processes": self.limits.processes if self.zygote.isolation.mode != "process" else 0}
        try:
            self.zygote.send({"cmd": "spawn", "token": self.token, "limits": limits, "confine": self.zygote.confine},
                             [request_r, response_w, output_w])
        finally:
            for fd in (request_r, response_w, output_w):
                os.close(fd)
        while True:
            event = self.zygote.receive_event(30)
            if event.get("event") == "spawned":
                break
            if event.get("event") != "exited":  # (a previous child's exit may still be queued)
                raise SandboxError(f"the worker could not fork: {event}")
        self.request_fd, self.response_fd, self.output_fd = request_w, response_r, output_r
        for fd in (request_w, response_r, output_r):
            os.set_blocking(fd, False)
            try:
                fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MB pipes, fewer wake-ups for large transfers
            except OSError:
                pass
        self.capture = OutputCapture(self.token)
        self.reader = self.protocol.FrameReader(MAX_RESPONSE_HEADER, MAX_RESPONSE_PAYLOAD)
        self.child_host_pid = self._find_child(event["pid"])
        self.child_alive = True
        try:
            self.rss_baseline = psutil.Process(self.child_host_pid).memory_info().rss if self.child_host_pid else 0
        except psutil.Error:
            self.rss_baseline = 0
        self.used = False
        self.disk_baseline = self._disk_free()
        if not self.verified:
            self._verify()

    def _verify(self) -> None:
        """Probe the fresh child (no submission code has run in it yet): how it is confined, and
        whether it can reach anything it must not. Fails closed with a SandboxError."""
        answer: dict[str, Any] = {}

        def on_frame(header: dict, value: Any) -> bool:
            if header.get("kind") == "result":
                answer["value"] = value
                return True
            raise BadAnswer("the worker sent an unexpected message")

        own = [w.rstrip("/") for w in self.zygote.confine.get("writable", [])]

        def theirs(path: str) -> bool:  # not the worker's own private folder (or a folder holding it)
            path = path.rstrip("/") or "/"
            return not any(w == path or w.startswith(path.rstrip("/") + "/") for w in own)

        probe = {key: [p for p in self.secrets.get(key, []) if theirs(p)] for key in ("read", "write")}
        try:
            self._exchange({"kind": "probe"}, probe, on_frame, timeout=60, count=False)
        except SubmissionFault as failure:
            raise SandboxError(f"the sandbox's self-check failed: {failure.message}\n{self.zygote._log_tail()}") from None
        value = answer.get("value") or {}
        confinement = value.get("confinement") or {}
        problems = confinement_problems(self.zygote.isolation, confinement)
        reached = [str(r) for r in value.get("reached") or []]
        if reached and self.zygote.isolation.mode != "unconfined":
            problems.append("the sandboxed worker could " + "; ".join(reached))
        if problems:
            raise SandboxError(f"the sandbox cannot isolate submissions here ({self.zygote.isolation.mode} mode): "
                               + "; ".join(problems) + ". Grading stopped: no submission code was run.")
        self.zygote.applied = confinement
        self.verified = True

    def _find_child(self, pid_in_sandbox: int) -> int | None:
        if self.zygote.isolation.mode != "namespace":
            return pid_in_sandbox
        for process in self.zygote.sandbox_processes():
            try:
                with open(f"/proc/{process.pid}/status") as handle:
                    for line in handle:
                        if line.startswith("NSpid:") and int(line.split()[-1]) == pid_in_sandbox:
                            return process.pid
            except (OSError, ValueError):
                continue
        return None

    def ensure_started(self) -> None:
        """Start a child and load the submission into it (skipping statements that hung or
        crashed a previous child)."""
        if self.child_alive and not self.used:
            return
        if self.child_alive:
            self._kill_child()
        for _ in range(self.MAX_LOAD_RESTARTS + 1):
            self._spawn()
            try:
                self._load()
                return
            except _StatementFailed as failed:
                self.load_report.skipped[failed.index] = failed.reason
                statement = self.names.get(failed.index, {})
                for name in statement.get("names", []):
                    self.load_report.errors[name] = (f"defining it in {statement.get('label')} line "
                                                     f"{statement.get('lineno')} {failed.reason}, so it was skipped")
        # Too many bad statements: skip all that were not loaded yet.
        self._spawn()
        self.load_report.skipped.update({i: "not loaded: earlier definitions kept crashing the worker"
                                         for i in self.names if i not in self.load_report.skipped})
        self._load()

    def _load(self) -> None:
        payload = {**self.statements, "skip": sorted(self.load_report.skipped)}
        order = iter([s["index"] for s in self.statements["statements"] if s["index"] not in self.load_report.skipped])
        current: list[int | None] = [None]
        last: list[int | None] = [None]
        errors: dict[str, str] = {}

        def on_frame(header: dict, value: Any) -> bool:
            # Statements load in the order sent: a frame out of that order was written by the
            # statement now loading (to blame another one, or to look busy), which is blamed.
            kind = header.get("kind")
            if kind == "loading":
                if current[0] is not None or header.get("index") != next(order, None):
                    raise BadAnswer("the worker reported loading statements out of order")
                current[0] = last[0] = header.get("index")
                return False
            if kind == "loaded":
                index = header.get("index")
                if index != current[0]:
                    raise BadAnswer("the worker reported loading statements out of order")
                statement = self.names.get(index, {})
                for name in statement.get("names", []):
                    if header.get("ok"):
                        errors.pop(name, None)
                    else:
                        errors[name] = (f"defining it in {statement.get('label')} line {statement.get('lineno')} "
                                        f"raised:\n{str(header.get('error', ''))[:1500]}")
                current[0] = None
                return False
            return kind == "result"

        try:
            self._exchange({"kind": "load"}, payload, on_frame, timeout=self.limits.load_timeout, per_frame=True,
                           total=self.limits.load_total)
        except (CallTimedOut, WorkerDied, BadAnswer) as failure:
            # Between two statements only the worker's own code runs, unless a statement left
            # something behind (a thread, a signal handler): the last one loaded is to blame.
            culprit = current[0] if current[0] is not None else last[0]
            if culprit is None:
                raise SandboxError(f"the worker failed before loading the submission: {failure.message}") from None
            reason = ("took longer than %.0f s" % self.limits.load_timeout if isinstance(failure, CallTimedOut)
                      else "crashed the worker (" + failure.message.split("\n")[0] + ")")
            output = self.take_output()
            if not self.loaded_once:
                self.load_report.output += output
            raise _StatementFailed(culprit, reason) from None
        for name, message in errors.items():
            self.load_report.errors.setdefault(name, message)
        output = self.take_output()
        if not self.loaded_once:  # every call reloads the submission: keep what the first load printed
            self.load_report.output += output
        self.loaded_once = True

    # --- calls ------------------------------------------------------------------------------
    def run(self, op: str, kwargs: dict, timeout: float | None = None,
            callbacks: dict[str, Callable[[Any], Any]] | None = None) -> Any:
        """Run a harness operation on the submission; returns its decoded result.

        Raises:
            SubmissionFault (a subclass): the submission's code failed, hung, crashed the
                worker, left a name undefined, or sent something unusable.
            SandboxError: the sandbox itself failed.
        """
        if self.budget.remaining() <= 0:
            raise BudgetExhausted(self._budget_message())
        self.ensure_started()
        self.used = True
        result: dict[str, Any] = {}

        def on_frame(header: dict, value: Any) -> bool:
            if header.get("kind") == "callback":
                self._answer_callback(header, value, callbacks or {})
                return False
            if header.get("kind") == "result":
                result["header"], result["value"] = header, value
                return True
            raise BadAnswer("the worker sent an unexpected message")

        self._exchange({"kind": "op", "op": op}, kwargs, on_frame, timeout=timeout or self.limits.call_timeout)
        return self._interpret(result["header"], result["value"])

    def take_output(self) -> str:
        text, self.pending_output = self.pending_output, ""
        return text

    def _answer_callback(self, header: dict, value: Any, callbacks: dict) -> None:
        handler = callbacks.get(str(header.get("name")))
        if handler is None:
            reply = {"kind": "callback_error", "seq": self.seq, "message": "this operation takes no such request"}
            frame = self.protocol.pack_frame(reply)
        else:
            try:
                frame = self.protocol.pack_message({"kind": "callback_result", "seq": self.seq}, handler(value))
            except SubmissionFault as fault:
                frame = self.protocol.pack_frame({"kind": "callback_error", "seq": self.seq, "message": fault.message})
        self._write(frame, time.monotonic() + 30)

    def _interpret(self, header: dict, value: Any) -> Any:
        status = header.get("status")
        if status == "ok":
            return value
        summary = str(header.get("summary", ""))[-3000:]
        if status == "not_implemented":
            frames = re.findall(r'File "<(cell [^>]*)>", line (\d+), in (\w+)', summary)
            where = f": `{frames[-1][2]}` ({frames[-1][0]}, line {frames[-1][1]})" if frames else ""
            raise NotImplementedYet(f"not implemented yet{where} still raises NotImplementedError. Replace the "
                                    "`raise NotImplementedError()` line by your answer.")
        if status == "missing":
            name = str(header.get("name"))[:100]
            detail = self.load_report.errors.get(name)
            raise MissingDefinition(f"`{name}` is not defined in your notebook"
                                    + (f": {detail}" if detail else " (check the name and that its cell is a code cell)"))
        if status == "raised":
            kind = str(header.get("type", "Exception"))[:100]
            if kind == "SystemExit":
                message = f"your code called sys.exit({header.get('exit_code', '')}) (or raised SystemExit)"
            else:
                message = f"your code raised {kind}"
            if kind == "MemoryError" or "can't allocate memory" in summary:
                message += f" (the worker may use about {self.limits.memory_mb} MB of memory)"
            raise CodeRaised(message + (f":\n{summary}" if summary else ""))
        if status == "fault":
            message = str(header.get("message", ""))[:2000]
            raise BadAnswer(message + (f"\n{summary}" if summary and "<cell " in summary else ""))
        raise BadAnswer(f"the worker answered with an unknown status {str(status)[:40]!r}")

    # --- the exchange loop --------------------------------------------------------------------
    def _write(self, frame: bytes, deadline: float) -> None:
        view = memoryview(frame)
        while view:
            try:
                written = os.write(self.request_fd, view)
                view = view[written:]
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, OSError):
                raise _ChildGone() from None
            self._wait(deadline, want_write=True)

    def _wait(self, deadline: float, want_write: bool = False) -> None:
        """Wait for the worker's pipes or the zygote (draining output meanwhile)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline()
        assert self.zygote.ctrl is not None
        readers = [self.output_fd, self.response_fd, self.zygote.ctrl]
        readable, _, _ = select.select(readers, [self.request_fd] if want_write else [], [], min(remaining, 0.25))
        if self.output_fd in readable:
            self._drain_output()
        if self.zygote.ctrl in readable:
            event = self.zygote.poll_event()
            if event is not None and event.get("event") in ("exited", "gone"):
                raise _ChildGone(event.get("status"))
        now = time.monotonic()
        if now - self._memory_checked > 0.2:
            self._memory_checked = now
            self._check_memory()

    def _drain_output(self) -> None:
        # At most a few MB per visit: a worker that prints faster than this reads must not keep
        # the grader from checking its time limits.
        for _ in range(64):
            if self.output_fd < 0:
                return
            try:
                data = os.read(self.output_fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                return
            self.capture.feed(data)

    def _read_frames(self) -> list[tuple[dict, Any]]:
        assert self.reader is not None
        while True:
            try:
                data = os.read(self.response_fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError:
                raise _ChildGone() from None
            if not data:
                raise _ChildGone()
            self.reader.feed(data)
        frames = []
        for header, payload in self.reader.frames:
            if not isinstance(header, dict):
                raise self.protocol.ProtocolError("a frame header that is not an object")
            try:
                frames.append((header, self.protocol.decode(header.get("value"), payload)))
            except self.protocol.ProtocolError:
                raise
            except (Exception, RecursionError) as error:  # noqa: BLE001 - whatever a crafted frame causes
                raise self.protocol.ProtocolError(f"a value that cannot be decoded ({type(error).__name__})") from None
        self.reader.frames.clear()
        return frames

    def _disk_free(self) -> tuple[int, int]:
        """(free bytes, free inodes) of the file system holding the worker's private folder,
        where it is not a size-capped tmpfs of its own (uid and process modes)."""
        if self.zygote.isolation.mode == "namespace" or not self.zygote.confine.get("writable"):
            return 0, 0
        try:
            stat = os.statvfs(self.zygote.confine["writable"][0])
        except OSError:
            return 0, 0
        return stat.f_bavail * stat.f_frsize, stat.f_favail

    def _check_memory(self) -> None:
        if self.disk_baseline != (0, 0):
            free, inodes = self._disk_free()
            if (self.disk_baseline[0] - free > self.limits.tmp_mb * 2**20
                    or self.disk_baseline[1] - inodes > DISK_INODES):
                raise _OverDisk()
        if not self.child_host_pid:
            return
        limit = self.rss_baseline + self.limits.memory_mb * 2**20 * 1.25
        try:
            processes = [psutil.Process(self.child_host_pid)]
            processes += processes[0].children(recursive=True)
            worst = max(p.memory_info().rss for p in processes)
        except psutil.Error:
            return
        if worst > limit:
            raise _OverMemory()

    def _exchange(self, header: dict, value: Any, on_frame: Callable[[dict, Any], bool], timeout: float,
                  per_frame: bool = False, total: float | None = None, count: bool = True) -> None:
        """Send one request and process response frames until `on_frame` says done.

        Every second counts, the grader's answers to the worker's requests included. With
        `per_frame`, each frame restarts the clock (loading: a limit per statement), within
        `total` seconds in all. With `count`, the time is charged to the submission's budget,
        which also caps every limit.
        """
        self.seq += 1
        header = {**header, "seq": self.seq}
        started = time.monotonic()
        hard = started + (total if total is not None else timeout)
        budget_end = started + self.budget.remaining() if count else float("inf")
        self._budget_bound = False

        def limit(deadline: float) -> float:
            self._budget_bound = budget_end < min(deadline, hard)
            return min(deadline, hard, budget_end)

        deadline = limit(started + timeout)
        try:
            self._write(self.protocol.pack_message(header, value), deadline + 60)
            while True:
                for frame_header, frame_value in self._read_frames():
                    if frame_header.get("seq") != self.seq:
                        raise self.protocol.ProtocolError("an answer to another request")
                    if frame_header.get("kind") == "callback":
                        on_frame(frame_header, frame_value)
                        if time.monotonic() > deadline:
                            raise _Deadline()
                        continue
                    if on_frame(frame_header, frame_value):
                        self._collect_output(self.seq)
                        return
                    if per_frame:
                        deadline = limit(time.monotonic() + timeout)
                self._wait(deadline)
        except _Deadline:
            self._kill_child()
            if self._budget_bound:
                self._fail(BudgetExhausted, self._budget_message())
            self._fail(CallTimedOut, f"your code did not finish within {timeout:.0f} seconds (an endless loop, "
                                     "or far too much work?); the grader stopped it")
        except _OverDisk:
            self._kill_child()
            self._fail(WorkerDied, f"your code wrote more than {self.limits.tmp_mb} MB (or {DISK_INODES} files) "
                                   "to disk; the grader stopped it")
        except _OverMemory:
            self._kill_child()
            self._fail(WorkerDied, f"your code used more than about {self.limits.memory_mb} MB of memory; "
                                   "the grader stopped it")
        except _ChildGone as gone:
            status = gone.status if gone.status is not None else self._exit_status()
            self._kill_child()
            self._fail(WorkerDied, "the worker running your code died" + _describe_status(status)
                       + ": a crash in your code (e.g. a segfault, os._exit, or the process being killed)")
        except self.protocol.ProtocolError as error:
            self._kill_child()
            self._fail(BadAnswer, f"the worker's answer could not be read ({error}); something in your code "
                                  "wrote to the grader's channel or returned far too much data")
        except BaseException:
            self._kill_child()  # a grader error while answering a callback, Ctrl-C...: never leave it mid-request
            raise
        finally:
            if count:
                self.budget.used += time.monotonic() - started

    def _budget_message(self) -> str:
        return (f"the time budget for running your code ({self.budget.seconds:.0f} s in all, for every test "
                "together) is used up, so this test did not run: some of your functions are far slower than "
                "needed (an endless loop, or a sleep?)")

    def _exit_status(self) -> int | None:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            event = self.zygote.poll_event()
            if event is None:
                time.sleep(0.02)
                continue
            if event.get("event") == "exited":
                return event.get("status")
        return None

    def _collect_output(self, seq: int) -> None:
        deadline = time.monotonic() + 1.0
        while seq not in self.capture.ended and time.monotonic() < deadline:
            self._drain_output()
            if seq in self.capture.ended:
                break
            time.sleep(0.005)
        self.capture.ended = [s for s in self.capture.ended if s > seq]
        self.pending_output += self.capture.take()

    def _fail(self, kind: type[SubmissionFault], message: str) -> None:
        self.pending_output += self.capture.take(flush=True)
        raise kind(message)

    def close(self) -> None:
        """Kill this submission's worker and everything it left behind; wipe its /tmp."""
        if self.child_alive:
            self._kill_child()
        self._close_pipes()
        if self.zygote.alive() and self.zygote.ready is not None:
            try:
                self.zygote.reset(wipe=True)
            except (SandboxError, OSError, ValueError):
                self.zygote.close()


def _describe_status(status: int | None) -> str:
    if status is None:
        return ""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed", "SIGABRT": "aborted",
                "SIGXFSZ": "wrote a file over the size limit", "SIGBUS": "bus error"}.get(name, "")
        return f" ({name}{': ' + hint if hint else ''})"
    if os.WIFEXITED(status):
        return f" (it exited with status {os.WEXITSTATUS(status)})"
    return ""


class _StatementFailed(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


class _Deadline(Exception):
    pass


class _OverMemory(Exception):
    pass


class _OverDisk(Exception):
    pass


class _ChildGone(Exception):
    def __init__(self, status: int | None = None) -> None:
        super().__init__(status)
        self.status = status


__all__ = ["CallTimedOut", "CodeRaised", "Isolation", "Limits", "MissingDefinition", "NotImplementedYet",
           "SandboxError", "SubmissionFault", "BadAnswer", "Worker", "WorkerDied", "Zygote",
           "detect_isolation", "shared_zygote"]
