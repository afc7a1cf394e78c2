"""Grading one submission's checkpoint: find, load, evaluate, score, and the student's feedback.

`grade_checkpoint` returns a `CheckpointGrade`, whose messages are the outputs of the two
graded tests in ``autograder/tests/test_checkpoint.py``. The checkpoint is loaded before the
test split is looked up, so a bad file is reported to the student even on a grader without
test data. `grade_submission`, what the graded tests call, is `grade_checkpoint` unless the
course's rate limit applies (`autograder.checkpoint.rate_limit`): then the latest evaluated
submission's measurement is carried over and scored. A grade records itself in results.json
(`CheckpointGrade.results_properties`): whether an evaluation ran and what it measured, in
``extra_data.checkpoint`` (what the rate limit counts), and, when the course's leaderboard is
on, the test accuracy in Gradescope's ``leaderboard`` field.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from autograder.checkpoint import rate_limit
from autograder.checkpoint.evaluation import (
    Evaluation,
    available_cpus,
    evaluate_classifier,
    fold_batchnorm,
    torch_threads,
)
from autograder.checkpoint.loading import load_submitted_classifier, locate_checkpoint, student_message
from autograder.checkpoint.rubric import CheckpointRubric, load_course_config
from autograder.checkpoint.scoring import (
    CheckpointScore,
    format_percent,
    score_accuracy,
    shortfall_text,
    threshold_text,
)
from autograder.checkpoint.split import TestSplit, resolve_test_split
from autograder.submission_metadata import SubmissionMetadata
from helpers.checkpoint import CheckpointError
from helpers.data import CIFAR10_CLASSES


@dataclass
class CheckpointGrade:
    """The verdict on one submission's checkpoint.

    Attributes:
        ok: the checkpoint was loaded and evaluated (else `problem` says why not).
        problem: the student-facing reason it could not be graded.
        checkpoint: the file that was graded (None when none was found).
        note: a remark to show with the result (e.g. found in a sub-folder).
        evaluation, score: the measurement and the points (when `ok`).
        test_split_source: where the test images came from.
        load_seconds: time spent finding, checking and loading the checkpoint.
        limited: the rate limit's message when this checkpoint was not evaluated and the
            measurement of `carried_from`'s submission was scored instead ("" otherwise).
        carried_from: when the submission whose measurement was carried over was made.
        extra: notes for the instructor (e.g. the rate limit's), recorded in results.json.
    """

    ok: bool
    rubric: CheckpointRubric
    problem: str = ""
    checkpoint: Path | None = None
    note: str = ""
    evaluation: Evaluation | None = None
    score: CheckpointScore | None = None
    test_split_source: str = ""
    load_seconds: float = 0.0
    limited: str = ""
    carried_from: datetime | None = None
    extra: dict = field(default_factory=dict)

    # --- messages for the two graded tests -------------------------------------------------
    def _measurement(self) -> str:
        ev, sc, name = self.evaluation, self.score, self.rubric.file
        if ev is None:  # rate-limited: the latest evaluated submission's measurement
            return (
                f"{self.limited}\n\n{name}: test accuracy {sc.percent_text} % ({sc.correct:,} of {sc.total:,} "
                f"CIFAR-10 test images classified correctly), measured for your submission of "
                f"{rate_limit.format_time(self.carried_from)}."
            )
        lines = [
            f"{name}: test accuracy {sc.percent_text} % ({sc.correct:,} of {sc.total:,} CIFAR-10 test images "
            f"classified correctly).",
            f"Test split: {self.test_split_source}.",
        ]
        per_class = ", ".join(
            f"{cls} {format_percent(c, t) if t else '-'} %"
            for cls, c, t in zip(CIFAR10_CLASSES, ev.per_class_correct, ev.per_class_total)
        )
        lines.append(f"Per class: {per_class}.")
        if ev.non_finite:
            lines.append(f"{ev.non_finite:,} images gave NaN or infinite logits and were counted as wrong.")
        lines.append(
            f"Evaluated without augmentation on {ev.device} ({ev.threads} thread(s), batches of "
            f"{ev.batch_size}) in {ev.seconds:.1f} s."
        )
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def full_credit_message(self) -> str:
        """The output of the full-credit test."""
        if not self.ok:
            return f"{self.problem}\n\nThis checkpoint earns 0 of {self.rubric.points:g} points."
        sc, rubric = self.score, self.rubric
        text = self._measurement() + "\n\n"
        if sc.full_credit:
            return text + (
                f"Full credit: {sc.percent_text} % >= {threshold_text(rubric.full_credit_threshold)} earns "
                f"{rubric.points:g} points."
            )
        if rubric.credit == "linear":
            return text + self._scale_message() + "\n" + self._advice()
        text += (
            f"{sc.percent_text} % is {shortfall_text(sc, rubric.full_credit_threshold, sc.missing_for_full)} "
            f"below the {threshold_text(rubric.full_credit_threshold)} needed for credit, so this checkpoint "
            f"earns 0 of {rubric.points:g} points."
        )
        return text + "\n" + self._advice()

    def bonus_message(self) -> str:
        """The output of the bonus test."""
        rubric = self.rubric
        if not self.ok:
            return f"No bonus: the checkpoint could not be graded (see the test above).\n{self.problem}"
        sc = self.score
        head = (
            f"{rubric.file}: test accuracy {sc.percent_text} % ({sc.correct:,} of {sc.total:,} test images; "
            f"test split: {self.test_split_source})."
            if not self.limited
            else f"{rubric.file}: test accuracy {sc.percent_text} % ({sc.correct:,} of {sc.total:,} test images), "
            f"carried over from your submission of {rate_limit.format_time(self.carried_from)} (see the test above)."
        )
        if sc.bonus and sc.bonus_points == rubric.bonus_points:
            return (
                f"{head}\nBonus: {sc.percent_text} % >= {threshold_text(rubric.bonus_threshold)} earns "
                f"{rubric.bonus_points:g} extra points."
            )
        if rubric.credit == "linear":
            return f"{head}\n{self._bonus_scale_message()}"
        reason = f"{shortfall_text(sc, rubric.bonus_threshold, sc.missing_for_bonus)} below"
        return (
            f"{head}\nNo bonus: {sc.percent_text} % is {reason} the {threshold_text(rubric.bonus_threshold)} "
            f"needed for the {rubric.bonus_points:g} bonus points."
        )

    def _scale_message(self) -> str:
        """Where a linear rubric's accuracy below full credit stands on the scale, and what it earns."""
        sc, rubric = self.score, self.rubric
        zero, full = threshold_text(rubric.zero_credit_threshold), threshold_text(rubric.full_credit_threshold)
        scale = f"Linear scale: 0 points at {zero} or below, all {rubric.points:g} at {full} or above."
        if not sc.scale_position:
            return (
                f"{scale} {sc.percent_text} % is at or below {zero}, where the scale starts, so this checkpoint "
                f"earns 0 of {rubric.points:g} points; every correct image above {zero} earns a share of them."
            )
        gap = shortfall_text(sc, rubric.full_credit_threshold, sc.missing_for_full)
        return (
            f"{scale} {sc.percent_text} % stands {_share_text(sc.scale_position)} % of the way from {zero} to "
            f"{full}, so this checkpoint earns {sc.points:g} of {rubric.points:g} points (rounded down to "
            f"hundredths); {gap} more earn all {rubric.points:g}."
        )

    def _bonus_scale_message(self) -> str:
        """Where a linear rubric's accuracy stands on the bonus scale, and what it earns."""
        sc, rubric = self.score, self.rubric
        full, top = threshold_text(rubric.full_credit_threshold), threshold_text(rubric.bonus_threshold)
        scale = f"Linear bonus: 0 extra points at {full} or below, all {rubric.bonus_points:g} at {top} or above."
        if not sc.bonus_position:
            return f"No bonus: {sc.percent_text} % is at or below {full}, where the bonus scale starts. {scale}"
        gap = shortfall_text(sc, rubric.bonus_threshold, sc.missing_for_bonus)
        verdict = "Bonus" if sc.bonus else "No bonus yet"
        return (
            f"{verdict}: {sc.percent_text} % stands {_share_text(sc.bonus_position)} % of the way from {full} to "
            f"{top}, which earns {sc.bonus_points:g} of the {rubric.bonus_points:g} extra points (rounded down to "
            f"hundredths); {gap} more earn all of them. {scale}"
        )

    def _advice(self) -> str:
        sc = self.score
        if sc.accuracy <= Fraction(12, 100):
            return (
                "An accuracy near 10 % is chance level. Either the classifier did not learn, or it expects "
                "differently scaled inputs: the grader feeds raw images in [0, 1] (no augmentation) and the "
                "model must normalise them itself, with the mean/std buffers of helpers.LinearClassifier set "
                "to the statistics you normalised with while training (e.g. CIFAR10_MEAN / CIFAR10_STD). Check "
                "your own test accuracy with the notebook's evaluate() before saving."
            )
        return (
            "To improve it: pre-train SimCLR longer, fine-tune the whole network (not only the linear layer) "
            "with a suitable learning rate, and save the best epoch's classifier with "
            "helpers.save_classifier. Check that your notebook's evaluate() reports the same accuracy on the "
            "test set."
        )

    def to_dict(self) -> dict:
        """A JSON-ready summary (for results' extra data, the CLI and the benchmark)."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "problem": self.problem or None,
            "note": self.note or None,
            "test_split": self.test_split_source or None,
            "load_seconds": round(self.load_seconds, 3),
        }
        if self.ok:
            out.update(
                accuracy_percent=float(self.score.accuracy * 100),
                correct=self.score.correct,
                total=self.score.total,
                points=self.score.points,
                bonus_points=self.score.bonus_points,
                evaluation=self.evaluation.to_dict() if self.evaluation else None,
            )
        return out

    # --- what results.json records -----------------------------------------------------------
    def record(self) -> dict:
        """``extra_data.checkpoint``: whether an evaluation ran (what the rate limit counts), what
        was measured and scored, and where a measurement was carried over from."""
        out: dict[str, Any] = {"evaluated": self.ok and self.evaluation is not None}
        if self.ok:
            out.update(
                correct=self.score.correct,
                total=self.score.total,
                accuracy_percent=float(self.score.percent_text),
                points=self.score.points,
                bonus_points=self.score.bonus_points,
                credit=self.rubric.credit,
            )
        if self.carried_from is not None:
            out["carried_over_from"] = self.carried_from.isoformat()
        return {**out, **self.extra}

    def leaderboard_entry(self) -> dict | None:
        """Gradescope's leaderboard entry: the test accuracy in percent as shown (None when ungraded)."""
        if not self.ok:
            return None
        return {"name": self.rubric.leaderboard.name, "value": float(self.score.percent_text), "order": "desc"}

    def results_properties(self) -> list[tuple[str, Any]]:
        """What a graded test hands to the results plugin (``request.node.user_properties``):
        the record, and the leaderboard entry when the course's leaderboard is on."""
        properties: list[tuple[str, Any]] = [("extra_data", {rate_limit.RECORD_KEY: self.record()})]
        entry = self.leaderboard_entry()
        if self.rubric.leaderboard.enabled and entry is not None:
            properties.append(("leaderboard", [entry]))
        return properties


def _share_text(position: Fraction) -> str:
    """A position on a scale in percent, two decimals, rounded down ("56.15")."""
    return format_percent(position.numerator, position.denominator)


def grade_checkpoint(
    submission_dir: str | os.PathLike,
    rubric: CheckpointRubric | None = None,
    test_split: TestSplit | None = None,
    device: str | torch.device | None = None,
    threads: int | None = None,
) -> CheckpointGrade:
    """Find, load, evaluate and score a submission's checkpoint.

    The checkpoint is loaded before the test split is looked up, so a bad file is reported
    to the student even on a grader without test data.

    Args:
        submission_dir: the submitted folder.
        rubric: the course rubric (default: `load_course_config()`).
        test_split: the images to grade on (default: `resolve_test_split(rubric)`).
        device: where to evaluate (default: CUDA if available, else the CPU).
        threads: CPU threads (default: the rubric's `threads`, 0 meaning `available_cpus()`).

    Returns:
        A `CheckpointGrade`; a bad file gives ``ok=False`` with the reason in `problem`.

    Raises:
        TestSplitUnavailable: the checkpoint is fine but no test split can be found (a
            grader error).
    """
    from helpers.runtime import get_device

    rubric = rubric or load_course_config()
    submission_dir = Path(submission_dir)
    device = torch.device(device) if device is not None else get_device()
    if device.type == "mps":
        device = torch.device("cpu")
    if threads is None:
        threads = rubric.threads or available_cpus()
    started = time.perf_counter()
    try:
        path, note = locate_checkpoint(submission_dir, rubric.file)
        with torch_threads(threads):
            classifier = load_submitted_classifier(path, rubric, device)
    except CheckpointError as error:
        return CheckpointGrade(
            ok=False,
            rubric=rubric,
            problem=student_message(error, submission_dir),
            load_seconds=time.perf_counter() - started,
        )
    load_seconds = time.perf_counter() - started
    if test_split is None:
        test_split = resolve_test_split(rubric)
    fold_batchnorm(classifier)
    evaluation = evaluate_classifier(
        classifier, test_split.images, test_split.labels, batch_size=rubric.batch_size, device=device, threads=threads
    )
    del classifier
    score = score_accuracy(evaluation.correct, evaluation.total, rubric)
    return CheckpointGrade(
        ok=True,
        rubric=rubric,
        checkpoint=path,
        note=note,
        evaluation=evaluation,
        score=score,
        test_split_source=test_split.source,
        load_seconds=load_seconds,
    )


def grade_submission(
    submission_dir: str | os.PathLike,
    rubric: CheckpointRubric | None = None,
    metadata: SubmissionMetadata | None = None,
) -> CheckpointGrade:
    """`grade_checkpoint`, unless the course's rate limit applies to this submission: then the
    latest evaluated submission's measurement, carried over and scored under `rubric`.

    Args:
        submission_dir: the submitted folder.
        rubric: the course rubric (default: `load_course_config()`).
        metadata: the submission's metadata (default: the file named by
            ``$SSL_LAB_SUBMISSION_METADATA``, read only when a rate limit is set).
    """
    rubric = rubric or load_course_config()
    if not rubric.rate_limit.enabled:
        return grade_checkpoint(submission_dir, rubric)
    metadata = metadata if metadata is not None else rate_limit.read_metadata()
    decision = rate_limit.decide(rubric.rate_limit, metadata, rubric.test_images)
    if not decision.limited:
        grade = grade_checkpoint(submission_dir, rubric)
        grade.extra["rate_limit"] = decision.note
        return grade
    carried = decision.carried
    return CheckpointGrade(
        ok=True,
        rubric=rubric,
        score=score_accuracy(carried.correct, carried.total, rubric),
        limited=rate_limit.limit_message(decision, rubric.rate_limit, metadata.created_at),
        carried_from=carried.time,
        extra={"rate_limit": decision.note},
    )


__all__ = ["CheckpointGrade", "grade_checkpoint", "grade_submission"]
