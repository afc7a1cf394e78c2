"""Hidden inputs drawn per submission: the seed a submission's hidden tests draw their inputs from.

Off by default: the graded tests use their fixed seeds, the same inputs for every submission.
With ``hidden_seed = "per-submission"`` in course.toml's ``[grading]`` table, the tests that
are not visible to students and whose inputs can vary while every correct answer still passes
(values of the same shapes; see `autograder.tests.tasks`) draw their inputs from a seed of the
submission: Gradescope's submission id (``submission_metadata.json`` beside the submission
folder, read by `autograder.submission_metadata`), else a hash of the submitted notebook's
bytes. So an answer fitted to one set of hidden inputs gains nothing on the next submission.
``hidden_seed = <integer>`` draws them from that seed for every submission, and ``grade --seed
N`` regrades with seed N (the seed a results.json names). Visible tests never change.

The seed used goes into results.json as a test of 0 points that only instructors see
(`seed_test`) and into ``extra_data["hidden_seed"]``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from autograder import submission_metadata
from autograder.course_settings import CourseConfigError, read_course_document

#: The key of course.toml's ``[grading]`` table, and its values.
SETTING = "hidden_seed"
FIXED = "fixed"
PER_SUBMISSION = "per-submission"
#: Seeds are non-negative integers below this (what ``torch.Generator.manual_seed`` takes).
SEED_LIMIT = 2**63
#: Bytes of the notebook hashed for a local seed (the grader reads no larger notebook).
MAX_HASHED_BYTES = 32 * 2**20


def parse_setting(value: Any, where: str = f"[grading] {SETTING}") -> str | int:
    """`FIXED`, `PER_SUBMISSION` or a seed (CourseConfigError names anything else)."""
    if value in (FIXED, PER_SUBMISSION):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < SEED_LIMIT:
        return value
    raise CourseConfigError(
        f'{where} must be "{FIXED}", "{PER_SUBMISSION}" or a whole number from 0 to 2**63 - 1, not {value!r}'
    )


def load_setting(path: str | os.PathLike | None = None) -> str | int:
    """The ``[grading] hidden_seed`` of the course configuration (`FIXED` when absent)."""
    path, document = read_course_document(path)
    table = document.get("grading", {})
    value = table.get(SETTING, FIXED) if isinstance(table, dict) else FIXED
    return parse_setting(value, where=f"{path} [grading] {SETTING}")


def _seed_of(text: bytes) -> int:
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") % SEED_LIMIT


def submission_seed(submission_dir: Path, notebook: Path) -> tuple[int, str]:
    """(seed, where it comes from): Gradescope's submission id when ``submission_metadata.json``
    lies beside the submission folder (Gradescope's layout), else the notebook's bytes."""
    metadata = submission_metadata.read(Path(submission_dir).parent / submission_metadata.FILE_NAME)
    if metadata.submission_id is not None:
        return _seed_of(b"gradescope-submission:" + metadata.submission_id.encode()), (
            f"Gradescope submission {metadata.submission_id}"
        )
    with open(notebook, "rb") as handle:
        content = handle.read(MAX_HASHED_BYTES)
    return _seed_of(b"notebook:" + content), f"a hash of {Path(notebook).name}"


def choose(
    setting: str | int, submission_dir: Path, notebook: Path, override: int | None = None
) -> tuple[int | None, str]:
    """(seed, where it comes from) for one submission; seed None: the tests' fixed seeds."""
    if override is not None:
        return parse_setting(override, where="--seed"), "given with --seed"
    if setting == FIXED:
        return None, "the tests' fixed seeds"
    if setting == PER_SUBMISSION:
        return submission_seed(submission_dir, notebook)
    return setting, "course.toml [grading] hidden_seed"


def drawn(hidden_seed: int | None, seed: int) -> int:
    """The seed a hidden test draws from in place of its fixed `seed` (itself when `hidden_seed`
    is None), different for every (hidden seed, fixed seed) pair."""
    if hidden_seed is None:
        return seed
    return _seed_of(f"{hidden_seed}/{seed}".encode()) % 2**31


def seed_test(hidden_seed: int, source: str) -> dict:
    """The results.json test (0 points, instructors only) that records the seed."""
    return {
        "name": f"Hidden inputs: seed {hidden_seed}",
        "score": 0.0,
        "max_score": 0.0,
        "status": "passed",
        "output": (
            f"The hidden tests drew their inputs from seed {hidden_seed} ({source}); the visible tests "
            f"used their fixed inputs. Regrade with the same inputs: python -m autograder grade "
            f"SUBMISSION --seed {hidden_seed}"
        ),
        "output_format": "text",
        "visibility": "hidden",
        "tags": [SETTING],
    }


__all__ = [
    "FIXED",
    "PER_SUBMISSION",
    "SETTING",
    "choose",
    "drawn",
    "load_setting",
    "parse_setting",
    "seed_test",
    "submission_seed",
]
