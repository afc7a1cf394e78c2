"""Command line: ``python -m autograder <verb>``, one entry point for every tool of the bundle.

``grade SUBMISSION_DIR [--assignment A] [--results PATH]``
    Grade one submission folder; writes ``results.json`` (Gradescope's format) and prints a
    table per task. Exit status 0 whenever grading worked, whatever the score; 2 when the
    grader itself failed (e.g. the reference notebook is missing); 64 for a wrong call.
``grade-all SUBMISSIONS_DIR --jobs N --csv grades.csv [--similarity] [--compare old.csv]``
    Grade every sub-folder (one submission each) in parallel (`autograder.batch`); a
    submission that breaks anything is recorded as such and never stops the others. One CSV
    row per submission: per-task scores, total, status. ``--similarity`` adds the report of
    `autograder.similarity`, ``--compare`` the changes against earlier grades
    (`autograder.regrade_diff`).
``similarity SUBMISSIONS_DIR``, ``regrade-diff OLD_CSV NEW_CSV``
    The same two reports on their own, without grading.
``manual-answers SUBMISSIONS_DIR``
    One page per question graded by hand (`autograder.manual`).
``check-sandbox``
    Whether this machine can isolate submissions (exit 1 if not).
``release``, ``wheels``, ``gradescope [build|run]``
    Handed to `autograder.release`, `autograder.wheels` and `autograder.gradescope` with their
    own options (``gradescope --assignment A`` builds the zip).
``demo``
    The README's main job, offline: release, then grade the reference solutions, an
    untouched student notebook and a partly wrong one, printing the three tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autograder.batch import GRADER_ERROR
from autograder.contract import ASSIGNMENTS

USAGE_ERROR = 64


def _add_grading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assignment",
        choices=list(ASSIGNMENTS),
        help="which assignment (default: detected from the notebook's file name)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the hidden tests' inputs, for a reproducible regrade (default: course.toml "
        "[grading] hidden_seed; results.json names the seed it used)",
    )
    parser.add_argument(
        "--solutions",
        type=Path,
        help="folder of the reference notebooks (default: the project's solutions/)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        help="seconds one call of the student's code may take (default: course.toml [grading], 10)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds the student's code may take in all (default: course.toml [grading], 60)",
    )
    parser.add_argument(
        "--load-timeout",
        type=float,
        default=30.0,
        help="seconds one top-level statement may take while the notebook is loaded (default 30)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        help="memory the student's code may use, in MB (default: half the free memory, 256-1536)",
    )
    parser.add_argument(
        "--isolation",
        choices=["auto", "namespace", "uid", "process", "unconfined"],
        default=os.environ.get("SSL_LAB_ISOLATION", "auto"),
        help="how to isolate the student's code (default: the strongest this machine allows; "
        "grading stops when it is not enough); unconfined only for code you trust, never as root",
    )
    parser.add_argument("--unit-only", action="store_true", help="only the unit tests (not the checkpoint)")


def _limits(args: argparse.Namespace) -> Any:
    from autograder import sandbox
    from autograder.course_settings import load_grading_settings

    settings = load_grading_settings()
    limits = sandbox.Limits(
        call_timeout=args.call_timeout or settings["call_seconds"],
        load_timeout=args.load_timeout,
        budget_s=args.budget or settings["budget_seconds"],
    )
    if args.memory_mb:
        limits.memory_mb = args.memory_mb
    return limits


def _start_sandbox_early(args: argparse.Namespace, submission: Path | None) -> Any:
    """Start the sandbox before this process imports torch: its zygote's imports (torch,
    torchvision, ...) then run while the grader imports its own. Returns the isolation."""
    from autograder import extract, sandbox
    from autograder.assignments import find_notebook

    try:
        isolation = sandbox.detect_isolation(args.isolation)
    except sandbox.SandboxError:
        return None  # grading reports it as a grader error, with a results.json
    preload = sandbox.PRELOAD
    if submission is not None:
        _, notebook, _ = find_notebook(submission, args.assignment)
        try:
            if notebook is not None:
                preload = sandbox.preload_for(extract.imported_modules(extract.extract(notebook).statements))
        except extract.NotebookError:
            pass  # grading reports it
    sandbox.shared_zygote(isolation, _limits(args), preload)
    return isolation


def _options(args: argparse.Namespace, results: Path | None, progress: Any) -> Any:
    from autograder import grading

    return grading.GradeOptions(
        assignment=args.assignment,
        results=results,
        solutions=args.solutions or grading.SOLUTIONS_DIR,
        limits=_limits(args),
        isolation=args.isolation,
        unit_only=args.unit_only,
        progress=progress,
        seed=args.seed,
    )


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_grade(args: argparse.Namespace) -> int:
    if not args.submission.is_dir():
        print(
            f"error: {args.submission} is not a folder; pass the folder that holds the submitted notebook",
            file=sys.stderr,
        )
        return USAGE_ERROR
    isolation = _start_sandbox_early(args, args.submission)
    if not args.quiet and isolation is not None:
        _say(isolation.summary())
    from autograder import grading

    progress = None if args.quiet else _say
    try:
        outcome = grading.grade(args.submission, _options(args, args.results, progress))
    except grading.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    results = outcome.results
    if not args.quiet:
        _say("")
        _say(results["output"])
        _say(
            f"\nscore {results['score']:g} / {sum(t['max_score'] for t in results['tests']):g}"
            f"  ({outcome.assignment or 'no assignment'}, {results['execution_time']:.1f} s)"
            f"\nresults: {outcome.results_path}"
        )
    return outcome.exit_code


def cmd_serve(args: argparse.Namespace) -> int:
    """(internal) One grading process of grade-all: grades the folders named on stdin in this
    process, keeping its sandbox and the reference between submissions (`autograder.batch.serve`)."""
    _start_sandbox_early(args, None)
    from autograder import batch, grading

    return batch.serve(lambda folder, results: grading.grade(folder, _options(args, results, None)).exit_code)


def _serve_command(args: argparse.Namespace) -> list[str]:
    """The command line of one grading process of grade-all, with this call's grading options."""
    command = [
        sys.executable,
        "-m",
        "autograder",
        "_serve",
        "--load-timeout",
        str(args.load_timeout),
        "--isolation",
        args.isolation,
    ]
    for flag, value in (
        ("--assignment", args.assignment),
        ("--solutions", args.solutions),
        ("--memory-mb", args.memory_mb),
        ("--call-timeout", args.call_timeout),
        ("--budget", args.budget),
    ):
        if value:
            command += [flag, str(value)]
    if args.unit_only:
        command.append("--unit-only")
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    return command


def cmd_grade_all(args: argparse.Namespace) -> int:
    from autograder import batch

    root = Path(args.submissions)
    if not root.is_dir():
        print(f"error: {root} is not a folder of submissions", file=sys.stderr)
        return USAGE_ERROR
    folders = batch.submission_folders(root)
    if not folders:
        print(f"error: {root} has no sub-folders (one per submission)", file=sys.stderr)
        return USAGE_ERROR
    earlier = None
    if args.compare is not None:
        from autograder import regrade_diff

        try:  # read now: --csv may name the same file
            earlier = regrade_diff.read_grades(args.compare)
        except regrade_diff.GradesError as error:
            print(f"error: --compare: {error}", file=sys.stderr)
            return USAGE_ERROR
    rows = batch.grade_all(
        folders, _serve_command(args), jobs=args.jobs, timeout=args.timeout, say=None if args.quiet else _say
    )
    csv_path = Path(args.csv)
    batch.write_csv(rows, csv_path)
    if not args.quiet:
        _say(f"wrote {csv_path} ({len(rows)} submissions)")
    if args.similarity:
        from autograder import similarity

        report = similarity.run(root, args.assignment, csv_path.with_name(csv_path.stem + "-similarity"))
        if not args.quiet:
            _say(report.summary())
    if earlier is not None:
        from autograder import regrade_diff

        changes = regrade_diff.compare(earlier, regrade_diff.read_grades(csv_path))
        changes_path = csv_path.with_name(csv_path.stem + "-changes.csv")
        regrade_diff.write_csv(changes, changes_path)
        if not args.quiet:
            _say(regrade_diff.table(changes, args.compare, csv_path) + f"\nwrote {changes_path}")
    return batch.exit_code(rows)


def cmd_similarity(args: argparse.Namespace) -> int:
    from autograder import similarity

    if not Path(args.submissions).is_dir():
        print(f"error: {args.submissions} is not a folder of submissions", file=sys.stderr)
        return USAGE_ERROR
    out = (
        args.out
        if args.out is not None
        else Path(args.submissions).with_name(Path(args.submissions).name + "-similarity")
    )
    report = similarity.run(args.submissions, args.assignment, out, top=args.top)
    _say(report.summary())
    return 0


def cmd_regrade_diff(args: argparse.Namespace) -> int:
    from autograder import regrade_diff

    try:
        changes = regrade_diff.compare(regrade_diff.read_grades(args.old), regrade_diff.read_grades(args.new))
    except regrade_diff.GradesError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    _say(regrade_diff.table(changes, args.old, args.new))
    if args.out is not None:
        regrade_diff.write_csv(changes, args.out)
        _say(f"wrote {args.out}")
    return 0


#: Verbs whose arguments go, as they are, to another module's own ``main(argv)``.
DELEGATED = {"release": "autograder.release", "wheels": "autograder.wheels"}


def cmd_delegated(verb: str, module_name: str, arguments: list[str]) -> int:
    """Run ``module_name.main(arguments)`` (the module's own parser reads the options)."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        print(f"error: the {verb} tool ({module_name}) is missing or broken: {error}", file=sys.stderr)
        return GRADER_ERROR
    main = getattr(module, "main", None)
    if main is None:
        print(f"error: {module_name} has no main(); update the {verb} tool", file=sys.stderr)
        return GRADER_ERROR
    return int(main(arguments) or 0)


def cmd_demo(args: argparse.Namespace) -> int:
    from autograder import demo

    return demo.main(quiet=args.quiet, keep=args.keep)


def cmd_check_sandbox(args: argparse.Namespace) -> int:
    """Start the sandbox as grading would, probe it, and run one call in it; exit 1 when
    submissions cannot be isolated here (Gradescope's setup.sh runs this as its last step)."""
    import tempfile

    from autograder import extract, grading, sandbox

    started = time.monotonic()
    try:
        isolation = sandbox.detect_isolation(args.isolation)
        _say(isolation.summary())
        limits = _limits(args)
        zygote = sandbox.shared_zygote(isolation, limits, ("torch",))
        with tempfile.TemporaryDirectory(prefix="ssl-lab-check-") as folder:
            notebook = Path(folder) / "check.ipynb"
            notebook.write_text(
                json.dumps(
                    {
                        "nbformat": 4,
                        "nbformat_minor": 5,
                        "metadata": {},
                        "cells": [
                            {
                                "cell_type": "code",
                                "metadata": {},
                                "execution_count": None,
                                "outputs": [],
                                "source": "import torch\n\ndef double(x):\n    return 2 * x\n",
                            }
                        ],
                    }
                )
            )
            statements = extract.statements_payload(extract.extract(notebook).statements)
            worker = sandbox.Worker(
                zygote,
                statements,
                limits,
                secrets=grading.secret_paths(
                    Path(folder), Path(folder) / "results.json", args.solutions or grading.SOLUTIONS_DIR
                ),
            )
            try:
                import torch

                value = worker.run("call", {"fn": "double", "args": [torch.arange(3.0)], "kwargs": {}})["returned"]
                if not isinstance(value, torch.Tensor) or value.tolist() != [0.0, 2.0, 4.0]:
                    raise sandbox.SandboxError(f"a call in the sandbox returned {value!r}")
                _say(sandbox.applied_summary(worker.zygote.applied))
            finally:
                worker.close()
    except (sandbox.SandboxError, sandbox.SubmissionFault, OSError) as error:
        print(f"check-sandbox FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        sandbox.close_all()
    _say(f"check-sandbox: OK ({isolation.mode} mode, {time.monotonic() - started:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade one submission folder")
    grade.add_argument("submission", type=Path, help="the folder holding the submitted notebook")
    grade.add_argument("--results", type=Path, help="where to write results.json (default: SUBMISSION/results.json)")
    grade.add_argument("--quiet", action="store_true", help="print nothing (results.json only)")
    _add_grading_options(grade)
    grade.set_defaults(run=cmd_grade)
    grade_all = commands.add_parser("grade-all", help="grade a folder of submissions in parallel")
    grade_all.add_argument("submissions", type=Path, help="a folder with one sub-folder per submission")
    grade_all.add_argument(
        "--jobs",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="grading processes at once, each with its own sandbox (default: half the CPUs)",
    )
    grade_all.add_argument("--csv", default="grades.csv", help="where to write the grades (default grades.csv)")
    grade_all.add_argument("--timeout", type=float, default=900.0, help="seconds per submission (default 900)")
    grade_all.add_argument("--quiet", action="store_true", help="print nothing (the CSV and results.json files only)")
    grade_all.add_argument(
        "--similarity",
        action="store_true",
        help="also compare the graded cells of every pair of submissions: CSV-similarity.html "
        "and CSV-similarity.csv beside the CSV, for a person to review (never a penalty)",
    )
    grade_all.add_argument(
        "--compare",
        type=Path,
        metavar="OLD_CSV",
        help="an earlier grade-all CSV: list every submission whose score changed, per task "
        "(printed, and CSV-changes.csv beside the CSV)",
    )
    _add_grading_options(grade_all)
    grade_all.set_defaults(run=cmd_grade_all)
    check = commands.add_parser(
        "check-sandbox",
        help="check that this machine can isolate submissions (exit 1 if not; Gradescope's setup.sh runs it)",
    )
    _add_grading_options(check)
    check.set_defaults(run=cmd_check_sandbox)
    serve = commands.add_parser("_serve", help="(internal) one grading process of grade-all")
    _add_grading_options(serve)
    serve.set_defaults(run=cmd_serve)
    # `release ARGS...` and `wheels ARGS...` are handed to their modules' own parsers as they are
    # (see `main`), and so are `gradescope build ARGS...` and `gradescope run ARGS...`.
    commands.add_parser(
        "release",
        add_help=False,
        help="regenerate notebooks/ from solutions/ (autograder.release; --help for its options)",
    )
    commands.add_parser(
        "wheels",
        add_help=False,
        help="check that every pin of the requirements has wheels for "
        "the Pythons the READMEs claim (autograder.wheels; --help for its options)",
    )
    similarity = commands.add_parser(
        "similarity",
        help="compare the graded cells of every pair of submissions "
        "(what grade-all --similarity writes, without grading)",
    )
    similarity.add_argument("submissions", type=Path, help="a folder with one sub-folder per submission")
    similarity.add_argument(
        "--assignment",
        choices=list(ASSIGNMENTS),
        help="compare only this assignment's notebooks (default: each submission's own)",
    )
    similarity.add_argument(
        "--out",
        type=Path,
        help="OUT.html and OUT.csv are written (default: SUBMISSIONS-similarity beside it)",
    )
    similarity.add_argument("--top", type=int, help="pairs shown in the HTML page (default 50)")
    similarity.set_defaults(run=cmd_similarity)
    regrade = commands.add_parser(
        "regrade-diff",
        help="every submission whose score changed between two grade-all CSVs, per task (and those added or removed)",
    )
    regrade.add_argument("old", type=Path, help="the earlier grades")
    regrade.add_argument("new", type=Path, help="the later grades")
    regrade.add_argument("--out", type=Path, help="also write the changes to this CSV")
    regrade.set_defaults(run=cmd_regrade_diff)
    demo = commands.add_parser("demo", help="release, then grade three sample submissions offline")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--keep", type=Path, help="keep the sample submissions in this folder")
    demo.set_defaults(run=cmd_demo)
    from autograder import manual  # no torch at import time

    manual_answers = commands.add_parser(
        "manual-answers", help="one page per question graded by hand, every submission's answer side by side"
    )
    manual.add_arguments(manual_answers)
    manual_answers.set_defaults(run=manual.cmd_manual_answers)
    from autograder import gradescope as gradescope_zip  # stdlib-only at import time

    gradescope = commands.add_parser(
        "gradescope",
        help="build dist/<assignment>-autograder.zip for Gradescope "
        "(gradescope build|run ARGS: autograder.gradescope's own commands)",
    )
    gradescope_zip.add_build_arguments(gradescope)
    gradescope.set_defaults(run=gradescope_zip.cmd_build)
    from autograder.checkpoint import command as checkpoint_command  # no torch at import time

    checkpoint_command.add_arguments(
        commands.add_parser(
            "checkpoint", help="the homework's checkpoint: prepare or check the test split, grade one checkpoint"
        )
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in DELEGATED:
        return cmd_delegated(argv[0], DELEGATED[argv[0]], argv[1:])
    if argv[:1] == ["gradescope"] and argv[1:2] in (["build"], ["run"]):
        return cmd_delegated("gradescope", "autograder.gradescope", argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return USAGE_ERROR if exit_.code else 0
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
