"""Graded test of the submitted checkpoint (simclr_homework): `simclr_lin_best.pt` on CIFAR-10.

CMU 24-789 HW5: "To get full credits, the final accuracy on test set should be more than
75%. You will get 5 bonus credits if the accuracy on the test set is more than 85%."
Two tests, one task (``checkpoint``), both marked ``checkpoint`` (left out by
``--unit-only``):

- full credit: the course's ``points`` when the test accuracy reaches
  ``full_credit_threshold`` (75 %), else 0 with how far off it was (with ``credit =
  "linear"``: their share on the scale from ``zero_credit_threshold``, a failed test with
  that partial score, and where the accuracy stands);
- bonus (only when ``bonus_points`` > 0): ``max_score`` 0 and a score of ``bonus_points``
  when the accuracy reaches ``bonus_threshold`` (85 %), i.e. extra credit on top (linear:
  their share from ``full_credit_threshold`` up).

The rubric (thresholds, points, visibility) is read from the course configuration when this
module is imported (`autograder.checkpoint.rubric.load_course_config`), so the markers
below carry the configured values. The checkpoint is graded once per run (a module-scoped
fixture) by `autograder.checkpoint.grading.grade_submission` in the grader's process (when
the course's rate limit applies, the latest evaluated submission's result instead); it is
data loaded with ``weights_only=True``, never code. A bad file fails both tests with the
loader's message (the student's fault); a missing test split is a `GraderError` (not the
student's fault), which the results plugin reports as such. The full-credit test also hands
the grade's record (results.json's ``extra_data.checkpoint``) and, when the course's
leaderboard is on, the leaderboard entry to the results plugin.
"""

from __future__ import annotations

from typing import Any

import pytest

from autograder.checkpoint.grading import CheckpointGrade, grade_submission
from autograder.checkpoint.rubric import load_course_config
from autograder.compare import GradingFailure

RUBRIC = load_course_config()

pytestmark = [pytest.mark.assignment("simclr_homework"), pytest.mark.task("checkpoint"), pytest.mark.checkpoint]


@pytest.fixture(scope="module")
def checkpoint_grade(submission_dir: Any) -> CheckpointGrade:
    """The submission's checkpoint, loaded, evaluated on the test split and scored (once)."""
    return grade_submission(submission_dir, RUBRIC)


def _report(request: pytest.FixtureRequest, output: str, score: float | None = None) -> None:
    """Hand a passing test's output (and score) to the results plugin."""
    request.node.user_properties.append(("output", output))
    if score is not None:
        request.node.user_properties.append(("score", score))


@pytest.mark.points(RUBRIC.points)
@pytest.mark.visibility(RUBRIC.visibility)
def test_checkpoint_accuracy(checkpoint_grade: CheckpointGrade, request: pytest.FixtureRequest) -> None:
    grade = checkpoint_grade
    request.node.user_properties.extend(grade.results_properties())
    if not (grade.ok and grade.score.full_credit):
        if grade.ok and grade.score.points:  # a linear rubric's share of the points
            request.node.user_properties.append(("score", grade.score.points))
        raise GradingFailure(grade.full_credit_message())
    _report(request, grade.full_credit_message())


test_checkpoint_accuracy.__doc__ = (
    f"{RUBRIC.file} reaches {RUBRIC.full_credit_threshold:g} % accuracy on the CIFAR-10 test split "
    f"({RUBRIC.points:g} points)."
    if RUBRIC.credit == "threshold"
    else f"{RUBRIC.file} test accuracy on the CIFAR-10 test split, scaled from 0 points at "
    f"{RUBRIC.zero_credit_threshold:g} % to {RUBRIC.points:g} points at {RUBRIC.full_credit_threshold:g} %."
)


if RUBRIC.has_bonus:

    @pytest.mark.points(0)  # extra credit: the score (bonus_points) comes on top of the maximum
    @pytest.mark.visibility(RUBRIC.visibility)
    def test_checkpoint_bonus(checkpoint_grade: CheckpointGrade, request: pytest.FixtureRequest) -> None:
        grade = checkpoint_grade
        if not (grade.ok and grade.score.bonus):
            raise GradingFailure(grade.bonus_message())
        _report(request, grade.bonus_message(), score=grade.score.bonus_points)

    test_checkpoint_bonus.__doc__ = (
        f"Bonus: {RUBRIC.file} reaches {RUBRIC.bonus_threshold:g} % test accuracy "
        f"(+{RUBRIC.bonus_points:g} extra points)."
        if RUBRIC.credit == "threshold"
        else f"Bonus: {RUBRIC.file} test accuracy, scaled from 0 extra points at {RUBRIC.full_credit_threshold:g} % "
        f"to +{RUBRIC.bonus_points:g} at {RUBRIC.bonus_threshold:g} %."
    )
