"""Rate limiting of graded checkpoint evaluations, from Gradescope's ``submission_metadata.json``.

An evaluation of the checkpoint costs about 160 CPU-seconds (README, "Gradescope settings").
With ``[checkpoint.rate_limit] evaluations = N`` in ``course.toml`` (off by default), a
student gets at most N evaluations in any ``window_hours``: the way otter-grader's rate
limiting plugin and Gradescope's documentation ("Rate limiting schemes") do it.

- **What counts**: earlier submissions (``previous_submissions`` of the metadata, read by
  `autograder.submission_metadata`) whose results.json records that an evaluation ran
  (``extra_data.checkpoint.evaluated``, written by `CheckpointGrade.record`). A checkpoint
  that could not be loaded, a grader error, or a submission that was itself limited did not
  evaluate anything and does not count.
- **The window** ends at the submission's own ``created_at``, never at the clock, so a
  regrade decides as the first grading did; only submissions made before it count.
- **When the limit applies**, the checkpoint is not evaluated: the measurement of the latest
  evaluated submission (its correct and total images) is carried over and scored under the
  current rubric, and the feedback says so and when the next evaluation is possible (the
  moment the oldest counted evaluation leaves the window). The unit tests run as always.
- **Never a crash, never a wrong limit**: no metadata (local grading), a missing, unreadable or
  corrupt file, no submission time, or earlier results without a usable record: the
  evaluation runs (no limit applies), and `RateLimitDecision.note` says why for the
  instructor.

Gradescope's metadata: https://gradescope-autograders.readthedocs.io/en/latest/submission_metadata/
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from autograder import submission_metadata
from autograder.checkpoint.rubric import RateLimitSettings
from autograder.submission_metadata import SubmissionMetadata

#: Environment variable naming the submission's metadata file (`autograder.gradescope.run`
#: sets it to ``/autograder/submission_metadata.json``); unset: no metadata, no limit.
ENV_METADATA = "SSL_LAB_SUBMISSION_METADATA"
#: The key of results.json's ``extra_data`` under which a checkpoint grade records itself.
RECORD_KEY = "checkpoint"


@dataclass(frozen=True)
class EarlierEvaluation:
    """An earlier submission whose checkpoint was evaluated: when, and what it measured."""

    time: datetime
    correct: int
    total: int


@dataclass(frozen=True)
class RateLimitDecision:
    """Whether this submission's checkpoint is evaluated.

    Attributes:
        limited: the limit applies: do not evaluate, carry `carried` over.
        carried: the latest evaluated earlier submission (when `limited`).
        used: evaluations counted in the window.
        next_evaluation: when the next evaluation is possible (when `limited`).
        note: for the instructor: why no limit was applied, or that one was.
    """

    limited: bool
    carried: EarlierEvaluation | None = None
    used: int = 0
    next_evaluation: datetime | None = None
    note: str = ""


def _aware(moment: datetime) -> datetime:
    """A time with a zone (a time without one is taken as UTC, so comparisons never raise)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _evaluation(time: datetime | None, results: Any, test_images: int) -> EarlierEvaluation | None:
    """The evaluation an earlier submission's results.json records, if it records a usable one."""
    extra = results.get("extra_data") if isinstance(results, dict) else None
    record = extra.get(RECORD_KEY) if isinstance(extra, dict) else None
    if time is None or not isinstance(record, dict) or record.get("evaluated") is not True:
        return None
    correct, total = record.get("correct"), record.get("total")
    if not all(type(v) is int for v in (correct, total)) or total != test_images or not 0 <= correct <= total:
        return None
    return EarlierEvaluation(_aware(time), correct, total)


def earlier_evaluations(metadata: SubmissionMetadata, test_images: int) -> list[EarlierEvaluation]:
    """The evaluations of the earlier submissions made before this one, oldest first."""
    if metadata.created_at is None:
        return []
    now = _aware(metadata.created_at)
    found = [_evaluation(previous.time, previous.results, test_images) for previous in metadata.previous]
    return sorted((e for e in found if e is not None and e.time < now), key=lambda e: e.time)


def decide(settings: RateLimitSettings, metadata: SubmissionMetadata, test_images: int) -> RateLimitDecision:
    """Whether the limit applies to this submission (see the module docstring)."""
    if not settings.enabled:
        return RateLimitDecision(False)
    if metadata.problem:
        return RateLimitDecision(False, note=f"rate limit not applied: {metadata.problem}")
    if metadata.created_at is None:
        return RateLimitDecision(
            False,
            note="rate limit not applied: the submission's time is unknown "
            "(no submission_metadata.json, e.g. local grading)",
        )
    now = _aware(metadata.created_at)
    window = timedelta(hours=settings.window_hours)
    evaluations = earlier_evaluations(metadata, test_images)
    counted = [e for e in evaluations if e.time > now - window]
    if len(counted) < settings.evaluations:
        return RateLimitDecision(
            False,
            used=len(counted),
            note=f"rate limit: evaluation {len(counted) + 1} of {settings.evaluations} in {settings.window_hours:g} h",
        )
    next_evaluation = counted[len(counted) - settings.evaluations].time + window
    return RateLimitDecision(
        True,
        carried=evaluations[-1],
        used=len(counted),
        next_evaluation=next_evaluation,
        note=f"rate limit applied: {len(counted)} evaluations in the last {settings.window_hours:g} h",
    )


def read_metadata(environ: Any = None) -> SubmissionMetadata:
    """The metadata named by ``$SSL_LAB_SUBMISSION_METADATA`` (none when unset)."""
    path = (os.environ if environ is None else environ).get(ENV_METADATA, "").strip()
    return submission_metadata.read(path) if path else SubmissionMetadata.local()


@contextlib.contextmanager
def metadata_named(path: str | os.PathLike) -> Iterator[None]:
    """Within the block, `read_metadata` reads `path` (``$SSL_LAB_SUBMISSION_METADATA``; restored after)."""
    previous = os.environ.get(ENV_METADATA)
    os.environ[ENV_METADATA] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_METADATA, None)
        else:
            os.environ[ENV_METADATA] = previous


def format_time(moment: datetime, like: datetime | None = None) -> str:
    """`moment` in the time zone of `like` (the submission's), to the minute: 2026-12-02 18:30 UTC-07:00."""
    if like is not None and like.tzinfo is not None:
        moment = moment.astimezone(like.tzinfo)
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def limit_message(decision: RateLimitDecision, settings: RateLimitSettings, now: datetime | None) -> str:
    """What a student whose submission was limited reads first."""
    carried = decision.carried
    return (
        f"Checkpoint evaluations are limited to {settings.evaluations} per {settings.window_hours:g} hours (each "
        f"takes about 160 CPU-seconds), and {decision.used} of your earlier submissions in the last "
        f"{settings.window_hours:g} hours were evaluated, so this submission's checkpoint was NOT evaluated. "
        f"The result of your latest evaluated submission ({format_time(carried.time, now)}) is shown and "
        f"counts instead. The next evaluation is possible from {format_time(decision.next_evaluation, now)}: "
        f"submit again from then on to have a new checkpoint graded."
    )


__all__ = [
    "ENV_METADATA",
    "EarlierEvaluation",
    "RECORD_KEY",
    "RateLimitDecision",
    "decide",
    "earlier_evaluations",
    "format_time",
    "limit_message",
    "metadata_named",
    "read_metadata",
]
