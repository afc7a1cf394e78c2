"""Grade one submission: find its notebook, extract it, run the graded suite, write results.

`grade` is what ``python -m autograder grade`` calls. The flow (DESIGN.md, "The autograder"):

1. find the assignment's notebook in the submission folder (by name; by its grade_ids when
   the student renamed it) and extract its definitions (`autograder.extract`);
2. start (or reuse) the sandbox (`autograder.sandbox`) and, meanwhile, extract and execute
   the reference from ``solutions/<assignment>.ipynb`` in this (trusted) process;
3. run the assignment's graded tests (``autograder/tests``) with pytest in this process,
   with `autograder.results.ResultsPlugin` collecting per-test results;
4. write ``results.json`` once, atomically, and return it with an exit code: 0 whenever
   grading worked (whatever the score), 2 when the grader itself failed.

A problem of the submission (no notebook, not JSON, a syntax error, code that crashes)
is the student's: it costs points and says why, and the exit code stays 0.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from autograder import extract as extraction
from autograder import hidden_inputs, sandbox
from autograder.assignments import ASSIGNMENTS, Assignment, find_notebook
from autograder.contract import TASKS
from autograder.course_settings import CourseConfigError
from autograder.in_sandbox import harness, protocol
from autograder.results import GraderError, ResultsPlugin, build_results, format_table, write_json_atomic
from autograder.sandbox import conform

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent / "tests"
SOLUTIONS_DIR = PROJECT_ROOT / "solutions"


class UsageError(ValueError):
    """The grader was called wrongly (a missing folder, an unknown assignment)."""


# ======================================================================================
# The reference (trusted, in this process)
# ======================================================================================
_REFERENCES: dict[tuple, dict] = {}


def load_reference(assignment: str, solutions_dir: Path = SOLUTIONS_DIR) -> dict:
    """The namespace of ``solutions/<assignment>.ipynb`` (cached while the file is unchanged)."""
    path = Path(solutions_dir) / ASSIGNMENTS[assignment].notebook
    try:
        stat = path.stat()
    except OSError:
        raise GraderError(f"the reference notebook {path} is missing") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _REFERENCES:
        roots = {"device", "EMA"} | {n for task in ASSIGNMENTS[assignment].tasks for n in TASKS.get(task, ())}
        try:
            namespace = extraction.load_trusted(
                extraction.extract(path), module_name=f"reference_{assignment}", roots=roots
            )
        except (extraction.NotebookError, RuntimeError, SyntaxError) as error:
            raise GraderError(f"the reference notebook {path.name} cannot be used: {error}") from error
        if "device" in namespace:
            namespace["device"] = torch.device("cpu")  # grading runs on the CPU, like the worker
        _REFERENCES[key] = namespace
    return _REFERENCES[key]


class Reference:
    """Runs harness operations on the reference and answers the worker's callbacks."""

    def __init__(self, namespace: dict) -> None:
        self.ns = namespace

    def run(self, op: str, cache_key: Any = None, **kwargs: Any) -> Any:
        """The reference's result, passed through the wire format like the student's (so both
        come back as the same kinds of values).

        cache_key: for an expensive, seeded call whose inputs depend only on the key: the
        result is kept for the next submission graded against this reference.
        """
        if op == "model_state":
            return self.model_state(**kwargs)
        if cache_key is not None:
            cache = self.ns.setdefault("__sslgrader_results__", {})
            if (op, cache_key) not in cache:
                cache[(op, cache_key)] = self.run(op, **kwargs)
            return cache[(op, cache_key)]
        ctx = harness.Context(self.ns, student=False)
        try:
            value = harness.run(ctx, op, kwargs)
        except Exception as error:  # noqa: BLE001 - the reference must work; anything else is ours
            raise GraderError(f"the reference failed on operation {op}: {type(error).__name__}: {error}") from error
        tree, payload = protocol.encode(value)
        return protocol.decode(tree, payload)

    def model_state(self, cls: str, init_kwargs: dict | None = None, seed: int = 0) -> dict:
        """The state_dict of the reference's `cls(**init_kwargs)` built under `seed` (cached)."""
        cache = self.ns.setdefault("__sslgrader_states__", {})
        key = (cls, repr(sorted((init_kwargs or {}).items())), seed)
        if key not in cache:
            try:
                cache[key] = harness.op_model_state(harness.Context(self.ns, student=False), cls, init_kwargs, seed)
            except Exception as error:  # noqa: BLE001
                raise GraderError(f"the reference cannot build {cls}: {type(error).__name__}: {error}") from error
        return cache[key]

    def get(self, name: str) -> Any:
        if name not in self.ns:
            raise GraderError(f"the reference notebook does not define {name}")
        return self.ns[name]

    # --- callbacks (answers for a submission's step) ----------------------------------------
    def loss_oracle(self, name: str, payload: Any) -> dict:
        """Reference loss and gradients for the tensors a submission's step passed to `name`."""
        if not isinstance(payload, dict) or payload.get("fn") != name:
            raise sandbox.BadAnswer(f"the step asked for a loss other than {name}")
        z1, z2 = payload.get("z1"), payload.get("z2")
        for z in (z1, z2):
            if not isinstance(z, torch.Tensor) or z.ndim != 2 or not z.is_floating_point() or z.numel() > 2**22:
                raise sandbox.BadAnswer(f"{name} needs two 2-d float tensors")
        args, kwargs = payload.get("args", []), payload.get("kwargs", {})
        if (
            not isinstance(args, list)
            or not isinstance(kwargs, dict)
            or len(args) > 4
            or len(kwargs) > 4
            or not all(type(v) in (int, float, bool) for v in [*args, *kwargs.values()])
        ):
            raise sandbox.BadAnswer(f"{name} takes numbers besides z1 and z2")
        a = z1.detach().clone().requires_grad_(True)
        b = z2.detach().clone().requires_grad_(True)
        try:
            loss = self.get(name)(a, b, *args, **kwargs)
            loss.backward()
        except GraderError:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. z1 and z2 of different shapes
            raise sandbox.BadAnswer(
                f"{name} was called with tensors of shapes {tuple(z1.shape)} and "
                f"{tuple(z2.shape)} and arguments {args} {kwargs}: {type(error).__name__}: "
                f"{error}"
            ) from None
        zero = torch.zeros_like
        return {
            "loss": loss.detach(),
            "grad_z1": a.grad if a.grad is not None else zero(a),
            "grad_z2": b.grad if b.grad is not None else zero(b),
        }

    def ema_oracle(self, beta: float, payload: Any) -> dict:
        """The reference EMA update for the weights a submission's step passed to `ema.update`."""
        online, target = (payload.get(k) if isinstance(payload, dict) else None for k in ("online", "target"))
        if (
            not isinstance(online, list)
            or not isinstance(target, list)
            or len(online) != len(target)
            or len(online) > 1000
            or not all(isinstance(t, torch.Tensor) for t in online + target)
            or any(o.shape != t.shape for o, t in zip(online, target))
        ):
            raise sandbox.BadAnswer("ema.update needs two networks with the same parameters")
        modules = []
        for tensors in (online, target):
            module = nn.Module()
            module.weights = nn.ParameterList([nn.Parameter(t.clone(), requires_grad=False) for t in tensors])
            modules.append(module)
        self.get("EMA")(beta).update(modules[0], modules[1])
        return {"target": [p.detach().clone() for p in modules[1].parameters()]}


def _matches(tensor: Any, candidates: list[torch.Tensor]) -> bool:
    return isinstance(tensor, torch.Tensor) and any(
        c.shape == tensor.shape and bool(torch.allclose(tensor.double(), c.double(), rtol=2e-2, atol=2e-2))
        for c in candidates
    )


class StepOracle:
    """Answers a submission's step's requests for the reference loss or EMA, and only those a
    step on the grader's own inputs makes.

    The loss is answered only for tensors that are the stand-in model's projections of this
    operation's views, with parameters the grader itself computed (the initial ones or those
    after a reference step), at most twice per step: nothing can be asked about other inputs
    (a hidden test's). The EMA (a formula the notebook states, at this operation's beta) only
    for weights of the stand-in network's shapes, at most twice per step. So a step cannot make
    the grader work more than a correct step does.
    """

    LOSS_CALLS_PER_STEP, EMA_CALLS_PER_STEP = 2, 2

    def __init__(self, reference: Reference, kwargs: dict, trajectories: list[dict]) -> None:
        self.reference = reference
        self.loss_name = kwargs.get("loss_name")
        self.method = kwargs.get("method")
        steps = len(kwargs["batches"])
        self.loss_left = self.LOSS_CALLS_PER_STEP * steps
        self.ema_left = self.EMA_CALLS_PER_STEP * steps
        records = [record for trajectory in trajectories for record in trajectory["steps"]]
        states = [kwargs["state"], *(record["params"] for record in records)]
        if self.loss_name:
            self.projections = []
            with torch.no_grad():
                for state in states:
                    net = harness.build(self.method, state)
                    for batch in kwargs["batches"]:
                        self.projections += [net(view)[1] for view in batch]
        if self.method == "byol":
            self.shapes = [tuple(t.shape) for t in kwargs["state"].values()]

    def loss(self, payload: Any) -> dict:
        if self.loss_left <= 0:
            raise sandbox.BadAnswer(
                f"the step called {self.loss_name} more often than a training step needs "
                f"({self.LOSS_CALLS_PER_STEP} times per step at most)"
            )
        self.loss_left -= 1
        if isinstance(payload, dict):
            for key in ("z1", "z2"):
                if not _matches(payload.get(key), self.projections):
                    raise sandbox.BadAnswer(
                        f"{self.loss_name} was called with a {key} that is not the model's projection of x1 or x2 "
                        "(pass the projection head's outputs for the two views, computed with the model as it is at "
                        "this step; after a step that updated the model differently from a correct one, this is "
                        "where it shows)"
                    )
        return self.reference.loss_oracle(self.loss_name, payload)

    def ema(self, beta: float, payload: Any) -> dict:
        if self.ema_left <= 0:
            raise sandbox.BadAnswer("ema.update was called more often than once per training step")
        self.ema_left -= 1
        if isinstance(payload, dict):
            for key in ("online", "target"):
                tensors = payload.get(key)
                if not isinstance(tensors, list) or [tuple(getattr(t, "shape", ())) for t in tensors] != self.shapes:
                    raise sandbox.BadAnswer(
                        "ema.update was called with networks other than this step's online and target networks"
                    )
        return self.reference.ema_oracle(beta, payload)


class Student:
    """Runs harness operations on the submission in the sandboxed worker."""

    def __init__(self, worker: sandbox.Worker, reference: Reference) -> None:
        self.worker = worker
        self.reference = reference

    def run(self, op: str, like: Any = None, trajectories: list[dict] | None = None, **kwargs: Any) -> Any:
        """The submission's result of `op`, after checking that it has the form of `like` (the
        reference's result for the same inputs; computed here when not given).

        trajectories: for a training step, the reference results whose parameters the step's
            requests to the reference loss / EMA may use (default: `like`).
        """
        if like is None:
            like = self.reference.run(op, **kwargs)
        callbacks: dict[str, Callable[[Any], Any]] = {}
        if op == "train_steps":
            oracle = StepOracle(self.reference, kwargs, trajectories or [like])
            if kwargs.get("loss_name"):
                callbacks["loss"] = oracle.loss
            if kwargs.get("method") == "byol":
                beta = float(kwargs.get("beta", 0.9))
                callbacks["ema"] = lambda payload: oracle.ema(beta, payload)
        actual = self.worker.run(op, kwargs, callbacks=callbacks)
        conform.check_result(actual, like)
        return actual


# ======================================================================================
# A grading session
# ======================================================================================
@dataclass
class GradeOptions:
    """How to grade (the CLI's options)."""

    assignment: str | None = None
    results: Path | None = None
    solutions: Path = SOLUTIONS_DIR
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    isolation: str = "auto"
    unit_only: bool = False
    progress: Callable[[str], None] | None = None
    seed: int | None = None  # the hidden tests' seed (regrades); default: course.toml's hidden_seed


@dataclass
class GradingContext:
    """What the graded tests see (through the fixtures of ``autograder/tests/conftest.py``)."""

    assignment: Assignment
    submission_dir: Path
    notebook: Path
    extracted: extraction.ExtractedNotebook
    student: Student
    reference: Reference
    worker: sandbox.Worker
    hidden_seed: int | None = None  # the hidden tests draw their inputs from it (None: their fixed seeds)


class SuitePlugin:
    """Hands the grading context to the graded suite's conftest (as `sslgrader_context`)."""

    def __init__(self, context: GradingContext) -> None:
        self.sslgrader_context = context


@dataclass
class GradeOutcome:
    results: dict
    exit_code: int
    results_path: Path | None
    assignment: str | None


def grade(submission_dir: str | os.PathLike, options: GradeOptions | None = None) -> GradeOutcome:
    """Grade one submission folder (see the module docstring)."""
    options = options or GradeOptions()
    started = time.monotonic()
    folder = Path(submission_dir)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder; pass the folder that holds the submitted notebook")
    if options.assignment is not None and options.assignment not in ASSIGNMENTS:
        raise UsageError(f"unknown assignment {options.assignment!r}; choose one of {', '.join(ASSIGNMENTS)}")
    results_path = Path(options.results) if options.results else folder / "results.json"
    notes: list[str] = []
    name, notebook, note = find_notebook(folder, options.assignment)
    if note:
        notes.append(note)
    extra = {"assignment": name, "notebook": notebook.name if notebook else None}

    def finish(results: dict, code: int) -> GradeOutcome:
        write_json_atomic(results, results_path)
        return GradeOutcome(results, code, results_path, name)

    if notebook is None or name is None:
        return finish(
            build_results(None, notes, time.monotonic() - started, extra, error=f"Nothing was graded: {note}."), 0
        )
    try:
        extracted = extraction.extract(notebook)
    except extraction.NotebookError as error:
        return finish(
            build_results(None, notes, time.monotonic() - started, extra, error=f"Nothing was graded: {error}."), 0
        )
    notes += extracted.warnings
    assignment = ASSIGNMENTS[name]
    isolation = None
    worker = None
    plugin = ResultsPlugin(name, list(assignment.tasks), unit_only=options.unit_only, progress=options.progress)
    error_text = None
    hidden_seed = None
    try:
        hidden_seed, seed_source = hidden_inputs.choose(hidden_inputs.load_setting(), folder, notebook, options.seed)
        isolation = sandbox.detect_isolation(options.isolation)
        if not (Path(options.solutions) / assignment.notebook).is_file():
            raise GraderError(f"the reference notebook {Path(options.solutions) / assignment.notebook} is missing")
        preload = sandbox.preload_for(extraction.imported_modules(extracted.statements))
        zygote = sandbox.shared_zygote(isolation, options.limits, preload)  # starts in the background
        reference = Reference(load_reference(name, options.solutions))
        if isolation.mode == "uid":  # no private root: the reference solutions lose world access
            sandbox.protect_paths([Path(options.solutions)])
        worker = sandbox.Worker(
            zygote,
            extraction.statements_payload(extracted.statements),
            options.limits,
            secrets=secret_paths(folder, results_path, Path(options.solutions)),
            restart_zygote=lambda: sandbox.shared_zygote(isolation, options.limits, preload),
        )
        plugin.take_output = worker.take_output
        context = GradingContext(
            assignment, folder, notebook, extracted, Student(worker, reference), reference, worker, hidden_seed
        )
        code = run_suite(plugin, SuitePlugin(context))
        if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            plugin.grader_errors.append(f"pytest ended with {code!r}")
        report = worker.load_report
        if report.output.strip():
            notes.append("While its definitions were loaded, your notebook printed:\n" + report.output[-3000:])
    except (GraderError, sandbox.SandboxError, CourseConfigError) as error:
        plugin.grader_errors.append(str(error))
    except Exception as error:  # noqa: BLE001 - a bug of the grader: still a valid results.json, exit 2
        plugin.grader_errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc()[-2000:]}")
    finally:
        if worker is not None:
            worker.close()
    if plugin.grader_errors:
        error_text = "The grader itself failed (not your fault; tell your instructor):\n" + "\n".join(
            e[:2000] for e in plugin.grader_errors
        )
    extra["sandbox"] = isolation.mode if isolation else "none (grading stopped)"
    if isolation is not None and isolation.notes:
        extra["sandbox_notes"] = isolation.notes
    if worker is not None:
        extra["sandbox_applied"] = sandbox.applied_summary(worker.zygote.applied)
        extra["student_code_seconds"] = round(worker.budget.used, 2)
    if plugin.grader_errors:
        extra["grader_errors"] = [e[:2000] for e in plugin.grader_errors]
    if hidden_seed is not None:
        extra["hidden_seed"] = {"seed": hidden_seed, "source": seed_source}
    results = build_results(plugin, notes, time.monotonic() - started, extra, error=error_text)
    if hidden_seed is not None:  # instructors only: the seed that reproduces this grading
        results["tests"].append(hidden_inputs.seed_test(hidden_seed, seed_source))
    return finish(results, 2 if plugin.grader_errors else 0)


def secret_paths(submission: Path, results_path: Path, solutions: Path) -> dict:
    """What the sandbox's probe must fail to reach: read the grader, the reference solutions,
    the test split, the results and other submissions; write where the grader keeps anything."""
    read: list[Path | str] = [
        solutions,
        *sorted(solutions.glob("*.ipynb"))[:2],
        PROJECT_ROOT / "autograder",
        PROJECT_ROOT / "autograder" / "grading.py",
        PROJECT_ROOT / "tests",
        PROJECT_ROOT / "data",
        PROJECT_ROOT / ".git",
        f"/proc/{os.getpid()}/cwd",
        f"/proc/{os.getpid()}/environ",
        f"/proc/{os.getpid()}/mem",
        "/root",
    ]
    try:
        from autograder.checkpoint.rubric import load_course_config
        from autograder.checkpoint.split import candidate_sources

        rubric = load_course_config()
        for _, path, _ in candidate_sources(rubric, PROJECT_ROOT, PROJECT_ROOT / "data", os.environ):
            if path.exists():
                read.append(path)
    except Exception:  # noqa: BLE001 - a broken course.toml is reported by the checkpoint test
        pass
    submission = submission.resolve()
    if results_path.resolve().parent != submission:
        read.append(results_path.resolve().parent)
    try:
        siblings = [p for p in submission.parent.iterdir() if p.is_dir() and p.resolve() != submission]
    except OSError:
        siblings = []
    read += sorted(siblings)[:3]  # other submissions beside this one (grade-all)
    write = [results_path.resolve().parent, PROJECT_ROOT, solutions, submission]
    return {"read": [str(p) for p in read], "write": [str(p) for p in dict.fromkeys(write)]}


def run_suite(*plugins: Any, target: Path = TESTS_DIR) -> int:
    """Run the graded suite (or one module of it, `target`) in this process with `plugins`;
    returns pytest's exit code."""
    args = [
        str(target),
        "-c",
        str(TESTS_DIR / "pytest.ini"),
        "--rootdir",
        str(TESTS_DIR),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:timeout",
        "-p",
        "no:terminal",
        "-W",
        "ignore::DeprecationWarning",
    ]
    # The graded modules read the course configuration (points, thresholds) when imported:
    # import them afresh for every grading, so the configuration in force now is the one used.
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(TESTS_DIR) + os.sep):
            del sys.modules[name]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the worker runs on one thread too: the same arithmetic on both sides
    try:
        return pytest.main(args, plugins=list(plugins))
    finally:
        torch.set_num_threads(previous_threads)


def summary_table(results: dict) -> str:
    tasks = results.get("extra_data", {}).get("tasks") or {}
    return format_table(tasks) if tasks else "(no graded tests ran)"


__all__ = [
    "ASSIGNMENTS",
    "Assignment",
    "GradeOptions",
    "GradeOutcome",
    "UsageError",
    "find_notebook",
    "grade",
    "load_reference",
]
