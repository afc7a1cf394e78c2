"""How the worker is isolated on this machine: the modes, the sandbox user, and what a
child's confinement must show (see `autograder.sandbox` for the modes)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox.faults import SandboxError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The unprivileged user the worker runs as when the grader is root (Gradescope's setup.sh
#: can create it up front: `useradd --system --no-create-home --shell /usr/sbin/nologin sslgrader`).
SANDBOX_USER = "sslgrader"
#: Folders of the project the worker must never read (uid mode makes them non-world-readable).
SECRET_FOLDERS = ("solutions", "autograder", "tests", ".git", "dist", "data")


@dataclass
class Isolation:
    """What the sandbox does on this machine (the modes: `autograder.sandbox`)."""

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
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
            check=True,
            capture_output=True,
            timeout=30,
        )
        entry = pwd.getpwnam(name)
    except (OSError, subprocess.SubprocessError, KeyError) as error:
        raise SandboxError(
            f"the sandbox user {name} does not exist and could not be created ({error}); create it "
            f"with `useradd --system --no-create-home --shell /usr/sbin/nologin --user-group {name}`"
        ) from None
    if entry.pw_uid == 0:
        raise SandboxError(f"the sandbox user {name} has uid 0")
    return entry.pw_uid, entry.pw_gid, name


#: The namespaces of the namespace mode: its probe (`detect_isolation`) and the zygote's launch
#: use these same options, so the mode is only chosen where exactly this works.
UNSHARE_OPTIONS = ("--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--")


def _namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    try:
        result = subprocess.run(
            [unshare, *UNSHARE_OPTIONS, sys.executable, "-c", "pass"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _python_runs_as(uid: int, gid: int) -> bool:
    """Whether `uid` can start this Python and import torch (every module a submission may
    import lazily must be readable by the sandbox user)."""
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-c", "import torch"],
            user=uid,
            group=gid,
            extra_groups=[],
            capture_output=True,
            timeout=240,
            cwd="/",
        )
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


#: The values of ``--isolation``: ``auto`` picks the first of the next three that works here.
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
        isolation = Isolation(
            "unconfined",
            notes=[
                "UNCONFINED (--isolation unconfined): the submission runs as you, in a separate process with time "
                "and memory limits only, and can read and write whatever you can. Use it only for code you trust."
            ],
        )
    elif not root:
        if requested in ("namespace", "uid"):
            raise SandboxError(
                f"--isolation {requested} needs the grader to run as root (it switches to the "
                f"unprivileged user {SANDBOX_USER})"
            )
        isolation = Isolation(
            "process",
            notes=[
                "the submission runs as you, in a separate process confined by Landlock (it can read only Python "
                "and its packages, and write only a private folder) and seccomp, with time and memory limits"
            ],
        )
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
                f"setup.sh does this), or run the grader where unshare works."
            )
        notes = [
            "no namespaces (unshare refused, or --isolation uid): the submission runs as its own user, confined by "
            "Landlock and seccomp where the kernel allows (see 'applied' below); its leftover processes and "
            "files are removed after every call"
        ]
        changed = protect_tree()
        if changed:
            notes.append("removed world access from " + ", ".join(changed) + " so that user cannot read them")
        isolation = Isolation("uid", uid, gid, user, notes)
    _ISOLATION[requested] = isolation
    return isolation


def confinement_problems(isolation: Isolation, applied: dict) -> list[str]:
    """What makes the confinement a child reported (`autograder.in_sandbox.confine.Confinement`) too weak
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
        problems.append(
            f"Landlock is needed when the grader does not run as root, and it is "
            f"{applied.get('landlock')}; run the grader as root (it then uses a separate user), or "
            f"pass --isolation unconfined to run code you trust without confinement"
        )
    return problems


def applied_summary(applied: dict | None) -> str:
    """One line on what confined the last submission's worker (for the instructor's output)."""
    if not applied:
        return "confinement: not probed"
    return (
        f"confinement: uid {applied.get('uid')}, groups {applied.get('groups') or 'none'}, capabilities none, "
        f"no_new_privs, not dumpable; Landlock {applied.get('landlock')}; seccomp {applied.get('seccomp')}"
    )
