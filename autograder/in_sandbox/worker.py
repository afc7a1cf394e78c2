"""The sandboxed worker: where a submission's code runs, and nowhere else.

Process layout (grader side in `autograder.sandbox`)::

    grader (root or the user)                       trusted: reference, results.json
      └─ [unshare --mount --net --pid --ipc --uts]  namespace mode only
           └─ zygote (unprivileged)                 imports torch & co. once, never runs student code
                └─ child                            one per worker (re)start: loads the submission,
                                                    runs the grader's operations, answers on a pipe

1. **Bootstrap** (namespace mode, still root inside fresh mount/pid/net/ipc/uts namespaces):
   build a new root file system on a tmpfs that shows only the system directories
   (``/usr``, ``/lib``, ``/etc``...), the Python installation, read-only, and this package;
   a private ``/tmp`` and ``/dev/shm`` (size-capped tmpfs), a minimal ``/dev`` and the pid
   namespace's own ``/proc``. The project (``solutions/``, ``autograder/``, the results
   folder, other submissions) is simply not there. ``chroot`` into it. The network namespace
   has only a loopback that is down.
2. **Zygote** (keeps the grader's user: root in the namespace and uid modes, so no worker can
   signal, trace or read it; not dumpable): imports the heavy modules once (torch,
   torchvision, scikit-learn, helpers), then waits for the grader's commands on a
   SOCK_SEQPACKET control socket: ``spawn`` (with three pipe ends passed by SCM_RIGHTS),
   ``reset`` (kill every other process of the sandbox and empty its private folders), ``exit``.
   It is a child subreaper, so processes the submission leaves behind stay in its tree.
3. **Child** (forked for every call of the grader, so nothing one call leaves reaches the
   next): own session, stdout and stderr redirected to the grader's capture pipe, memory,
   file-size and process limits; then it confines itself (`autograder.in_sandbox.confine`: the sandbox
   user, no groups or capabilities, no_new_privs, not dumpable, Landlock, seccomp), answers
   the grader's probe, loads the submission statement by statement and serves one request
   (`autograder.in_sandbox.protocol` frames), asking the grader through callbacks where a step needs a
   reference answer.

The grader enforces the time limit per call and kills the child on a timeout, a crash,
a malformed answer or excess memory; the zygote then cleans up and forks a new child.
This module is copied into the sandbox with the rest of `autograder.in_sandbox`; it imports
only the standard library, torch and its sibling modules (protocol, harness, statements, confine).
"""

from __future__ import annotations

import ctypes
import importlib
import json
import linecache
import os
import resource
import select
import signal
import socket
import sys
import time
import types
from typing import Any

from . import confine, harness, protocol, statements

# mount(2) flags
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE = 38, 36, 4

MAX_REQUEST_HEADER = 64 * 2**20
MAX_REQUEST_PAYLOAD = 2 * 2**30


# ======================================================================================
# Bootstrap (namespace mode, root inside the new namespaces)
# ======================================================================================
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    if _libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _bind_readonly(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(config: dict) -> None:
    """Build the sandbox's file system in `config["newroot"]` and chroot into it."""
    root = config["newroot"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    for folder in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc"):
        if os.path.islink(folder):
            os.symlink(os.readlink(folder), root + folder)
        elif os.path.isdir(folder):
            _bind_readonly(folder, root + folder)
    # /tmp first: a Python installation under /tmp (a virtual environment in a CI checkout)
    # is then bound inside this tmpfs instead of making /tmp a plain folder of the root.
    os.makedirs(root + "/tmp")
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={config['tmp_mb']}m,mode=1777")
    for path in config["expose"]:  # the Python installation and site-packages, read-only
        if os.path.exists(path):
            _bind_readonly(path, root + path)
    os.makedirs(root + "/dev", mode=0o755)
    _mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=1m,mode=755")
    for node in ("null", "zero", "full", "random", "urandom"):
        _bind_readonly("/dev/" + node, root + "/dev/" + node)
        _mount(None, root + "/dev/" + node, None, MS_BIND | MS_REMOUNT | MS_NOSUID)  # writable /dev/null
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(root + "/dev/shm")
    _mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={config['tmp_mb']}m,mode=1777")
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if os.path.isdir("/sys"):
        _bind_readonly("/sys", root + "/sys")
    _bind_readonly(config["pkg"], root + config["pkg"])
    _mount(None, root, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)
    os.chdir("/")


def _prctl(option: int, value: int) -> None:
    _libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


# ======================================================================================
# Zygote
# ======================================================================================
def _descendants(root_pid: int) -> list[int]:
    """Every process below `root_pid` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root_pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class Zygote:
    """Forks workers on request; never runs submission code itself."""

    def __init__(self, config: dict, ctrl: socket.socket) -> None:
        self.config = config
        self.ctrl = ctrl
        self.child: int | None = None
        self.pid_one = os.getpid() == 1

    def send(self, message: dict) -> None:
        try:
            self.ctrl.send(json.dumps(message).encode())
        except OSError:  # the grader is gone: nothing to report to, and nothing to stay for
            self.kill_others_quietly()
            os._exit(0)

    def kill_others_quietly(self) -> None:
        self.ctrl.close()
        try:
            if self.pid_one:
                os.kill(-1, signal.SIGKILL)
            else:
                for pid in _descendants(os.getpid()):
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def kill_others(self) -> None:
        """Kill every process of the sandbox except this one, then reap them."""
        for _ in range(100):
            if self.pid_one:
                try:
                    os.kill(-1, signal.SIGKILL)  # PID 1 of the namespace: everyone else in it
                except ProcessLookupError:
                    pass
                victims = [p for p in _descendants(0) if p != 1]
            else:
                victims = _descendants(os.getpid())
                for pid in victims:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            self.reap()
            if not victims:
                break
            time.sleep(0.01)
        self.child = None

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.child = None
                self.send({"event": "exited", "status": status})

    def wipe_tmp(self) -> None:
        """Empty the sandbox's private writable folders (however deep a submission nested
        them: GNU rm, no recursion here)."""
        for folder in self.config.get("wipe", []):
            try:
                entries = [os.path.join(folder, name) for name in os.listdir(folder)]
            except OSError:
                continue
            for start in range(0, len(entries), 512):
                try:
                    pid = os.fork()
                    if pid == 0:
                        try:
                            os.execv("/bin/rm", ["rm", "-rf", "--one-file-system", "--", *entries[start : start + 512]])
                        finally:
                            os._exit(127)
                    while True:
                        waited, _ = os.waitpid(pid, 0)
                        if waited == pid:
                            break
                except (OSError, ChildProcessError):
                    pass

    def serve(self) -> None:
        while True:
            readable, _, _ = select.select([self.ctrl], [], [], 0.05)
            self.reap()
            if not readable:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(self.ctrl, 1 << 16, 4)
            except OSError:
                data, fds = b"", []
            if not data:  # the grader is gone
                self.kill_others()
                os._exit(0)
            command = json.loads(data)
            if command["cmd"] == "spawn":
                self.spawn(command, fds)
            elif command["cmd"] == "reset":
                self.kill_others()
                if command.get("wipe"):
                    try:
                        self.wipe_tmp()
                    except BaseException:  # noqa: BLE001 - whatever a submission left there, the zygote stays
                        pass
                self.send({"event": "reset"})
            elif command["cmd"] == "exit":
                self.kill_others()
                os._exit(0)

    def spawn(self, command: dict, fds: list[int]) -> None:
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            self.send({"event": "error", "message": "spawn needs three descriptors"})
            return
        if self.child is not None:
            self.kill_others()
        request_fd, response_fd, output_fd = fds
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 0
            try:
                self.ctrl.close()
                child_main(request_fd, response_fd, output_fd, command)
            except BaseException:  # noqa: BLE001
                code = 70
                try:  # to the capture pipe once set up, else the zygote's log
                    import traceback

                    traceback.print_exc()
                    sys.stderr.flush()
                except BaseException:  # noqa: BLE001
                    pass
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        self.child = pid
        self.send({"event": "spawned", "pid": pid})


def preload(modules: list[str]) -> list[str]:
    """Import `modules` (errors are reported, not fatal)."""
    errors = []
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as error:  # noqa: BLE001 - an optional module may be broken
            errors.append(f"{name}: {type(error).__name__}: {error}")
    return errors


def zygote_main(config: dict) -> None:
    ctrl = socket.socket(fileno=config["ctrl_fd"])
    if config["mode"] == "namespace":
        build_root(config)
    # The zygote keeps the user it was started as (root in the namespace and uid modes), so
    # no worker (the sandbox user) can signal, ptrace or read it; each child confines itself.
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(0o077)
    errors = preload(config.get("preload", []))
    import torch

    torch.set_num_threads(1)
    # Every operation runs in a freshly forked child: pay the lazy imports of the first
    # optimiser, backward pass and data loader (torch._dynamo: seconds) once, here.
    weight = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    optimizer.zero_grad()
    (weight * 2).sum().backward()
    optimizer.step()
    list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(2, 1)), batch_size=1))
    del weight, optimizer
    zygote = Zygote(config, ctrl)
    zygote.send(
        {"event": "ready", "pid": os.getpid(), "uid": os.getuid(), "preload_errors": errors, "python": sys.executable}
    )
    zygote.serve()


# ======================================================================================
# Child
# ======================================================================================
def _set_limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _vm_kilobytes(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child_main(request_fd: int, response_fd: int, output_fd: int, command: dict) -> None:
    os.setsid()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    keep = {0, 1, 2, request_fd, response_fd}
    for fd in os.listdir("/proc/self/fd"):
        if fd.isdigit() and int(fd) not in keep:
            try:
                os.close(int(fd))
            except OSError:
                pass
    sys.stdin = open(0, closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    limits = command["limits"]
    extra = limits["memory_mb"] * 2**20
    _set_limit(resource.RLIMIT_AS, _vm_kilobytes("VmSize") * 1024 + extra)
    _set_limit(resource.RLIMIT_DATA, _vm_kilobytes("VmData") * 1024 + extra)
    _set_limit(resource.RLIMIT_FSIZE, limits["file_mb"] * 2**20)
    _set_limit(resource.RLIMIT_NOFILE, 256)
    if limits.get("processes"):
        _set_limit(resource.RLIMIT_NPROC, limits["processes"])
    config = command["confine"]
    report = confine.confine(config.get("uid"), config.get("gid"), config["readable"], config["writable"])
    os.chdir(config["writable"][0] if config["writable"] else "/")
    Child(request_fd, response_fd, command["token"], report.as_dict()).serve()


class Child:
    """Serves the grader's requests: load the submission, run operations."""

    def __init__(self, request_fd: int, response_fd: int, token: str, confinement: dict) -> None:
        self.request_fd = request_fd
        self.response_fd = response_fd
        self.confinement = confinement
        self.marker = f"\x00SSLG-END:{token}:".encode()
        self.module = types.ModuleType("submission")
        self.module.__dict__["__file__"] = "<submission>"
        sys.modules["submission"] = self.module
        self.seq = 0

    # --- channel ----------------------------------------------------------------------
    def send(self, header: dict, value: Any = None) -> None:
        protocol.write_frame(self.response_fd, protocol.pack_message(header, value))

    def receive(self) -> tuple[dict, Any]:
        header, payload = protocol.read_frame_blocking(self.request_fd, MAX_REQUEST_HEADER, MAX_REQUEST_PAYLOAD)
        return header, protocol.decode(header.get("value"), payload)

    def callback(self, name: str, payload: dict) -> Any:
        self.send({"kind": "callback", "seq": self.seq, "name": name}, payload)
        header, value = self.receive()
        if header.get("kind") != "callback_result":
            raise harness.StudentFault(str(header.get("message", "the grader refused this request"))[:500])
        return value

    def end_output(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - the submission may have replaced or closed them
                pass
        try:
            os.write(1, self.marker + str(self.seq).encode() + b"\x00")
        except OSError:
            pass

    # --- requests ---------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            header, value = self.receive()
            self.seq = header.get("seq", 0)
            kind = header.get("kind")
            if kind == "exit":
                return
            if kind == "probe":
                self.probe(value)
            elif kind == "load":
                self.load(value)
            elif kind == "op":
                self.operation(header["op"], value)

    def probe(self, payload: dict) -> None:
        """Before any submission code: report the confinement and try to reach each secret
        path the grader names (the grader refuses to grade when any of them is reachable)."""
        reached = []
        for path in payload.get("read", []):
            try:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    with open(path, "rb") as handle:
                        handle.read(1)
                reached.append(f"read {path}")
            except OSError:
                pass
        for folder in payload.get("write", []):
            target = os.path.join(folder, f".sslgrader-probe-{os.getpid()}")
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
                os.unlink(target)
                reached.append(f"write {folder}")
            except OSError:
                pass
        self.send(
            {"kind": "result", "seq": self.seq, "status": "ok"}, {"confinement": self.confinement, "reached": reached}
        )

    def load(self, payload: dict) -> None:
        cells = payload["cells"]
        skip = set(payload.get("skip", []))
        for label, source in cells.items():
            filename = f"<{label}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = self.module.__dict__
        for statement in payload["statements"]:
            index = statement["index"]
            if index in skip:
                continue
            self.send({"kind": "loading", "seq": self.seq, "index": index})
            status: dict[str, Any] = {"kind": "loaded", "seq": self.seq, "index": index, "ok": True}
            try:
                code = statements.compile_node(
                    cells[statement["label"]], statement["node"], statement["label"], statement["flags"]
                )
                exec(code, namespace)  # noqa: S102 - the sandbox is where submission code runs
            except BaseException as error:  # noqa: BLE001 - a class body may even call sys.exit
                status.update(ok=False, error=harness.student_traceback(error))
            self.end_output()
            self.send(status)
        self.end_output()
        self.send({"kind": "result", "seq": self.seq, "status": "ok"}, None)

    def operation(self, op: str, kwargs: dict) -> None:
        ctx = harness.Context(self.module.__dict__, student=True, callback=self.callback)
        header: dict[str, Any] = {"kind": "result", "seq": self.seq}
        value = None
        try:
            value = harness.run(ctx, op, kwargs)
            header["status"] = "ok"
        except harness.Missing as missing:
            header.update(status="missing", name=missing.name)
        except harness.StudentRaised as raised:
            error = raised.error
            kind = "not_implemented" if isinstance(error, NotImplementedError) else "raised"
            header.update(status=kind, type=type(error).__name__, summary=raised.summary)
            if isinstance(error, SystemExit):
                header["exit_code"] = repr(error.code)[:100]
        except harness.StudentFault as fault:
            header.update(status="fault", message=str(fault)[:2000])
        except BaseException as error:  # noqa: BLE001 - anything the submission's objects caused
            header.update(
                status="fault",
                message=f"{type(error).__name__}: {error}"[:2000],
                summary=harness.student_traceback(error),
            )
        self.end_output()
        try:
            frame = protocol.pack_message(header, value)
        except BaseException as error:  # noqa: BLE001 - a returned object that cannot be described
            frame = protocol.pack_message(
                {
                    "kind": "result",
                    "seq": self.seq,
                    "status": "fault",
                    "message": f"what your code returned could not be read: {type(error).__name__}",
                },
                None,
            )
        protocol.write_frame(self.response_fd, frame)


def main(argv: list[str] | None = None) -> None:
    config = json.loads((argv or sys.argv)[1])
    zygote_main(config)


if __name__ == "__main__":
    main()
