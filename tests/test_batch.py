"""Batch grading's scheduling (`autograder.batch`), with stand-in grading processes: every folder
gets a row, a process that dies or hangs costs only its submission and is restarted, the CSV has
per-task scores, and the exit status says whether every submission was graded. (The real
grading processes are exercised by tests/test_grading.py's run of grade-all over the samples.)
"""

from __future__ import annotations

import csv
import io
import json
import sys
import textwrap
from pathlib import Path

from autograder import batch

#: A stand-in for ``python -m autograder _serve``: "die" exits, "hang" never answers, "broken"
#: writes no results.json and exits 2; anything else gets a results.json of two tasks.
STAND_IN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from autograder import batch

    def grade(folder, results):
        name = Path(folder).name
        if name == "die":
            sys.exit(1)
        if name == "hang":
            time.sleep(60)
        if name == "broken":
            return 2
        score = float(len(name))
        results.write_text(json.dumps({"score": score, "tests": [{"max_score": 5}, {"max_score": 5}],
                                       "extra_data": {"tasks": {"nt_xent": {"score": score}, "ema": {"score": 0.0}}}}))
        return 0

    batch.serve(grade)
""")


def _command() -> list[str]:
    return [sys.executable, "-c", STAND_IN]


def test_every_folder_gets_a_row_and_a_failure_costs_only_its_own(tmp_path):
    names = ["a", "bb", "broken", "ccc", "die", "hang", "dddd"]
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a" / "results.json").write_text("stale")
    folders = batch.submission_folders(tmp_path)
    assert [f.name for f in folders] == sorted(names)
    said: list[str] = []
    rows = batch.grade_all(folders, _command(), jobs=2, timeout=5, say=said.append)
    status = {row.submission: row.status for row in rows}
    assert [row.submission for row in rows] == sorted(names)
    assert status == {
        "a": "graded",
        "bb": "graded",
        "ccc": "graded",
        "dddd": "graded",
        "broken": "grader error",
        "die": "grader crashed or timed out",
        "hang": "grader crashed or timed out",
    }
    assert {row.submission: row.score for row in rows if row.results} == {"a": 1, "bb": 2, "ccc": 3, "dddd": 4}
    assert len(said) == len(names) and any(line.startswith("ccc: graded, score 3") for line in said)
    assert batch.exit_code(rows) == batch.GRADER_ERROR
    assert batch.exit_code([r for r in rows if r.status == "graded"]) == 0

    path = tmp_path / "out" / "grades.csv"
    batch.write_csv(rows, path)
    with open(path, newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["submission", "nt_xent", "ema", "total", "max", "status"]
    by_name = {line[0]: line for line in table[1:]}
    assert by_name["bb"] == ["bb", "2.0", "0.0", "2.0", "10", "graded"]
    assert by_name["hang"] == ["hang", "", "", "", "", "grader crashed or timed out"]


def test_serve_replies_one_line_per_submission_and_survives_a_crash(capsys):
    def grade(folder: str, results: Path) -> int:
        if folder == "x":
            raise RuntimeError("boom")
        return 0

    out = io.StringIO()
    jobs = [json.dumps({"folder": f, "results": f"/tmp/{f}.json"}) + "\n" for f in ("x", "y")]
    assert batch.serve(grade, jobs, out) == 0
    replies = [json.loads(line[len(batch.SERVE_PREFIX) :]) for line in out.getvalue().splitlines()]
    assert [(r["folder"], r["exit"]) for r in replies] == [("x", batch.GRADER_ERROR), ("y", 0)]
    assert "grading x failed: RuntimeError: boom" in capsys.readouterr().err
