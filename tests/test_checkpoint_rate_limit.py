"""Rate limiting of graded checkpoint evaluations (autograder.checkpoint.rate_limit), and the
leaderboard and record that a checkpoint grade writes into results.json.

The rate limit is decided from recorded ``submission_metadata.json`` files of several shapes
(Gradescope's documented format; earlier submissions carry the results.json the grader wrote
for them), including missing and corrupt ones, which apply no limit and never crash. The
end-to-end tests grade a calibration checkpoint of known accuracy through the real results
plugin (tests/checkpoint_fixtures.py), feed the results.json it wrote back as an earlier
submission, and validate every results.json against Gradescope's schema.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from checkpoint_fixtures import checkpoint_tests, run_graded, save_calibration_checkpoint, small_split_env

from autograder import submission_metadata
from autograder.checkpoint.grading import grade_submission
from autograder.checkpoint.rate_limit import ENV_METADATA, RateLimitDecision, decide
from autograder.checkpoint.rubric import CheckpointRubric, RateLimitSettings
from autograder.gradescope import validate_results

NOW = datetime.fromisoformat("2026-12-02T18:00:00-07:00")
TWO_PER_DAY = RateLimitSettings(evaluations=2, window_hours=24)


def evaluated(correct: int = 8000, total: int = 10_000, **changes) -> dict:
    """An earlier results.json that records an evaluation (what CheckpointGrade.record writes)."""
    record = {"evaluated": True, "correct": correct, "total": total, "accuracy_percent": correct / total * 100}
    record.update(changes)
    return {"score": 10.0, "tests": [], "extra_data": {"checkpoint": record}}


def earlier(hours_ago: float, results: dict | None = None, when: str | None = None) -> dict:
    time = when or (NOW - timedelta(hours=hours_ago)).isoformat()
    return {"submission_time": time, "score": 10.0, "results": evaluated() if results is None else results}


def metadata_file(
    tmp_path: Path, previous: list, created_at: str | None = NOW.isoformat(), raw: str | None = None
) -> Path:
    document = {
        "id": 123456,
        "assignment": {"id": 25828},
        "users": [{"id": 1234, "name": "S", "email": "s@x"}],
        "previous_submissions": previous,
    }
    if created_at is not None:
        document["created_at"] = created_at
    path = tmp_path / "submission_metadata.json"
    path.write_text(raw if raw is not None else json.dumps(document))
    return path


def decision(tmp_path: Path, previous: list, settings: RateLimitSettings = TWO_PER_DAY, **kwargs) -> RateLimitDecision:
    return decide(settings, submission_metadata.read(metadata_file(tmp_path, previous, **kwargs)), 10_000)


# ======================================================================================
# Deciding from recorded metadata
# ======================================================================================
@pytest.mark.parametrize(
    ("previous", "limited", "used"),
    [
        ([], False, 0),  # the first submission
        ([earlier(2)], False, 1),  # one of two used
        ([earlier(2), earlier(5)], True, 2),  # both used
        ([earlier(2), earlier(30)], False, 1),  # one left the 24 h window
        ([earlier(2), earlier(24)], False, 1),  # exactly 24 h ago: left it
        ([earlier(2), earlier(23.99)], True, 2),  # just inside
        ([earlier(2), earlier(5, {"extra_data": {"checkpoint": {"evaluated": False}}})], False, 1),  # not evaluated
        ([earlier(2), earlier(5, {"score": 22.0, "tests": []})], False, 1),  # graded before records existed
        ([earlier(2), earlier(5, evaluated(total=200))], False, 1),  # another test split size
        ([earlier(2), earlier(5, evaluated(correct=True))], False, 1),  # not an integer count
        ([earlier(2), earlier(5, evaluated(correct=10_001))], False, 1),  # impossible count
        ([earlier(2), earlier(-3)], False, 1),  # made after this one (a regrade)
        ([earlier(2), earlier(0)], False, 1),  # this very submission
        ([earlier(2), earlier(0, when="2026-12-03T00:30:00Z")], True, 2),  # 17:30 at -07:00: other zone, inside
    ],
)
def test_evaluations_are_counted_in_the_window_before_the_submission(tmp_path, previous, limited, used):
    """Only earlier submissions whose results record an evaluation, made in the 24 hours before
    this submission's own time, count; at two of them the third is limited."""
    result = decision(tmp_path, previous)
    assert (result.limited, result.used) == (limited, used)


def test_the_next_evaluation_is_when_the_oldest_counted_one_leaves_the_window(tmp_path):
    """Three evaluations 1, 3 and 10 hours ago with two allowed: the next is possible when the
    one of 3 hours ago leaves the window (in 21 hours); the latest one is carried over."""
    latest = earlier(1, evaluated(correct=8123))
    result = decision(tmp_path, [earlier(10), latest, earlier(3)])
    assert result.limited and result.used == 3
    assert result.next_evaluation == NOW + timedelta(hours=21)
    assert (result.carried.correct, result.carried.time) == (8123, NOW - timedelta(hours=1))
    one_per_week = RateLimitSettings(evaluations=1, window_hours=168)
    assert decision(tmp_path, [earlier(100)], settings=one_per_week).next_evaluation == NOW + timedelta(hours=68)


@pytest.mark.parametrize(
    ("raw", "created_at", "note"),
    [
        (None, None, "submission's time is unknown"),  # no created_at
        ("{not json", NOW.isoformat(), "not valid JSON"),
        ("[1, 2, 3]", NOW.isoformat(), "not a JSON object"),
        ("", NOW.isoformat(), "not valid JSON"),
        ('{"created_at": "yesterday", "previous_submissions": []}', None, "submission's time is unknown"),
        ('{"created_at": "2026-12-02T18:00:00Z", "previous_submissions": {"a": 1}}', None, "evaluation 1 of 1"),
        (
            '{"created_at": "2026-12-02T18:00:00Z", "previous_submissions": [null, 3, "x", {"submission_time": 5, '
            '"results": []}, {"results": {"extra_data": []}}, {"submission_time": "2026-12-02T17:00:00Z", "results": '
            '{"extra_data": {"checkpoint": "yes"}}}]}',
            None,
            "evaluation 1 of 1",
        ),
    ],
)
def test_missing_or_corrupt_metadata_applies_no_limit_and_never_crashes(tmp_path, raw, created_at, note):
    settings = RateLimitSettings(evaluations=1)
    result = decision(tmp_path, [earlier(1)], settings=settings, created_at=created_at, raw=raw)
    assert not result.limited and note in result.note
    absent = decide(settings, submission_metadata.read(tmp_path / "missing.json"), 10_000)
    assert not absent.limited and "could not be read" in absent.note


def test_a_naive_and_an_aware_time_in_one_file_still_compare(tmp_path):
    """A time without a zone is taken as UTC: 16:00 counts (before 18:00 UTC), 17:00 at -07:00
    (00:00 UTC the next day) is after the submission and does not; nothing raises."""
    raw = (
        '{"created_at": "2026-12-02T18:00:00", "previous_submissions": [{"submission_time": "2026-12-02T16:00:00", '
        '"results": {"extra_data": {"checkpoint": {"evaluated": true, "correct": 1, "total": 10000}}}}, '
        '{"submission_time": "2026-12-02T17:00:00-07:00", "results": {"extra_data": {"checkpoint": '
        '{"evaluated": true, "correct": 2, "total": 10000}}}}]}'
    )
    result = decision(tmp_path, [], settings=RateLimitSettings(evaluations=1), created_at=None, raw=raw)
    assert result.limited and result.used == 1 and result.carried.correct == 1


def test_off_by_default_whatever_the_metadata(tmp_path):
    assert not CheckpointRubric().rate_limit.enabled
    assert not decision(tmp_path, [earlier(1)] * 5, settings=RateLimitSettings()).limited


def test_a_limited_submission_is_not_evaluated_and_carries_the_latest_result(tmp_path):
    """The limit applies: the checkpoint is not even looked for (the folder is empty), the latest
    evaluated measurement is scored under the current rubric, and the feedback says when the
    next evaluation is possible, in the submission's time zone."""
    rubric = CheckpointRubric(rate_limit=TWO_PER_DAY)
    metadata = submission_metadata.read(metadata_file(tmp_path, [earlier(2, evaluated(correct=7600)), earlier(5)]))
    empty = tmp_path / "submission"
    empty.mkdir()
    grade = grade_submission(empty, rubric, metadata)
    assert grade.ok and grade.evaluation is None and grade.score.points == 10.0
    assert (grade.score.correct, grade.score.total) == (7600, 10_000)
    message = grade.full_credit_message()
    assert "this submission's checkpoint was NOT evaluated" in message
    assert "latest evaluated submission (2026-12-02 16:00 UTC-07:00)" in message
    assert "next evaluation is possible from 2026-12-03 13:00 UTC-07:00" in message
    assert "test accuracy 76.00 % (7,600 of 10,000" in message
    assert grade.record()["evaluated"] is False and grade.record()["carried_over_from"].startswith("2026-12-02T16:00")
    unlimited = grade_submission(empty, CheckpointRubric(rate_limit=RateLimitSettings(evaluations=3)), metadata)
    assert not unlimited.ok and "No file named simclr_lin_best.pt" in unlimited.problem  # it was looked for


# ======================================================================================
# End to end: results.json records, leaderboard, rate limit
# ======================================================================================
@pytest.fixture(scope="module")
def calibration_checkpoint(tmp_path_factory) -> Path:
    return save_calibration_checkpoint(tmp_path_factory.mktemp("calibration"))


def test_results_record_the_evaluation_the_leaderboard_and_the_limit(tmp_path, monkeypatch, calibration_checkpoint):
    """With a leaderboard and one evaluation per day: the first submission is evaluated (80 %),
    records it in extra_data.checkpoint and puts 80.0 on the leaderboard; fed back as the
    earlier submission, its results.json limits the next one, whose checkpoint tests carry 80 %
    over (10 points) and say so, with the same leaderboard value; that limited result does not
    count as an evaluation. Every results.json is valid against Gradescope's schema."""
    submission = tmp_path / "submission"
    submission.mkdir()
    os.link(calibration_checkpoint, submission / "simclr_lin_best.pt")
    small_split_env(monkeypatch, tmp_path, 100, 80)
    config = Path(os.environ["SSL_LAB_COURSE_CONFIG"])
    config.write_text(
        config.read_text() + "\n[checkpoint.leaderboard]\nenabled = true\n"
        "\n[checkpoint.rate_limit]\nevaluations = 1\nwindow_hours = 24\n"
    )
    monkeypatch.setenv(ENV_METADATA, str(metadata_file(tmp_path, [])))
    _, first = run_graded(submission)
    assert validate_results(first) == []
    assert first["leaderboard"] == [{"name": "Test accuracy (%)", "value": 80.0, "order": "desc"}]
    record = first["extra_data"]["checkpoint"]
    assert record["evaluated"] is True and (record["correct"], record["total"], record["points"]) == (80, 100, 10.0)
    assert "evaluation 1 of 1" in record["rate_limit"]

    (submission / "simclr_lin_best.pt").unlink()  # the next checkpoint is not even looked at
    monkeypatch.setenv(ENV_METADATA, str(metadata_file(tmp_path, [earlier(3, first)])))
    _, second = run_graded(submission)
    assert validate_results(second) == []
    tests = checkpoint_tests(second)
    assert (tests["accuracy"]["status"], tests["accuracy"]["score"]) == ("passed", 10.0)
    assert "was NOT evaluated" in tests["accuracy"]["output"] and "80.00 %" in tests["accuracy"]["output"]
    assert "next evaluation is possible from 2026-12-03 15:00 UTC-07:00" in tests["accuracy"]["output"]
    assert second["leaderboard"] == first["leaderboard"]
    assert second["extra_data"]["checkpoint"]["evaluated"] is False

    monkeypatch.setenv(ENV_METADATA, str(metadata_file(tmp_path, [earlier(30, first), earlier(1, second)])))
    _, third = run_graded(submission)  # the evaluation left the window; the limited one does not count
    assert "No file named simclr_lin_best.pt" in checkpoint_tests(third)["accuracy"]["output"]
    assert "leaderboard" not in third and third["extra_data"]["checkpoint"] == {
        "evaluated": False,
        "rate_limit": "rate limit: evaluation 1 of 1 in 24 h",
    }
    assert validate_results(third) == []


def test_no_leaderboard_field_by_default(tmp_path, monkeypatch, calibration_checkpoint):
    submission = tmp_path / "submission"
    submission.mkdir()
    os.link(calibration_checkpoint, submission / "simclr_lin_best.pt")
    small_split_env(monkeypatch, tmp_path, 100, 74)
    _, results = run_graded(submission)
    assert "leaderboard" not in results and validate_results(results) == []
    assert results["extra_data"]["checkpoint"]["evaluated"] is True
