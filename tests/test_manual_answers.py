"""`python -m autograder manual-answers`: one page per question graded by hand, every answer side by side,
and the informational line of results.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import nbformat
import pytest
import report_samples as S

from autograder import cli, manual
from autograder.results import ResultsPlugin, build_results

SCHEMA = json.loads((S.PROJECT_ROOT / "autograder" / "gradescope_files" / "results.schema.json").read_text())


@pytest.fixture(scope="module")
def ssl_submissions(tmp_path_factory) -> Path:
    """Four ssl_methods submissions: two answered, one untouched, one hostile with broken metadata."""
    root = tmp_path_factory.mktemp("submissions")
    S.write(
        S.executed(
            "ssl_methods",
            {
                "simclr_shortcomings": "ALICE: big batches needed.",
                "byol_predictor_role": "ALICE: avoids collapse.",
                "barlow_terms_collapse": "ALICE: decorrelation.",
            },
        ),
        root / "alice",
        "ssl_methods.ipynb",
    )
    S.write(
        S.executed(
            "ssl_methods",
            {
                "simclr_shortcomings": "BOB: negatives can be false negatives.",
                "byol_predictor_role": "BOB: asymmetry.",
                "barlow_terms_collapse": "BOB: ...",
            },
        ),
        root / "bob",
        "ssl_methods (1).ipynb",
    )  # a renamed notebook is still found
    S.write(
        nbformat.read(S.PROJECT_ROOT / "notebooks" / "ssl_methods.ipynb", as_version=4),
        root / "carol",
        "ssl_methods.ipynb",
    )
    hostile = S.executed("ssl_methods", {"simclr_shortcomings": S.HOSTILE_ANSWER})
    for cell in hostile.cells:
        if cell.get("id") == "simclr_shortcomings":
            cell.metadata = {}  # broken nbgrader metadata: found by the cell id
    S.write(hostile, root / "mallory", "ssl_methods.ipynb")
    (root / "dave").mkdir()
    (root / "dave" / "README.txt").write_text("forgot the notebook")
    return root


def test_one_page_per_question_with_every_answer_side_by_side(ssl_submissions, tmp_path, capsys):
    out = tmp_path / "pages"
    assert cli.main(["manual-answers", str(ssl_submissions), "--out", str(out), "--assignment", "ssl_methods"]) == 0
    pages = sorted(p.name for p in out.glob("*.html"))
    assert pages == ["barlow_terms_collapse.html", "byol_predictor_role.html", "index.html", "simclr_shortcomings.html"]
    page = (out / "simclr_shortcomings.html").read_text()
    assert "Shortcomings of SimCLR" in page and "2 points" in page and "5 submissions" in page
    assert "What are potential shortcomings" in page  # the question, from the solution notebook
    for student in ("alice", "bob", "carol", "dave", "mallory"):
        assert f"<span>{student}</span>" in page
    assert "ALICE: big batches needed." in page and "BOB: negatives can be false negatives." in page
    assert page.index("ALICE") < page.index("BOB")
    assert "not answered" in page  # carol's untouched cell
    assert "no notebook named ssl_methods.ipynb" in page  # dave
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "Reference answer" not in page, "the reference answers never reach the pages"
    index = (out / "index.html").read_text()
    assert "2 of 5 answered" in index or "3 of 5 answered" in index


def test_anonymised_ids_and_the_key_beside_the_pages(ssl_submissions, tmp_path):
    out = tmp_path / "pages"
    manual.collect(ssl_submissions, out, "ssl_methods", anonymise=True)
    page = (out / "byol_predictor_role.html").read_text()
    for student in ("alice", "bob", "carol", "dave", "mallory"):
        assert f"<span>{student}</span>" not in page
    key_path = tmp_path / "pages-key.csv"
    assert key_path.is_file() and not list(out.glob("*key*"))
    key = {row["submission folder"]: row["anonymous id"] for row in csv.DictReader(key_path.open())}
    assert sorted(key) == ["alice", "bob", "carol", "dave", "mallory"]
    assert sorted(key.values()) == [f"student-{i:02d}" for i in range(1, 6)]
    assert page.index(f"<span>{key['alice']}</span>") >= 0 and "ALICE: avoids collapse." in page


def test_homework_report_pages_show_printed_text_and_plots(tmp_path):
    root = tmp_path / "submissions"
    for name, line in (("ann", "ANN final test accuracy 81.2 %"), ("ben", "BEN final test accuracy 77.0 %")):
        S.write(S.executed("simclr_homework", report_text=line + "\n"), root / name, "simclr_homework.ipynb")
    pages = manual.collect(root, tmp_path / "out")
    assert [p.name for p in pages] == ["index.html", "finetune-curves.html", "report.html"]
    report = (tmp_path / "out" / "report.html").read_text()
    assert "ANN final test accuracy 81.2 %" in report and "BEN final test accuracy 77.0 %" in report
    assert "points set by the course" in report
    curves = (tmp_path / "out" / "finetune-curves.html").read_text()
    assert curves.count(f"data:image/png;base64,{S.png_base64()}") == 2


def test_an_image_that_is_not_base64_is_left_out(tmp_path):
    nb = S.executed("simclr_homework")
    for cell in nb.cells:
        if cell.get("id") == "finetune-curves":
            cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": '"><script>x</script>'})]
    S.write(nb, tmp_path / "subs" / "eve", "simclr_homework.ipynb")
    manual.collect(tmp_path / "subs", tmp_path / "out")
    page = (tmp_path / "out" / "finetune-curves.html").read_text()
    assert "<script>x" not in page and "not plain base64" in page


@pytest.mark.parametrize(
    "assignment, expected",
    [
        (
            "ssl_methods",
            [
                "Shortcomings of SimCLR (2 points)",
                "On the role of the predictor head (2 points)",
                "The Barlow Twins loss (2 points)",
            ],
        ),
        ("simclr_homework", ["Report: fine-tuning curves", "Report: hyperparameters"]),
    ],
)
def test_results_json_lists_the_answers_graded_by_hand_at_zero_points(assignment, expected):
    """results.json says which answers a person grades later, in its output, without points, and stays valid."""
    plugin = ResultsPlugin(assignment, task_order=[])
    results = build_results(plugin, [], 1.0)
    jsonschema.validate(results, SCHEMA)
    line = next(line for line in results["output"].splitlines() if line.startswith("Graded by hand"))
    assert "not part of this score" in line and all(item in line for item in expected), line
    assert results["score"] == 0 and results["tests"] == []
