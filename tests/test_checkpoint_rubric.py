"""Tests of the checkpoint's rubric (autograder.checkpoint.rubric) and its exact scoring
(autograder.checkpoint.scoring): thresholds at their edges, the course configuration and its
errors.
"""

from __future__ import annotations

import pytest

from autograder.checkpoint.rubric import (DEFAULT_CONFIG, ENV_CONFIG, CheckpointRubric, CourseConfigError,
                                         load_course_config)
from autograder.checkpoint.scoring import format_percent, score_accuracy, shortfall_text
from autograder.results import GraderError
from checkpoint_fixtures import write_config


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
    path = write_config(tmp_path / "c.toml", points=7, bonus_points=0, full_credit_threshold=60,
                        visibility="after_due_date", test_split_sources=["/data/cifar"])
    monkeypatch.setenv(ENV_CONFIG, str(path))
    rubric = load_course_config()
    assert rubric == CheckpointRubric(points=7.0, bonus_points=0.0, full_credit_threshold=60.0,
                                      visibility="after_due_date", test_split_sources=("/data/cifar",))
    assert not rubric.has_bonus


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[checkpoint]\npoint = 3\n", "unknown key(s) 'point' (did you mean 'points'?)"),
        ("[checkpoint]\npoints = \"ten\"\n", "points must be int or float"),
        ("[checkpoint]\ntest_images = 10000.0\n", "test_images must be int"),
        ("[checkpoint]\nbonus_threshold = 70\n", "bonus_threshold (70.0) is below full_credit_threshold (75.0)"),
        ("[checkpoint]\nvisibility = \"public\"\n", "visibility must be one of visible, hidden"),
        ("[checkpoint]\nfull_credit_threshold = 175\n", "must be a percentage in [0, 100]"),
        ("[checkpoint]\nfile = \"../x.pt\"\n", "file must be a plain file name"),
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
