"""Removing what a submission left behind: its processes, its files in the shared temporary
folders, and the work folders of sandboxes whose grader was killed."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil

#: Folders every user may write to, where a worker in uid mode without Landlock may leave files.
SHARED_TEMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def set_subreaper() -> None:
    """Make this process a child subreaper: what a sandbox's processes orphan stays in its tree,
    where `kill_leftovers` finds it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    except (OSError, AttributeError):
        pass


def remove_tree(path: str | os.PathLike) -> None:
    """Remove `path` and everything below it, however deep a submission nested it (no
    recursion in Python, no path longer than PATH_MAX: GNU rm walks it with fts), never
    following a link; errors are ignored, as for a folder that is already gone."""
    path = str(path)
    if not os.path.lexists(path):
        return
    rm = shutil.which("rm") or "/bin/rm"
    try:
        subprocess.run(
            [rm, "-rf", "--one-file-system", "--", path], stdin=subprocess.DEVNULL, capture_output=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        pass
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        try:
            os.unlink(path)
        except OSError:
            pass


def remove_stale_workdirs() -> None:
    """Remove the work folders of sandboxes whose grader process no longer exists (killed
    before it could clean up)."""
    for folder in Path(tempfile.gettempdir()).glob("sslgrader-*"):
        try:
            owner = int((folder / "grader.pid").read_text())
        except (OSError, ValueError):
            continue
        if not psutil.pid_exists(owner):
            remove_tree(folder)


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
