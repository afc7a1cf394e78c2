"""Scoring a test accuracy under the rubric, exactly (integer counts and fractions, no floats).

``correct / total >= threshold / 100`` is decided on integers and `fractions.Fraction`s, and
a threshold is taken as the decimal it was written as (74.99 is 7499/100, not the float
74.98999...), so 7,500 of 10,000 (75.00 %) earns full credit and 7,499 does not. Accuracies
are shown rounded down, never higher than the one that was scored.

Under the ``linear`` rubric the share of the points is the exact fraction ``(accuracy -
zero) / (full - zero)``, clipped to [0, 1]; the points it earns are rounded DOWN to 1/100 of
a point (never more than the scale gives), and exactly the configured points at or above the
full-credit threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from autograder.checkpoint.rubric import CheckpointRubric


def _exact(value: float) -> Fraction:
    """The decimal a config number was written as (75.0 -> 75, 74.99 -> 7499/100), exactly."""
    return Fraction(repr(float(value)))


def format_percent(correct: int, total: int) -> str:
    """``correct / total`` in percent with two decimals, rounded DOWN (74.996 % -> "74.99"),
    so a shown accuracy is never higher than the one that was scored."""
    hundredths = math.floor(Fraction(100 * 100 * correct, total))  # accuracy in 1/100 %
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def threshold_text(value: float) -> str:
    return f"{float(value):g} %"


@dataclass(frozen=True)
class CheckpointScore:
    """The points a test accuracy earns under a rubric.

    Attributes:
        correct, total: images classified correctly, images evaluated.
        full_credit: whether ``correct / total >= full_credit_threshold / 100``.
        bonus: whether a bonus was earned: threshold rubric, ``correct / total >=
            bonus_threshold / 100`` (and a bonus exists); linear, any share of it.
        points: points earned (threshold: 0 or the rubric's `points`; linear: their share).
        bonus_points: bonus points earned (threshold: 0 or the rubric's `bonus_points`;
            linear: their share).
        missing_for_full, missing_for_bonus: more correct images needed (0 when reached).
        scale_position, bonus_position: linear only: where the accuracy stands on the scale of
            the points (0 at zero_credit_threshold, 1 at full_credit_threshold) and of the bonus
            (0 at full_credit_threshold, 1 at bonus_threshold), exact, in [0, 1].
    """

    correct: int
    total: int
    full_credit: bool
    bonus: bool
    points: float
    bonus_points: float
    missing_for_full: int
    missing_for_bonus: int
    scale_position: Fraction | None = None
    bonus_position: Fraction | None = None

    @property
    def accuracy(self) -> Fraction:
        return Fraction(self.correct, self.total)

    @property
    def percent_text(self) -> str:
        return format_percent(self.correct, self.total)


def score_accuracy(correct: int, total: int, rubric: CheckpointRubric) -> CheckpointScore:
    """Score `correct` of `total` test images, exactly (integers and fractions, no floats).

    Args:
        correct: images classified correctly, 0 <= correct <= total.
        total: images evaluated (> 0).
        rubric: thresholds in percent and points.

    Returns:
        The `CheckpointScore`; e.g. with the default rubric, 7,499 / 10,000 earns nothing,
        7,500 / 10,000 earns 10 points and 8,500 / 10,000 earns 10 + 5.
    """
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct} / {total}")
    accuracy = Fraction(correct, total)

    def needed(threshold: float) -> int:  # smallest number of correct images that reaches it
        return math.ceil(_exact(threshold) * total / 100)

    full = accuracy * 100 >= _exact(rubric.full_credit_threshold)
    missing = dict(
        missing_for_full=max(0, needed(rubric.full_credit_threshold) - correct),
        missing_for_bonus=max(0, needed(rubric.bonus_threshold) - correct),
    )
    if rubric.credit == "linear":
        position = _position(accuracy * 100, rubric.zero_credit_threshold, rubric.full_credit_threshold)
        bonus_position = (
            _position(accuracy * 100, rubric.full_credit_threshold, rubric.bonus_threshold)
            if rubric.has_bonus
            else Fraction(0)
        )
        bonus_points = _share(rubric.bonus_points, bonus_position)
        return CheckpointScore(
            correct=correct,
            total=total,
            full_credit=full,
            bonus=bonus_points > 0,
            points=_share(rubric.points, position),
            bonus_points=bonus_points,
            scale_position=position,
            bonus_position=bonus_position,
            **missing,
        )
    bonus = rubric.has_bonus and full and accuracy * 100 >= _exact(rubric.bonus_threshold)
    return CheckpointScore(
        correct=correct,
        total=total,
        full_credit=full,
        bonus=bonus,
        points=rubric.points if full else 0.0,
        bonus_points=rubric.bonus_points if bonus else 0.0,
        **missing,
    )


def _position(percent: Fraction, start: float, end: float) -> Fraction:
    """Where `percent` stands between `start` (0) and `end` (1), clipped to [0, 1], exactly."""
    start, end = _exact(start), _exact(end)
    return min(Fraction(1), max(Fraction(0), (percent - start) / (end - start)))


def _share(points: float, position: Fraction) -> float:
    """`position` of `points`, rounded DOWN to 1/100 of a point; all of them at position 1."""
    if position >= 1:
        return float(points)
    return math.floor(_exact(points) * position * 100) / 100


def shortfall_text(score: CheckpointScore, threshold: float, missing: int) -> str:
    """'3.80 percentage points (380 more correct images)' below `threshold`, rounded up."""
    gap = _exact(threshold) - score.accuracy * 100  # > 0
    hundredths = math.ceil(gap * 100)
    noun = "image" if missing == 1 else "images"
    return f"{hundredths // 100}.{hundredths % 100:02d} percentage points ({missing:,} more correct {noun})"


__all__ = ["CheckpointScore", "format_percent", "score_accuracy", "shortfall_text", "threshold_text"]
