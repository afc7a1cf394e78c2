"""The checkpoint's command line: prepare the test split, check which one is used, grade one checkpoint.

Also used by Gradescope's ``setup.sh`` and by the benchmark::

    python -m autograder checkpoint prepare [--source S] [--out data/cifar10-test.pt]
    python -m autograder checkpoint check                 # which test split would be used
    python -m autograder checkpoint grade SUBMISSION_DIR [--threads N] [--json]

``python -m autograder.checkpoint_grading <verb>`` is the same command. Nothing here imports
torch until a verb runs, so ``python -m autograder`` stays quick to start.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _main_prepare(args: argparse.Namespace) -> int:
    from autograder.checkpoint.split import (
        BAKED_TEST_SPLIT,
        PROJECT_ROOT,
        TestSplitUnavailable,
        load_test_split_file,
        prepare_test_split,
    )
    from helpers.data import DataSourceError

    try:
        path = prepare_test_split(
            args.out or PROJECT_ROOT / BAKED_TEST_SPLIT,
            source=args.source,
            download_root=args.download_root,
            download=not args.no_download,
        )
    except (DataSourceError, TestSplitUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    split = load_test_split_file(path)
    print(f"wrote {path}: {len(split):,} images ({path.stat().st_size / 2**20:.1f} MiB) from {split.source}")
    return 0


def _main_check(args: argparse.Namespace) -> int:
    import torch

    from autograder.checkpoint.rubric import load_course_config
    from autograder.checkpoint.split import resolve_test_split
    from autograder.results import GraderError

    try:
        rubric = load_course_config(args.config)
        split = resolve_test_split(rubric)
    except GraderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    counts = torch.bincount(split.labels, minlength=10).tolist()
    print(f"test split: {len(split):,} images, per class {counts}\nfrom {split.source}")
    print(f"rubric: {json.dumps(dataclasses.asdict(rubric))}")
    print(rubric.summary())
    return 0


def _main_grade(args: argparse.Namespace) -> int:
    from autograder.checkpoint.grading import grade_checkpoint
    from autograder.checkpoint.rubric import load_course_config
    from autograder.checkpoint.split import load_test_split_file
    from autograder.results import GraderError

    try:
        rubric = load_course_config(args.config)
        if args.batch_size:
            rubric = dataclasses.replace(rubric, batch_size=args.batch_size)
        split = load_test_split_file(args.test_split) if args.test_split else None
        grade = grade_checkpoint(args.submission, rubric, test_split=split, device=args.device, threads=args.threads)
    except GraderError as error:
        print(f"grader error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(grade.to_dict(), indent=1))
    else:
        print(grade.full_credit_message())
        if rubric.has_bonus:
            print("\n" + grade.bonus_message())
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The verbs ``prepare``, ``check`` and ``grade`` under `parser` (each sets ``run``)."""
    commands = parser.add_subparsers(dest="checkpoint_command", required=True)
    prepare = commands.add_parser("prepare", help="write the prepared CIFAR-10 test split file")
    prepare.add_argument("--out", type=Path, help="file to write (default data/cifar10-test.pt)")
    prepare.add_argument(
        "--source",
        help="a local CIFAR-10 copy (folder, .tar.gz, or a prepared .pt); "
        "default: $SSL_LAB_CIFAR10 or torchvision's download",
    )
    prepare.add_argument("--download-root", help="where torchvision downloads (default: a temp folder)")
    prepare.add_argument("--no-download", action="store_true", help="never download")
    prepare.set_defaults(run=_main_prepare)
    check = commands.add_parser("check", help="say which test split the grader would use")
    check.add_argument("--config", help="course configuration (default: course.toml)")
    check.set_defaults(run=_main_check)
    grade = commands.add_parser("grade", help="grade the checkpoint of one submission folder")
    grade.add_argument("submission", type=Path)
    grade.add_argument("--config")
    grade.add_argument("--test-split", help="a prepared test split file (default: resolved)")
    grade.add_argument("--threads", type=int)
    grade.add_argument("--batch-size", type=int)
    grade.add_argument("--device")
    grade.add_argument("--json", action="store_true", help="print a JSON summary")
    grade.set_defaults(run=_main_grade)


def main(argv: Sequence[str] | None = None, prog: str = "python -m autograder.checkpoint_grading") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Checkpoint grading: prepare the test split, check it, grade."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return args.run(args)


__all__ = ["add_arguments", "main"]
