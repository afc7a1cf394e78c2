"""One request to a submission's child and its answer, with every limit enforced meanwhile.

`Exchange` is the part of `autograder.sandbox.client.Worker` that talks to the child the
zygote forked: it writes a request on one pipe, reads answer frames from another
(size-capped and parsed by `autograder.in_sandbox.protocol`; nothing is ever unpickled),
drains what the child prints from a third (`OutputCapture`), answers the child's callbacks,
and meanwhile enforces the call's time limit, the submission's budget, and the memory and
disk caps. Whatever goes wrong (a deadline, a crash, a malformed frame, too much memory or
disk) kills the child and becomes a `SubmissionFault` with the message for the student.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil

from autograder.sandbox.faults import BadAnswer, BudgetExhausted, CallTimedOut, SubmissionFault, WorkerDied
from autograder.sandbox.limits import DISK_INODES, Budget, Limits
from autograder.sandbox.output import OutputCapture
from autograder.sandbox.zygote import Zygote


def _protocol() -> Any:
    """`autograder.in_sandbox.protocol`, imported on first use: it imports torch, and the
    command line starts the sandbox before the grader pays for that import."""
    from autograder.in_sandbox import protocol

    return protocol


class Exchange:
    """The pipes to one child of the zygote and the request/answer loop over them.

    Args:
        zygote: the sandbox the child was forked from (its control socket reports the
            child's exit).
        limits: time, memory and disk limits.
        budget: the submission's time budget, charged for every request.
    """

    def __init__(self, zygote: Zygote, limits: Limits, budget: Budget) -> None:
        self.zygote = zygote
        self.limits = limits
        self.budget = budget
        self.child_alive = False
        self.seq = 0
        self.token = ""
        self.capture = OutputCapture("")
        self.request_fd = self.response_fd = self.output_fd = -1
        self.protocol = _protocol()
        self.reader: Any = None
        self.child_host_pid: int | None = None
        self.rss_baseline = 0
        self.pending_output = ""
        self._memory_checked = 0.0
        self._budget_bound = False
        self.disk_baseline = (0, 0)

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

    def take_output(self) -> str:
        text, self.pending_output = self.pending_output, ""
        return text

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
            if (
                self.disk_baseline[0] - free > self.limits.tmp_mb * 2**20
                or self.disk_baseline[1] - inodes > DISK_INODES
            ):
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

    def _exchange(
        self,
        header: dict,
        value: Any,
        on_frame: Callable[[dict, Any], bool],
        timeout: float,
        per_frame: bool = False,
        total: float | None = None,
        count: bool = True,
    ) -> None:
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
            self._fail(
                CallTimedOut,
                f"your code did not finish within {timeout:.0f} seconds (an endless loop, "
                "or far too much work?); the grader stopped it",
            )
        except _OverDisk:
            self._kill_child()
            self._fail(
                WorkerDied,
                f"your code wrote more than {self.limits.tmp_mb} MB (or {DISK_INODES} files) "
                "to disk; the grader stopped it",
            )
        except _OverMemory:
            self._kill_child()
            self._fail(
                WorkerDied,
                f"your code used more than about {self.limits.memory_mb} MB of memory; the grader stopped it",
            )
        except _ChildGone as gone:
            status = gone.status if gone.status is not None else self._exit_status()
            self._kill_child()
            self._fail(
                WorkerDied,
                "the worker running your code died"
                + _describe_status(status)
                + ": a crash in your code (e.g. a segfault, os._exit, or the process being killed)",
            )
        except self.protocol.ProtocolError as error:
            self._kill_child()
            self._fail(
                BadAnswer,
                f"the worker's answer could not be read ({error}); something in your code "
                "wrote to the grader's channel or returned far too much data",
            )
        except BaseException:
            self._kill_child()  # a grader error while answering a callback, Ctrl-C...: never leave it mid-request
            raise
        finally:
            if count:
                self.budget.used += time.monotonic() - started

    def _budget_message(self) -> str:
        return (
            f"the time budget for running your code ({self.budget.seconds:.0f} s in all, for every test "
            "together) is used up, so this test did not run: some of your functions are far slower than "
            "needed (an endless loop, or a sleep?)"
        )

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


def _describe_status(status: int | None) -> str:
    if status is None:
        return ""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = {
            "SIGSEGV": "segmentation fault",
            "SIGKILL": "killed",
            "SIGABRT": "aborted",
            "SIGXFSZ": "wrote a file over the size limit",
            "SIGBUS": "bus error",
        }.get(name, "")
        return f" ({name}{': ' + hint if hint else ''})"
    if os.WIFEXITED(status):
        return f" (it exited with status {os.WEXITSTATUS(status)})"
    return ""


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
