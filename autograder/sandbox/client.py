"""A submission's worker: the grader's side of one submission in the sandbox.

`Worker` forks a fresh child from the zygote for every call (`autograder.sandbox.zygote`),
probes the first child before any submission code runs (`Worker._verify`: how it is
confined, and whether it can reach a secret; grading stops when it can), loads the
submission statement by statement (a statement that hangs or crashes the child is skipped
and blamed), runs the grader's operations (`autograder.in_sandbox.harness`) and turns the
child's answer into a value or a `SubmissionFault`. The request/answer loop and the limits
enforced meanwhile are in `autograder.sandbox.exchange`.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from autograder.sandbox import faults
from autograder.sandbox.exchange import Exchange
from autograder.sandbox.isolation import confinement_problems
from autograder.sandbox.limits import MAX_RESPONSE_HEADER, MAX_RESPONSE_PAYLOAD, Budget, Limits
from autograder.sandbox.output import OutputCapture
from autograder.sandbox.zygote import Zygote


@dataclass
class LoadReport:
    """How loading the submission's statements went."""

    errors: dict[str, str] = field(default_factory=dict)  # name -> why it is not defined
    skipped: dict[int, str] = field(default_factory=dict)  # statement index -> why it was skipped
    output: str = ""


class Worker(Exchange):
    """Runs operations on one submission in the sandbox; restarts the child after a failure.

    Args:
        zygote: the sandbox to fork workers from.
        statements: `autograder.extract.statements_payload(...)` of the submission.
        limits: time and memory limits.
        budget: the submission's time budget (default: a new one of `limits.budget_s`).
        secrets: the paths the probe must fail to read and write (``{"read": [...], "write": [...]}``).
        restart_zygote: gives a new sandbox when the zygote died (else a dead zygote is a SandboxError).
    """

    MAX_LOAD_RESTARTS = 4

    def __init__(
        self,
        zygote: Zygote,
        statements: dict,
        limits: Limits,
        budget: Budget | None = None,
        secrets: dict | None = None,
        restart_zygote: Callable[[], Zygote] | None = None,
    ) -> None:
        super().__init__(zygote, limits, budget or Budget(limits.budget_s))
        self.statements = statements
        self.secrets = secrets or {"read": [], "write": []}
        self.restart_zygote = restart_zygote
        self.verified = False
        self.used = False  # the child has run an operation: the next one gets a fresh child
        self.loaded_once = False
        self.names = {s["index"]: s for s in statements["statements"]}
        self.load_report = LoadReport()
        self.started_once = False
        self.restarts = 0

    # --- child life cycle -------------------------------------------------------------------
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
            except (faults.SandboxError, OSError, ValueError):
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
        limits = {
            "memory_mb": self.limits.memory_mb,
            "file_mb": self.limits.file_mb,
            "processes": self.limits.processes if self.zygote.isolation.mode != "process" else 0,
        }
        try:
            self.zygote.send(
                {"cmd": "spawn", "token": self.token, "limits": limits, "confine": self.zygote.confine},
                [request_r, response_w, output_w],
            )
        finally:
            for fd in (request_r, response_w, output_w):
                os.close(fd)
        while True:
            event = self.zygote.receive_event(30)
            if event.get("event") == "spawned":
                break
            if event.get("event") != "exited":  # (a previous child's exit may still be queued)
                raise faults.SandboxError(f"the worker could not fork: {event}")
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
            raise faults.BadAnswer("the worker sent an unexpected message")

        own = [w.rstrip("/") for w in self.zygote.confine.get("writable", [])]

        def theirs(path: str) -> bool:  # not the worker's own private folder (or a folder holding it)
            path = path.rstrip("/") or "/"
            return not any(w == path or w.startswith(path.rstrip("/") + "/") for w in own)

        probe = {key: [p for p in self.secrets.get(key, []) if theirs(p)] for key in ("read", "write")}
        try:
            self._exchange({"kind": "probe"}, probe, on_frame, timeout=60, count=False)
        except faults.SubmissionFault as failure:
            raise faults.SandboxError(
                f"the sandbox's self-check failed: {failure.message}\n{self.zygote._log_tail()}"
            ) from None
        value = answer.get("value") or {}
        confinement = value.get("confinement") or {}
        problems = confinement_problems(self.zygote.isolation, confinement)
        reached = [str(r) for r in value.get("reached") or []]
        if reached and self.zygote.isolation.mode != "unconfined":
            problems.append("the sandboxed worker could " + "; ".join(reached))
        if problems:
            raise faults.SandboxError(
                f"the sandbox cannot isolate submissions here ({self.zygote.isolation.mode} mode): "
                + "; ".join(problems)
                + ". Grading stopped: no submission code was run."
            )
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
                    self.load_report.errors[name] = (
                        f"defining it in {statement.get('label')} line "
                        f"{statement.get('lineno')} {failed.reason}, so it was skipped"
                    )
        # Too many bad statements: skip all that were not loaded yet.
        self._spawn()
        self.load_report.skipped.update(
            {
                i: "not loaded: earlier definitions kept crashing the worker"
                for i in self.names
                if i not in self.load_report.skipped
            }
        )
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
                    raise faults.BadAnswer("the worker reported loading statements out of order")
                current[0] = last[0] = header.get("index")
                return False
            if kind == "loaded":
                index = header.get("index")
                if index != current[0]:
                    raise faults.BadAnswer("the worker reported loading statements out of order")
                statement = self.names.get(index, {})
                for name in statement.get("names", []):
                    if header.get("ok"):
                        errors.pop(name, None)
                    else:
                        errors[name] = (
                            f"defining it in {statement.get('label')} line {statement.get('lineno')} "
                            f"raised:\n{str(header.get('error', ''))[:1500]}"
                        )
                current[0] = None
                return False
            return kind == "result"

        try:
            self._exchange(
                {"kind": "load"},
                payload,
                on_frame,
                timeout=self.limits.load_timeout,
                per_frame=True,
                total=self.limits.load_total,
            )
        except (faults.CallTimedOut, faults.WorkerDied, faults.BadAnswer) as failure:
            # Between two statements only the worker's own code runs, unless a statement left
            # something behind (a thread, a signal handler): the last one loaded is to blame.
            culprit = current[0] if current[0] is not None else last[0]
            if culprit is None:
                raise faults.SandboxError(
                    f"the worker failed before loading the submission: {failure.message}"
                ) from None
            reason = (
                f"took longer than {self.limits.load_timeout:.0f} s"
                if isinstance(failure, faults.CallTimedOut)
                else "crashed the worker (" + failure.message.split("\n")[0] + ")"
            )
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
    def run(
        self,
        op: str,
        kwargs: dict,
        timeout: float | None = None,
        callbacks: dict[str, Callable[[Any], Any]] | None = None,
    ) -> Any:
        """Run a harness operation on the submission; returns its decoded result.

        Raises:
            SubmissionFault (a subclass): the submission's code failed, hung, crashed the
                worker, left a name undefined, or sent something unusable.
            SandboxError: the sandbox itself failed.
        """
        if self.budget.remaining() <= 0:
            raise faults.BudgetExhausted(self._budget_message())
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
            raise faults.BadAnswer("the worker sent an unexpected message")

        self._exchange({"kind": "op", "op": op}, kwargs, on_frame, timeout=timeout or self.limits.call_timeout)
        return self._interpret(result["header"], result["value"])

    def _answer_callback(self, header: dict, value: Any, callbacks: dict) -> None:
        handler = callbacks.get(str(header.get("name")))
        if handler is None:
            reply = {"kind": "callback_error", "seq": self.seq, "message": "this operation takes no such request"}
            frame = self.protocol.pack_frame(reply)
        else:
            try:
                frame = self.protocol.pack_message({"kind": "callback_result", "seq": self.seq}, handler(value))
            except faults.SubmissionFault as fault:
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
            raise faults.NotImplementedYet(
                f"not implemented yet{where} still raises NotImplementedError. Replace the "
                "`raise NotImplementedError()` line by your answer."
            )
        if status == "missing":
            name = str(header.get("name"))[:100]
            detail = self.load_report.errors.get(name)
            raise faults.MissingDefinition(
                f"`{name}` is not defined in your notebook"
                + (f": {detail}" if detail else " (check the name and that its cell is a code cell)")
            )
        if status == "raised":
            kind = str(header.get("type", "Exception"))[:100]
            if kind == "SystemExit":
                message = f"your code called sys.exit({header.get('exit_code', '')}) (or raised SystemExit)"
            else:
                message = f"your code raised {kind}"
            if kind == "MemoryError" or "can't allocate memory" in summary:
                message += f" (the worker may use about {self.limits.memory_mb} MB of memory)"
            raise faults.CodeRaised(message + (f":\n{summary}" if summary else ""))
        if status == "fault":
            message = str(header.get("message", ""))[:2000]
            raise faults.BadAnswer(message + (f"\n{summary}" if summary and "<cell " in summary else ""))
        raise faults.BadAnswer(f"the worker answered with an unknown status {str(status)[:40]!r}")

    def close(self) -> None:
        """Kill this submission's worker and everything it left behind; wipe its /tmp."""
        if self.child_alive:
            self._kill_child()
        self._close_pipes()
        if self.zygote.alive() and self.zygote.ready is not None:
            try:
                self.zygote.reset(wipe=True)
            except (faults.SandboxError, OSError, ValueError):
                self.zygote.close()


class _StatementFailed(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason
