"""How a call into the sandbox fails: the grader's fault or the submission's.

`SandboxError` means the sandbox itself failed (it could not start, isolate or answer): a
grader problem, never held against the student. `SubmissionFault` and its kinds mean the
submission's code failed, hung, crashed the worker, left a name undefined or sent something
unusable; their message is what the student reads (`autograder.results`).
"""

from __future__ import annotations


class SandboxError(RuntimeError):
    """The sandbox itself failed (a grader problem, not the submission's)."""


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
