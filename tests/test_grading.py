"""The autograder grades right: full points for the solutions and every correct variant, zero
("not implemented yet") for the untouched student notebooks, and every wrong answer loses
points on its own task and only there.

Every sample (tests/submissions) is graded once per session by `grade-all --jobs 2`
(tests/submissions/corpus.py); the tests below read the results.json files it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest import mock

import jsonschema
import pytest

from submissions.corpus import PROJECT_ROOT, graded_corpus, sample_names

#: Gradescope's results.json, from https://gradescope-autograders.readthedocs.io/en/latest/specs/
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["tests", "score", "execution_time"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "status", "output", "visibility", "tags"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "number": {"type": "string"},
                    "score": {"type": "number"},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                    "visibility": VISIBILITY,
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                },
            },
        },
    },
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return graded_corpus(tmp_path_factory.mktemp("corpus"))


def test_grade_all_grades_every_sample(corpus):
    """grade-all finished every submission (none crashed the grader) and wrote one CSV row each."""
    assert corpus.returncode == 0, corpus.stdout[-3000:]
    assert set(corpus.rows) == set(corpus.samples)
    assert {row["status"] for row in corpus.rows.values()} == {"graded"}
    assert set(corpus.results) == set(corpus.samples)


@pytest.mark.parametrize("name", sample_names("reference-") + sample_names("broken-renamed"))
def test_solutions_score_every_point(corpus, name):
    results = corpus.results[name]
    failed = [t["name"] + ": " + t["output"][:300] for t in results["tests"] if t["status"] != "passed"]
    assert not failed, failed
    assert results["score"] == sum(t["max_score"] for t in results["tests"]) > 0
    tasks = set(results["extra_data"]["tasks"])
    assert tasks == set(corpus.samples[name].expect), "every task of the contract has graded tests"


@pytest.mark.parametrize("name", sample_names("untouched-"))
def test_untouched_notebooks_score_zero_saying_not_implemented(corpus, name):
    results = corpus.results[name]
    assert results["score"] == 0
    assert results["tests"], "the untouched notebook was graded"
    for test in results["tests"]:
        assert test["status"] == "failed"
        assert test["output"].startswith("not implemented yet: `"), test["output"]
        assert "raise NotImplementedError()" in test["output"]
    assert "grader_errors" not in results["extra_data"]


@pytest.mark.parametrize("name", sample_names("wrong-") + sample_names("correct-") + sample_names("hostile-extraction"))
def test_each_answer_scores_on_its_own_task_only(corpus, name):
    """Wrong answers lose points on their task; every other task (correct variants or the
    reference) keeps every point."""
    sample = corpus.samples[name]
    problems = []
    for task, expectation in sample.expect.items():
        row = corpus.task(name, task)
        ok = {"full": row["score"] == row["max_score"], "loses": row["score"] < row["max_score"]}[expectation]
        if not ok:
            outputs = [t["output"][:300] for t in corpus.tests(name, task) if t["status"] == "failed"]
            problems.append(
                f"{task} ({sample.answers.get(task, 'reference')}): expected {expectation}, "
                f"got {row['score']}/{row['max_score']} {outputs}"
            )
    assert not problems, problems


def test_every_wrong_variant_is_graded(corpus):
    """At least three wrong answers per task of the contract are in the corpus."""
    from submissions.variants import WRONG

    graded = {}
    for sample in corpus.samples.values():
        for task, answer in sample.answers.items():
            if sample.name.startswith("wrong-") and not answer.startswith("correct"):
                graded.setdefault(task, set()).add(answer)
    for task, answers in WRONG.items():
        assert graded.get(task) == {a.name for a in answers}, task
        assert len(answers) >= 3, task


@pytest.mark.parametrize("name", sample_names(""))
def test_results_json_follows_gradescopes_format(corpus, name):
    results = corpus.results[name]
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert len(json.dumps(results).encode()) < 1_000_000
    for test in results["tests"]:
        assert test["output"].strip(), "every test says something"
        message = test["output"].split("\n\nYour code printed:\n")[0]  # the grader's words, not the student's prints
        if test["status"] == "failed":
            assert "assert False" not in message and "AssertionError" not in message
            assert "The grader failed" not in message, message
        for secret in ("BEGIN SOLUTION", "autograder/", "harness.py", "grading.py"):
            assert secret not in message, (secret, message[:500])
        assert test["tags"][0] in results["extra_data"]["tasks"]


def test_failure_messages_say_what_was_expected_and_what_came_back(corpus):
    mean_over_n = corpus.tests("wrong-ssl-g0-r1", "nt_xent")[0]["output"]
    assert "expected" in mean_over_n and "got" in mean_over_n and "exactly twice the expected value" in mean_over_n
    shapes = [t["output"] for t in corpus.tests("wrong-ssl-g0-r3", "simclr_forward") if t["status"] == "failed"]
    assert any(
        "should return 2 values (repr, proj)" in o or "should have shape" in o or "differs" in o for o in shapes
    ), shapes
    element = [t["output"] for t in corpus.tests("wrong-ssl-g0-r0", "ema") if t["status"] == "failed"][0]
    assert "the first at [" in element and "largest difference" in element, element
    percent = [t["output"] for t in corpus.tests("wrong-ssl-g1-r0", "probes") if t["status"] == "failed"][0]
    assert "a percentage?" in percent, percent


def test_hidden_and_visible_tests(corpus):
    """Every task has at least one visible test; hidden ones become visible when published."""
    results = corpus.results["reference-ssl"]
    for task in results["extra_data"]["tasks"]:
        visibilities = {t["visibility"] for t in results["tests"] if t["tags"] == [task]}
        assert "visible" in visibilities, task
        assert visibilities <= {"visible", "after_published"}, task


def test_extraction_edge_cases_are_explained(corpus):
    results = corpus.results["hostile-extraction-hw"]
    barlow = [t["output"] for t in results["tests"] if t["tags"] == ["barlow_loss"]]
    assert all("has a syntax error" in o and "line 4" in o for o in barlow), barlow
    assert "has a syntax error" in results["output"]


@pytest.mark.parametrize(
    "name, message", [("broken-no-notebook", "no notebook named"), ("broken-not-json", "not a valid notebook")]
)
def test_broken_submissions_get_zero_and_a_reason(corpus, name, message):
    results = corpus.results[name]
    assert results["score"] == 0 and results["tests"] == []
    assert message in results["output"]
    assert "grader_errors" not in results["extra_data"]


def test_renamed_notebook_is_graded_with_a_note(corpus):
    assert "graded ssl_methods (1).ipynb as ssl_methods.ipynb" in corpus.results["broken-renamed"]["output"]


def test_grade_all_csv_has_per_task_scores(corpus):
    row = corpus.rows["reference-hw"]
    assert float(row["total"]) == float(row["max"]) == 22
    assert row["finetune_step"] == "4.0" and row["evaluate"] == "4.0"
    assert corpus.rows["broken-no-notebook"]["total"] == "0.0"


def test_grade_command_exits_zero_and_prints_the_table(tmp_path):
    """`python -m autograder grade` on an untouched notebook: exit 0 whatever the score,
    results.json where --results says, a table per task on the terminal."""
    submission = tmp_path / "student"
    submission.mkdir()
    (submission / "simclr_homework.ipynb").write_bytes(
        (PROJECT_ROOT / "notebooks" / "simclr_homework.ipynb").read_bytes()
    )
    results_path = tmp_path / "out" / "results.json"
    process = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(submission), "--results", str(results_path), "--unit-only"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    assert "finetune_step" in process.stdout and "0 / 22" in process.stdout
    assert json.loads(results_path.read_text())["score"] == 0
    assert not (submission / "results.json").exists()


def test_grader_failure_exits_two_with_a_message(tmp_path):
    """A missing reference is the grader's failure: exit 2, and results.json says so."""
    from autograder import grading

    submission = tmp_path / "student"
    submission.mkdir()
    (submission / "ssl_methods.ipynb").write_bytes((PROJECT_ROOT / "notebooks" / "ssl_methods.ipynb").read_bytes())
    empty = tmp_path / "no-solutions"
    empty.mkdir()
    outcome = grading.grade(submission, grading.GradeOptions(solutions=empty))
    assert outcome.exit_code == 2
    written = json.loads((submission / "results.json").read_text())
    assert "The grader itself failed" in written["output"] and "reference notebook" in written["output"]


def test_usage_errors_exit_64(tmp_path):
    from autograder.cli import main

    assert main(["grade", str(tmp_path / "missing")]) == 64
    assert main(["grade-all", str(tmp_path / "missing")]) == 64
    assert main(["no-such-command"]) == 64


def test_release_is_delegated_with_its_options():
    """`python -m autograder release --check` reaches autograder.release's own parser."""
    from autograder.cli import main

    assert main(["release", "--check"]) in (0, 1)  # 1: notebooks/ would change (said on stdout)


def test_graded_suite_is_not_collected_by_the_projects_pytest():
    """autograder/tests runs only through the grader (it needs the grading context)."""
    ini = (PROJECT_ROOT / "pytest.ini").read_text()
    assert "testpaths = tests" in ini
    assert os.path.isfile(PROJECT_ROOT / "autograder" / "tests" / "pytest.ini")


def _points_rows(table: str) -> dict[str, tuple[dict[str, float], float]]:
    """Assignment -> ({task: points}, the total) as a points table states them."""
    rows = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in table.splitlines()[2:]]
    found: dict[str, tuple[dict[str, float], float]] = {}
    for assignment, task, _, stated in rows:
        tasks, total = found.get(assignment.strip("`"), ({}, 0.0))
        if task == "**total**":
            total = float(stated.split("**")[1])
        else:
            tasks[task.strip("`")] = float(stated)
        found[assignment.strip("`")] = (tasks, total)
    return found


def test_readme_points_table_is_written_from_the_markers():
    """Is README.md's points table the one the graded tests' markers and course.toml give, and
    does one point more on a marker (README.md unchanged) make `release --check` name README.md?"""
    from autograder import points, release
    from autograder.checkpoint.rubric import load_course_config
    from autograder.contract import ASSIGNMENTS, CHECKPOINT_TASK
    from autograder.tests.tasks import unit_points

    readme = (PROJECT_ROOT / "README.md").read_text()
    course = PROJECT_ROOT / "autograder" / "course.toml"
    table = points.points_table(course)
    assert f"{points.BEGIN}\n{table}\n{points.END}" in readme
    stated = _points_rows(table)
    assert set(stated) == set(ASSIGNMENTS)
    for assignment, (tasks, total) in stated.items():
        expected = dict(unit_points(assignment))
        if CHECKPOINT_TASK in ASSIGNMENTS[assignment].tasks:
            expected[CHECKPOINT_TASK] = load_course_config(course).points
        assert tasks == expected and total == sum(expected.values()), assignment

    def one_more(assignment: str) -> dict:
        marked = unit_points(assignment)
        return {**marked, "nt_xent": marked["nt_xent"] + 1}

    changed = points.points_table(course, one_more)
    assert {a: total + 1 for a, (_, total) in stated.items()} == {a: t for a, (_, t) in _points_rows(changed).items()}
    assert points.with_points_table(readme, changed) != readme
    with mock.patch.object(release, "points_table", lambda config: changed):
        assert release.release(PROJECT_ROOT, check=True) == [PROJECT_ROOT / "README.md"]
    with pytest.raises(ValueError, match="no points table"):
        points.with_points_table(readme.replace(points.END, ""), table)
