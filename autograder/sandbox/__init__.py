"""The grader's side of the sandbox: start the worker, send it calls, read its answers safely.

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
sandbox user and confines itself (`autograder.in_sandbox.confine`: no groups or capabilities,
no_new_privs, not dumpable, Landlock, seccomp) before it loads the submission. The first
child of a submission is probed (`Worker._verify`): grading stops when it could reach a
secret. Each call has a time limit, and the submission a total budget (the grader's answers
to its requests and the restarts it caused included); memory and disk are capped; output
is captured through a pipe and truncated (first and last few KB per call); answers are
size-capped and parsed by `autograder.in_sandbox.protocol`; nothing is ever unpickled.

The code that runs inside the sandbox is in `autograder.in_sandbox`, copied there whole.
This package is the grader's side, one module per concern:

- `isolation`: the modes, the sandbox user, what a child's confinement must show;
- `limits`: time, memory, disk and process limits, the budget, the modules preloaded;
- `zygote`: the zygote process and the package copied into it;
- `client`: `Worker`, one submission's children (spawn, probe, load, calls);
- `exchange`: one request and its answer, with every limit enforced meanwhile;
- `output`: what the submission printed, cut per call and truncated;
- `faults`: the grader's failures (`SandboxError`) and the submission's (`SubmissionFault`);
- `cleanup`: the processes and files a submission leaves behind;
- `conform`: the form every result must have before a test looks at it.
"""

from autograder.sandbox.client import Worker
from autograder.sandbox.faults import (
    BadAnswer,
    BudgetExhausted,
    CallTimedOut,
    CodeRaised,
    MissingDefinition,
    NotImplementedYet,
    SandboxError,
    SubmissionFault,
    WorkerDied,
)
from autograder.sandbox.isolation import SANDBOX_USER, Isolation, applied_summary, detect_isolation, protect_paths
from autograder.sandbox.limits import PRELOAD, Limits, preload_for
from autograder.sandbox.zygote import Zygote, close_all, shared_zygote

__all__ = [
    "BadAnswer",
    "BudgetExhausted",
    "CallTimedOut",
    "CodeRaised",
    "Isolation",
    "Limits",
    "MissingDefinition",
    "NotImplementedYet",
    "PRELOAD",
    "SANDBOX_USER",
    "SandboxError",
    "SubmissionFault",
    "Worker",
    "WorkerDied",
    "Zygote",
    "applied_summary",
    "close_all",
    "detect_isolation",
    "preload_for",
    "protect_paths",
    "shared_zygote",
]
