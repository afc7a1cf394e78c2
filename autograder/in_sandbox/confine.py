"""Confining the process that runs a submission: user, privileges, seccomp, Landlock.

Applied by the worker's child (`autograder.in_sandbox.worker.child_main`) after it forked from the
zygote and before it reads a single statement of the submission, in every isolation mode:

1. ``drop_privileges``: the sandbox user, no supplementary groups, no capabilities
   (``setgroups([])``, ``setresgid``, ``setresuid``: real, effective and saved ids), when
   the zygote runs as root; checked afterwards, never assumed.
2. ``no_new_privs`` (no set-uid binary or file capability can give anything back) and not
   dumpable (no process of the same user can ptrace it or read its memory).
3. **Landlock** (Linux 5.13+, works unprivileged and inside containers): the process can
   read only the system folders, the Python installation and the worker's own package, and
   write only its private temporary folder (plus ``/dev/null``). Everything else (the
   grader, ``solutions/``, the test split, other submissions, the results, the host's
   ``/tmp``) is out of reach whatever its permissions.
4. **seccomp** (libseccomp through ``pyseccomp``): network sockets (anything but AF_UNIX),
   new namespaces, mounts, ptrace and cross-process memory access, SysV and POSIX message
   IPC (state that would outlive the process), kernel keyrings, BPF, io_uring and other
   system calls a submission has no business making fail with EPERM.

Each step reports what it applied (`Confinement`); the grader decides whether that is
enough for the mode it runs in (`autograder.sandbox.isolation`). This module is copied into
the sandbox: standard library only, plus the optional ``landlock`` and ``pyseccomp`` bindings.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from dataclasses import dataclass, field

PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 4, 38, 39

#: System calls refused with EPERM (names unknown to the local libseccomp are skipped).
DENIED_SYSCALLS = (
    # namespaces, mounts, root changes
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # other processes' memory and descriptors
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "process_madvise",
    # state that outlives the process (shared between a hidden and a later visible test)
    "shmget",
    "shmat",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semctl",
    "semtimedop",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    # kernel interfaces
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "name_to_handle_at",
    "open_by_handle_at",
    "fanotify_init",
    "lookup_dcookie",
    "personality",
)
CLONE_NAMESPACE_FLAGS = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
    0x00000080,
)  # NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET NEWTIME

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class Confinement:
    """What was applied to this process (sent to the grader, which checks it)."""

    uid: int = -1
    gid: int = -1
    groups: list[int] = field(default_factory=list)
    capabilities: str = ""
    no_new_privs: bool = False
    dumpable: bool = True
    landlock: str = "not applied"
    seccomp: str = "not applied"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _prctl(option: int, value: int = 0) -> int:
    return _libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _status_field(name: str) -> str:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def drop_privileges(uid: int, gid: int) -> None:
    """Become `uid`:`gid` for good (no groups; real, effective and saved ids), or raise."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise OSError("could not drop privileges")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (or refuses the call)."""
    try:
        _libc.syscall.restype = ctypes.c_long
        version = _libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (AttributeError, OSError):
        return 0
    return int(version) if version > 0 else 0


def apply_landlock(readable: list[str], writable: list[str], writable_files: list[str]) -> str:
    """Restrict file access to `readable` (read, execute, list), `writable` (everything) and
    `writable_files` (read and write an existing file, e.g. /dev/null). Returns what happened."""
    if landlock_abi() < 1:
        return "unavailable (the kernel has no Landlock, or the container refuses it)"
    try:
        import landlock
        from landlock import FSAccess
    except Exception as error:  # noqa: BLE001 - the binding is optional
        return f"unavailable (the landlock package cannot be imported: {type(error).__name__})"
    read = FSAccess.READ_FILE | FSAccess.READ_DIR | FSAccess.EXECUTE
    try:
        ruleset = landlock.Ruleset()
        for path in readable:
            if os.path.exists(path):
                ruleset.allow(path, rules=read & (FSAccess.all() if os.path.isdir(path) else FSAccess.all_file()))
        for path in writable:
            if os.path.isdir(path):
                ruleset.allow(path, rules=FSAccess.all())
        for path in writable_files:
            if os.path.exists(path):
                ruleset.allow(path, rules=FSAccess.READ_FILE | FSAccess.WRITE_FILE)
        ruleset.apply()
    except Exception as error:  # noqa: BLE001 - report, the grader decides
        return f"failed ({type(error).__name__}: {error})"
    return f"applied (ABI {landlock_abi()}): read {len(readable)} folders, write {len(writable)}"


def apply_seccomp() -> str:
    """Install the system-call filter (see the module docstring). Returns what happened."""
    try:
        import pyseccomp as seccomp
    except Exception as error:  # noqa: BLE001 - libseccomp may be missing
        return f"unavailable ({type(error).__name__}: {str(error)[:80]})"
    try:
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        skipped = []
        for name in DENIED_SYSCALLS:
            try:
                rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
            except (OSError, ValueError, RuntimeError):
                skipped.append(name)
        for call in ("socket", "socketpair"):
            rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), call, seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
        for flag in CLONE_NAMESPACE_FLAGS:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        try:  # clone3 passes its flags in memory a filter cannot read: fall back to clone
            rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        except (OSError, ValueError, RuntimeError):
            skipped.append("clone3")
        rules.load()
    except Exception as error:  # noqa: BLE001 - report, the grader decides
        return f"failed ({type(error).__name__}: {error})"
    return "applied" + (f" (unknown here: {', '.join(skipped)})" if skipped else "")


def confine(
    uid: int | None,
    gid: int | None,
    readable: list[str],
    writable: list[str],
    writable_files: list[str] = ("/dev/null",),
) -> Confinement:
    """Apply every step to this process (see the module docstring) and report."""
    if uid is not None and os.geteuid() == 0:
        drop_privileges(uid, gid if gid is not None else uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    report = Confinement()
    report.landlock = apply_landlock(list(readable), list(writable), list(writable_files))
    report.seccomp = apply_seccomp()
    report.uid, report.gid, report.groups = os.getuid(), os.getgid(), os.getgroups()
    report.capabilities = _status_field("CapEff")
    report.no_new_privs = _prctl(PR_GET_NO_NEW_PRIVS) == 1
    report.dumpable = _prctl(3) != 0  # PR_GET_DUMPABLE
    return report


__all__ = ["Confinement", "apply_landlock", "apply_seccomp", "confine", "drop_privileges", "landlock_abi"]
