"""Tests of the checkpoint's rubric (autograder.checkpoint.rubric) and its exact scoring
(autograder.checkpoint.scoring): thresholds at their edges, the linear rubric at its edges and
its feedback, the course configuration and its errors.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from checkpoint_fixtures import write_config

from autograder.checkpoint.rubric import (
    DEFAULT_CONFIG,
    ENV_CONFIG,
    CheckpointRubric,
    CourseConfigError,
    load_course_config,
)
from autograder.checkpoint.scoring import format_percent, score_accuracy, shortfall_text
from autograder.results import GraderError


# ======================================================================================
# Scoring
# ======================================================================================
@pytest.mark.parametrize(
    ("correct", "total", "points", "bonus", "shown"),
    [
        (7499, 10_000, 0.0, 0.0, "74.99"),
        (7500, 10_000, 10.0, 0.0, "75.00"),
        (8499, 10_000, 10.0, 0.0, "84.99"),
        (8500, 10_000, 10.0, 5.0, "85.00"),
        (10_000, 10_000, 10.0, 5.0, "100.00"),
        (0, 10_000, 0.0, 0.0, "0.00"),
        (3, 4, 10.0, 0.0, "75.00"),
        (74_999, 100_000, 0.0, 0.0, "74.99"),  # 74.999 % is shown rounded down, never as 75.00
        (2, 3, 0.0, 0.0, "66.66"),
    ],
)
def test_thresholds_are_inclusive_and_exact(correct, total, points, bonus, shown):
    """75 % earns full credit, 74.99 % (or 74.999 %) earns nothing, 85 % earns the bonus on
    top; the accuracy shown is rounded down so it never looks like a pass when it is not."""
    score = score_accuracy(correct, total, CheckpointRubric())
    assert (score.points, score.bonus_points) == (points, bonus)
    assert score.full_credit == (points > 0) and score.bonus == (bonus > 0)
    assert score.percent_text == shown == format_percent(correct, total)


def test_missing_images_and_custom_thresholds():
    rubric = CheckpointRubric(full_credit_threshold=74.99, bonus_threshold=90.0, points=7, bonus_points=2)
    assert score_accuracy(7499, 10_000, rubric).points == 7  # 74.99 is exact, not 74.9899999...
    low = score_accuracy(7120, 10_000, CheckpointRubric())
    assert (low.missing_for_full, low.missing_for_bonus) == (380, 1380)
    assert shortfall_text(low, 75.0, low.missing_for_full) == "3.80 percentage points (380 more correct images)"
    no_bonus = CheckpointRubric(bonus_points=0)
    assert not score_accuracy(10_000, 10_000, no_bonus).bonus


@pytest.mark.parametrize(("correct", "total"), [(-1, 10), (11, 10), (0, 0)])
def test_impossible_counts_are_refused(correct, total):
    with pytest.raises(ValueError):
        score_accuracy(correct, total, CheckpointRubric())


# ======================================================================================
# The course configuration
# ======================================================================================
def test_shipped_course_toml_matches_the_defaults_and_the_seed():
    """The shipped course.toml states the rubric of the seed: 75 % / 85 %, 5 bonus credits."""
    rubric = load_course_config(DEFAULT_CONFIG)
    assert rubric == CheckpointRubric()
    assert (rubric.full_credit_threshold, rubric.bonus_threshold, rubric.bonus_points) == (75.0, 85.0, 5.0)
    assert rubric.file == "simclr_lin_best.pt" and rubric.test_images == 10_000


def test_config_from_environment_overrides_defaults(tmp_path, monkeypatch):
    path = write_config(
        tmp_path / "c.toml",
        points=7,
        bonus_points=0,
        full_credit_threshold=60,
        visibility="after_due_date",
        test_split_sources=["/data/cifar"],
    )
    monkeypatch.setenv(ENV_CONFIG, str(path))
    rubric = load_course_config()
    assert rubric == CheckpointRubric(
        points=7.0,
        bonus_points=0.0,
        full_credit_threshold=60.0,
        visibility="after_due_date",
        test_split_sources=("/data/cifar",),
    )
    assert not rubric.has_bonus


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[checkpoint]\npoint = 3\n", "unknown key(s) 'point' (did you mean 'points'?)"),
        ('[checkpoint]\npoints = "ten"\n', "points must be int or float"),
        ("[checkpoint]\ntest_images = 10000.0\n", "test_images must be int"),
        ("[checkpoint]\nbonus_threshold = 70\n", "bonus_threshold (70.0) is below full_credit_threshold (75.0)"),
        ('[checkpoint]\nvisibility = "public"\n', "visibility must be one of visible, hidden"),
        ("[checkpoint]\nfull_credit_threshold = 175\n", "must be a percentage in [0, 100]"),
        ('[checkpoint]\nfile = "../x.pt"\n', "file must be a plain file name"),
        ("[checkpoints]\npoints = 3\n", "only [checkpoint] and [grading] are read"),
        ("[checkpoint\n", "is not valid TOML"),
    ],
)
def test_bad_config_is_a_grader_error_naming_the_problem(tmp_path, text, expected):
    path = tmp_path / "course.toml"
    path.write_text(text)
    with pytest.raises(CourseConfigError) as info:
        load_course_config(path)
    assert expected in str(info.value)
    assert isinstance(info.value, GraderError)


# ======================================================================================
# The linear rubric
# ======================================================================================
LINEAR = CheckpointRubric(
    credit="linear", zero_credit_threshold=70, full_credit_threshold=90, bonus_threshold=100, points=10, bonus_points=5
)


@pytest.mark.parametrize(
    ("correct", "points", "bonus", "full_credit"),
    [
        (0, 0.0, 0.0, False),  # 0 %
        (6999, 0.0, 0.0, False),  # one image below the start of the scale
        (7000, 0.0, 0.0, False),  # exactly at the start
        (7001, 0.0, 0.0, False),  # one image above: 0.005 points, rounded down
        (7002, 0.01, 0.0, False),  # two above: exactly 0.01
        (8000, 5.0, 0.0, False),  # half way
        (8123, 5.61, 0.0, False),  # 5.615 rounded down
        (8999, 9.99, 0.0, False),  # one image below full credit: 9.995 rounded down, never 10
        (9000, 10.0, 0.0, True),  # exactly at full credit
        (9001, 10.0, 0.0, True),  # one above: a bonus of 0.0025, rounded down
        (9500, 10.0, 2.5, True),
        (9999, 10.0, 4.99, True),  # one image below the whole bonus: 4.995 rounded down
        (10_000, 10.0, 5.0, True),  # 100 %
    ],
)
def test_linear_credit_at_the_edges(correct, points, bonus, full_credit):
    """0 points at 70 % and below, 10 at 90 % and above, linear between; the bonus grows from
    0 at 90 % to 5 at 100 %; shares are rounded down to hundredths of a point, so one image
    short of a bound never earns the whole of it."""
    score = score_accuracy(correct, 10_000, LINEAR)
    assert (score.points, score.bonus_points, score.full_credit) == (points, bonus, full_credit)
    assert score.bonus == (bonus > 0)
    threshold = score_accuracy(correct, 10_000, CheckpointRubric())  # today's rule on the same count
    assert threshold.points in (0.0, 10.0) and threshold.bonus_points in (0.0, 5.0)


def test_linear_shares_are_exact_where_floats_drift():
    """3 points from 70 % to 90 %: 70.20 % is exactly 1 % of the scale, 0.03 points; the same
    formula in floats gives 0.0299999... and would round down to 0.02."""
    rubric = CheckpointRubric(
        credit="linear",
        zero_credit_threshold=70,
        full_credit_threshold=90,
        bonus_threshold=90,
        points=3,
        bonus_points=0,
    )
    assert score_accuracy(7020, 10_000, rubric).points == 0.03
    floats = 3 * (7020 / 10_000 * 100 - 70) / (90 - 70)  # the same in floats: 0.02999...
    assert math.floor(floats * 100) / 100 == 0.02
    assert score_accuracy(7020, 10_000, rubric).scale_position == Fraction(1, 100)
    odd = CheckpointRubric(
        credit="linear",
        zero_credit_threshold=62.5,
        full_credit_threshold=87.5,
        bonus_threshold=90,
        points=7,
        bonus_points=0,
    )
    for correct, total in ((5, 8), (7, 8), (2, 3), (1, 1)):
        expected = min(1, max(0, (Fraction(100 * correct, total) - Fraction(125, 2)) / 25))
        score = score_accuracy(correct, total, odd)
        assert score.scale_position == expected
        assert score.points == (7.0 if expected == 1 else math.floor(7 * expected * 100) / 100)


def test_linear_feedback_says_where_the_student_stands(tmp_path):
    """The full-credit and bonus messages of a linear rubric name the scale, the position on it,
    the points earned and how many more images earn all of them."""
    from autograder.checkpoint.evaluation import Evaluation
    from autograder.checkpoint.grading import CheckpointGrade

    def grade(correct: int) -> CheckpointGrade:
        evaluation = Evaluation(correct, 10_000, (correct // 10,) * 10, (1000,) * 10, 0, 1.0, "cpu", 1, 100)
        return CheckpointGrade(
            ok=True,
            rubric=LINEAR,
            evaluation=evaluation,
            score=score_accuracy(correct, 10_000, LINEAR),
            test_split_source="a split",
        )

    middle = grade(8123)
    assert (
        "Linear scale: 0 points at 70 % or below, all 10 at 90 % or above. 81.23 % stands 56.15 % of the way "
        "from 70 % to 90 %, so this checkpoint earns 5.61 of 10 points"
    ) in middle.full_credit_message()
    assert "8.77 percentage points (877 more correct images) more earn all 10" in middle.full_credit_message()
    assert "No bonus: 81.23 % is at or below 90 %, where the bonus scale starts" in middle.bonus_message()
    low = grade(6500)
    assert (
        "65.00 % is at or below 70 %, where the scale starts, so this checkpoint earns 0 of 10"
        in low.full_credit_message()
    )
    assert "Full credit: 95.00 % >= 90 % earns 10 points." in grade(9500).full_credit_message()
    assert (
        "Bonus: 95.00 % stands 50.00 % of the way from 90 % to 100 %, which earns 2.5 of the 5 extra points"
        in grade(9500).bonus_message()
    )
    assert "Bonus: 100.00 % >= 100 % earns 5 extra points." in grade(10_000).bonus_message()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('credit = "linear"\n', 'credit = "linear" needs zero_credit_threshold'),
        ("zero_credit_threshold = 70\n", 'zero_credit_threshold (70) is used only with credit = "linear"'),
        (
            'credit = "linear"\nzero_credit_threshold = 75\n',
            "zero_credit_threshold (75) must be a percentage in [0, 100] below full_credit_threshold (75)",
        ),
        ('credit = "linear"\nzero_credit_threshold = -5\n', "zero_credit_threshold (-5) must be a percentage"),
        ('credit = "linear"\nzero_credit_threshold = 60\nbonus_threshold = 75\n', "bonus_threshold must be above it"),
        ('credit = "proportional"\n', "credit must be one of threshold, linear, got 'proportional'"),
        ('credit = "linear"\nzero_credit_threshold = "70"\n', "zero_credit_threshold must be int or float"),
    ],
)
def test_bad_linear_configurations_are_refused_with_a_message(tmp_path, text, expected):
    path = tmp_path / "course.toml"
    path.write_text("[checkpoint]\n" + text)
    with pytest.raises(CourseConfigError) as info:
        load_course_config(path)
    assert expected in str(info.value)


def test_a_linear_rubric_without_bonus_needs_no_bonus_threshold_above_full_credit(tmp_path):
    rubric = load_course_config(
        write_config(
            tmp_path / "c.toml", credit="linear", zero_credit_threshold=50, full_credit_threshold=85, bonus_points=0
        )
    )
    assert (rubric.credit, rubric.zero_credit_threshold, rubric.has_bonus) == ("linear", 50.0, False)
    assert score_accuracy(6750, 10_000, rubric).points == 5.0
