"""The grader's handle on one sandbox: the zygote process, the package copied into it, and
the zygotes shared by the submissions graded in one process."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from autograder.sandbox.cleanup import (
    kill_leftovers,
    remove_files_of,
    remove_stale_workdirs,
    remove_tree,
    set_subreaper,
)
from autograder.sandbox.faults import SandboxError
from autograder.sandbox.isolation import PROJECT_ROOT, UNSHARE_OPTIONS, Isolation
from autograder.sandbox.limits import PRELOAD, Limits

#: Folders every worker may read (besides the Python installation and its own package).
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc", "/proc", "/sys", "/dev")
#: The folder copied whole into every sandbox: the only grader code the sandbox sees (no answers).
INSIDE = PROJECT_ROOT / "autograder" / "in_sandbox"
#: Its name there.
PACKAGE = "sslgrader_worker"


def python_paths() -> list[str]:
    """Folders the worker needs to run this Python with its packages (exposed read-only)."""
    candidates = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        *site.getsitepackages(),
    }
    for path in list(candidates):
        candidates.add(os.path.realpath(path))
    system = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc")
    project = str(PROJECT_ROOT)
    chosen: list[str] = []
    for path in sorted(candidates, key=len):
        if not os.path.isdir(path) or path.startswith(system) or path == "/":
            continue
        if project == path or project.startswith(path + os.sep):
            raise SandboxError(
                f"Python lives at {path}, which contains the project; create the virtual "
                "environment inside the project (e.g. .venv) or install Python elsewhere"
            )
        if not any(path == c or path.startswith(c + os.sep) for c in chosen):
            chosen.append(path)
    return chosen


def prepare_package(workdir: Path) -> Path:
    """Copy `INSIDE` (as `PACKAGE`) and `helpers` into `workdir/pkg` (readable, not writable,
    by the worker)."""
    pkg = workdir / "pkg"
    pkg.mkdir()
    caches = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(INSIDE, pkg / PACKAGE, ignore=caches)
    shutil.copytree(PROJECT_ROOT / "helpers", pkg / "helpers", ignore=caches)
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
        remove_stale_workdirs()
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
        set_subreaper()
        self.preexisting = {c.pid for c in psutil.Process().children(recursive=True)}
        pkg = prepare_package(self.workdir)
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
        expose = python_paths()
        #: How each child confines itself (autograder.in_sandbox.confine): what it may read and write.
        self.confine = {
            "uid": iso.uid,
            "gid": iso.gid,
            "writable": wipe,
            "readable": [*SYSTEM_FOLDERS, *expose, str(pkg)],
        }
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {
            "mode": iso.mode,
            "ctrl_fd": theirs.fileno(),
            "pkg": str(pkg),
            "newroot": str(self.workdir / "root"),
            "expose": expose,
            "tmp_mb": self.limits.tmp_mb,
            "preload": list(self.preload),
            "wipe": wipe,
        }
        (self.workdir / "root").mkdir()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": home,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MALLOC_ARENA_MAX": "2",
            "CUDA_VISIBLE_DEVICES": "",
            "SSL_LAB_DEVICE": "cpu",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": os.path.join(home, ".mpl"),
            "TQDM_DISABLE": "1",
            "JOBLIB_MULTIPROCESSING": "0",
            "LOKY_MAX_CPU_COUNT": "1",
        }
        launch = (
            f"import sys; sys.path.insert(0, sys.argv[1]); import {PACKAGE}.worker as worker; worker.main(sys.argv[1:])"
        )
        command = [sys.executable, "-I", "-B", "-c", launch, str(pkg), json.dumps(config)]
        kwargs: dict[str, Any] = {}
        if iso.mode == "namespace":
            command = [shutil.which("unshare") or "unshare", *UNSHARE_OPTIONS, *command]
        # The zygote keeps the grader's user (root in the namespace and uid modes: no worker can
        # signal or trace it); each forked child drops to the sandbox user and confines itself.
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=[theirs.fileno()],
                env=env,
                cwd="/",
                start_new_session=True,
                **kwargs,
            )
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
            except TimeoutError:
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
        except (TimeoutError, BlockingIOError):
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
