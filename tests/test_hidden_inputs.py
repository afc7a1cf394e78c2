"""Hidden inputs drawn per submission (autograder/hidden_inputs.py, course.toml [grading] hidden_seed).

The seed comes from Gradescope's submission id (or a hash of the notebook), two ids give other
hidden inputs and one id the same; every correct variant of the corpus keeps full points under
drawn seeds, a wrong answer still loses, and results.json (validated against Gradescope's
schema) names the seed in a test only instructors see. The default keeps the fixed seeds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import hidden_inputs
from autograder.contract import ASSIGNMENTS
from autograder.course_settings import CourseConfigError, grading_settings_from_mapping
from autograder.tests.tasks.shared import positive_pairs
from submissions import build
from submissions.variants import CORRECT

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _gradescope_layout(root: Path, submission_id: object, notebook_text: str = "{}") -> Path:
    """root/submission/ssl_methods.ipynb and root/submission_metadata.json, as on Gradescope."""
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "ssl_methods.ipynb").write_text(notebook_text)
    (root / "submission_metadata.json").write_text(json.dumps({"id": submission_id, "users": []}))
    return root / "submission"


def test_the_setting_is_fixed_by_default_and_checked():
    """course.toml keeps the fixed seeds; per-submission, a seed, and nothing else, are accepted."""
    assert hidden_inputs.load_setting(PROJECT_ROOT / "autograder" / "course.toml") == hidden_inputs.FIXED
    assert hidden_inputs.choose(hidden_inputs.FIXED, Path("."), Path("x.ipynb")) == (None, "the tests' fixed seeds")
    assert hidden_inputs.drawn(None, 42) == 42
    for value in ("per-submission", "fixed", 0, 12345):
        assert grading_settings_from_mapping({"hidden_seed": value})["budget_seconds"] == 60.0
    for value in ("sometimes", -1, True, 2.5, 2**63):
        with pytest.raises(CourseConfigError, match="hidden_seed"):
            grading_settings_from_mapping({"hidden_seed": value})


def test_two_submission_ids_draw_other_inputs_and_one_id_the_same(tmp_path):
    """Gradescope's submission id decides the seed; the notebook's bytes do where there is no id."""
    first = _gradescope_layout(tmp_path / "a", 1001)
    again = _gradescope_layout(tmp_path / "b", 1001, notebook_text='{"other": "bytes"}')
    other = _gradescope_layout(tmp_path / "c", 1002)
    seeds = [
        hidden_inputs.choose(hidden_inputs.PER_SUBMISSION, folder, folder / "ssl_methods.ipynb")
        for folder in (first, again, other)
    ]
    assert seeds[0] == seeds[1] and seeds[0][1] == "Gradescope submission 1001"
    assert seeds[2][0] != seeds[0][0]
    inputs = [positive_pairs(6, 10, seed=hidden_inputs.drawn(seed, 46))[0] for seed, _ in seeds]
    assert inputs[0].equal(inputs[1]) and not inputs[0].equal(inputs[2])
    assert not inputs[0].equal(positive_pairs(6, 10, seed=46)[0])  # nor the fixed inputs

    local = tmp_path / "local"
    local.mkdir()
    (local / "ssl_methods.ipynb").write_text("{}")
    seed, source = hidden_inputs.choose(hidden_inputs.PER_SUBMISSION, local, local / "ssl_methods.ipynb")
    assert (
        source == "a hash of ssl_methods.ipynb"
        and seed == hidden_inputs.submission_seed(local, local / "ssl_methods.ipynb")[0]
    )
    (local / "ssl_methods.ipynb").write_text("{} ")
    assert hidden_inputs.submission_seed(local, local / "ssl_methods.ipynb")[0] != seed
    assert hidden_inputs.choose(hidden_inputs.PER_SUBMISSION, first, first / "x", override=7) == (
        7,
        "given with --seed",
    )
    assert hidden_inputs.choose(3, first, first / "x") == (3, "course.toml [grading] hidden_seed")


def _correct_notebooks(root: Path) -> list[Path]:
    """Submission folders holding every correct variant of the corpus (variant r of each task in
    notebook r), for both assignments."""
    folders = []
    for name, assignment in ASSIGNMENTS.items():
        solution = build.load(PROJECT_ROOT / "solutions" / assignment.notebook)
        tasks = [t for t in assignment.cell_tasks if name == "ssl_methods" or t not in ASSIGNMENTS["ssl_methods"].tasks]
        for r in range(max(len(CORRECT[t]) for t in tasks)):
            answers = {t: CORRECT[t][r].source for t in tasks if r < len(CORRECT[t])}
            build.write(build.replace_cells(solution, answers), root / f"{name}-r{r}", assignment.notebook)
            folders.append(root / f"{name}-r{r}")
    return folders


def _grade(folder: Path, seed: int | None) -> dict:
    from autograder import grading

    return grading.grade(folder, grading.GradeOptions(unit_only=True, seed=seed)).results


@pytest.mark.slow
def test_every_correct_variant_keeps_full_points_under_drawn_seeds(tmp_path, monkeypatch):
    """Under per-submission seeds (a hash of each notebook: six different seeds; the corpus grades
    the fixed seeds), every correct variant scores every point in a batch grading, and
    results.json names the seed in a hidden test of 0 points."""
    from autograder.gradescope import validate_results

    config = tmp_path / "course.toml"
    config.write_text('[grading]\nhidden_seed = "per-submission"\n')
    monkeypatch.setenv("SSL_LAB_COURSE_CONFIG", str(config))
    folders = _correct_notebooks(tmp_path / "submissions")
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "grade-all", str(tmp_path / "submissions"), "--unit-only", "--quiet"]
        + ["--jobs", "2", "--csv", str(tmp_path / "grades.csv")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    seeds = set()
    for folder in folders:
        notebook = next(folder.glob("*.ipynb"))
        seed, source = hidden_inputs.submission_seed(folder, notebook)
        results = json.loads((folder / "results.json").read_text())
        lost = [(t["name"], t["output"][:300]) for t in results["tests"] if t["score"] < t["max_score"]]
        assert not lost, (folder.name, seed, lost)
        assert results["extra_data"]["hidden_seed"] == {"seed": seed, "source": source}
        assert source == f"a hash of {notebook.name}"
        assert results["tests"][-1]["name"] == f"Hidden inputs: seed {seed}"
        assert results["tests"][-1]["visibility"] == "hidden" and results["tests"][-1]["max_score"] == 0
        assert validate_results(results) == []
        seeds.add(seed)
    assert len(seeds) == len(folders) == 6


@pytest.mark.slow
def test_per_submission_seeds_on_gradescope_still_catch_a_wrong_answer(tmp_path, monkeypatch):
    """With hidden_seed = "per-submission" and Gradescope's layout, a wrong sample loses on its
    wrong tasks only, under a seed of its submission id; regrading with --seed gives the same."""
    from autograder.gradescope import validate_results

    config = tmp_path / "course.toml"
    config.write_text('[grading]\nhidden_seed = "per-submission"\n')
    monkeypatch.setenv("SSL_LAB_COURSE_CONFIG", str(config))
    sample, notebook, filename = next(
        entry for entry in build.plan(tmp_path / "samples") if entry[0].name == "wrong-ssl-g0-r0"
    )
    folder = _gradescope_layout(tmp_path / "gs", 424242, json.dumps(notebook))
    results = _grade(folder, None)
    seed = hidden_inputs.submission_seed(folder, folder / filename)[0]
    assert results["extra_data"]["hidden_seed"] == {"seed": seed, "source": "Gradescope submission 424242"}
    assert validate_results(results) == []
    for task, row in results["extra_data"]["tasks"].items():
        assert (row["score"] < row["max_score"]) == (sample.expect[task] == "loses"), (task, row)
    regraded = _grade(folder, seed)
    assert [(t["name"], t["score"], t["output"]) for t in regraded["tests"][:-1]] == [
        (t["name"], t["score"], t["output"]) for t in results["tests"][:-1]
    ]


def test_seed_option_reaches_the_grading_options():
    """`grade --seed N` and `grade-all --seed N` grade with seed N; without it the course decides."""
    from autograder import cli

    parser = cli.build_parser()
    assert cli._options(parser.parse_args(["grade", "folder", "--seed", "0"]), None, None).seed == 0
    assert cli._options(parser.parse_args(["grade-all", "folder", "--seed", "17"]), None, None).seed == 17
    assert cli._options(parser.parse_args(["grade", "folder"]), None, None).seed is None
