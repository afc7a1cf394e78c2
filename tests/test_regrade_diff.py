"""Before and after a regrade (`autograder.regrade_diff`): ``regrade-diff OLD NEW`` and
``grade-all --compare OLD`` list every submission whose score changed, per task, and the
submissions added or removed, and nothing else.
"""

from __future__ import annotations

import csv
from pathlib import Path

from autograder import batch, regrade_diff
from autograder.cli import main


def _row(name: str, tasks: dict[str, float], status: str = "graded") -> batch.Row:
    results = {
        "score": sum(tasks.values()),
        "tests": [{"max_score": 4}] * len(tasks),
        "extra_data": {"tasks": {task: {"score": score} for task, score in tasks.items()}},
    }
    return batch.Row(name, status, 1.0, results)


OLD = [
    _row("alice", {"nt_xent": 4.0, "ema": 2.0}),
    _row("bob", {"nt_xent": 4.0, "ema": 4.0}),
    _row("carol", {"nt_xent": 0.0, "ema": 4.0}),
    _row("dave", {"nt_xent": 1.0, "ema": 1.0}),
]
NEW = [
    _row("alice", {"nt_xent": 4.0, "ema": 4.0}),
    _row("bob", {"nt_xent": 4.0, "ema": 4.0}),
    _row("carol", {"nt_xent": 0.0, "ema": 4.0}, status="grader error"),
    _row("erin", {"nt_xent": 4.0, "ema": 0.0}),
]


def _write(tmp_path: Path, name: str, rows: list[batch.Row]) -> Path:
    path = tmp_path / name
    batch.write_csv(rows, path)
    return path


def test_every_change_per_task_and_nothing_else(tmp_path):
    changes = regrade_diff.compare(
        regrade_diff.read_grades(_write(tmp_path, "old.csv", OLD)),
        regrade_diff.read_grades(_write(tmp_path, "new.csv", NEW)),
    )
    found = [(c.submission, c.what, c.old, c.new, c.change) for c in changes]
    assert found == [
        ("alice", "ema", "2.0", "4.0", "+2"),
        ("alice", "total", "6.0", "8.0", "+2"),
        ("carol", "status", "graded", "grader error", ""),
        ("dave", "submission", "2.0", "", "removed"),
        ("erin", "submission", "", "4.0", "added"),
    ]


def test_numbers_compare_as_numbers_and_new_tasks_count(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("submission,nt_xent,total,max,status\nalice,4,4,4,graded\nbob,4,4,4,graded\n")
    new = _write(tmp_path, "new.csv", [_row("alice", {"nt_xent": 4.0}), _row("bob", {"nt_xent": 4.0, "ema": 1.5})])
    changes = regrade_diff.compare(regrade_diff.read_grades(old), regrade_diff.read_grades(new))
    assert [(c.submission, c.what, c.change) for c in changes] == [("bob", "ema", ""), ("bob", "total", "+1.5")]
    # alice's new row has no ema score ("" before and after): no change.


def test_verb_prints_a_table_and_writes_the_csv(tmp_path, capsys):
    old, new = _write(tmp_path, "old.csv", OLD), _write(tmp_path, "new.csv", NEW)
    out = tmp_path / "changes.csv"
    assert main(["regrade-diff", str(old), str(new), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 submission(s) changed" in printed
    assert "alice" in printed and "+2" in printed and "removed" in printed and "bob" not in printed
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0] == {"submission": "alice", "what": "ema", "old": "2.0", "new": "4.0", "change": "+2"}
    assert len(rows) == 5
    assert main(["regrade-diff", str(old), str(old)]) == 0
    assert "no score changed" in capsys.readouterr().out


def test_files_that_are_not_grades_are_usage_errors(tmp_path, capsys):
    good = _write(tmp_path, "good.csv", OLD)
    other = tmp_path / "other.csv"
    other.write_text("name,score\nalice,3\n")
    assert main(["regrade-diff", str(tmp_path / "missing.csv"), str(good)]) == 64
    assert main(["regrade-diff", str(other), str(good)]) == 64
    assert "no 'submission' column" in capsys.readouterr().err


def test_grade_all_compare_reads_the_old_grades_before_overwriting_them(tmp_path, monkeypatch, capsys):
    """``grade-all --csv grades.csv --compare grades.csv``: the earlier grades are read before
    the new ones replace them; the changes are printed and written beside the CSV. The
    grading itself is replaced by the NEW rows (tests/test_batch.py tests the scheduling)."""
    submissions = tmp_path / "submissions"
    for row in NEW:
        (submissions / row.submission).mkdir(parents=True)
    grades = _write(tmp_path, "grades.csv", OLD)
    monkeypatch.setattr(batch, "grade_all", lambda folders, command, **options: list(NEW))
    code = main(["grade-all", str(submissions), "--csv", str(grades), "--compare", str(grades), "--jobs", "1"])
    assert code == batch.GRADER_ERROR  # carol's grading failed, as before this change
    printed = capsys.readouterr().out
    assert f"wrote {grades} (4 submissions)" in printed and "4 submission(s) changed" in printed
    changes = tmp_path / "grades-changes.csv"
    with open(changes, newline="") as handle:
        assert [row["submission"] for row in csv.DictReader(handle)] == ["alice", "alice", "carol", "dave", "erin"]
    assert regrade_diff.read_grades(grades).rows.keys() == {"alice", "bob", "carol", "erin"}
    assert main(["grade-all", str(submissions), "--compare", str(tmp_path / "missing.csv")]) == 64
