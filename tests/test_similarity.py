"""The similarity report of batch grading (`autograder.similarity`, ``grade-all --similarity``):
planted near-copies (variables renamed, comments and whitespace changed, statements reordered)
rank at the top, independent correct variants below them, the reference against a copy of itself
first, the untouched template nowhere; hostile cells are never run and cost bounded time.
"""

from __future__ import annotations

import ast
import csv
import html
import io
import time
import tokenize
from pathlib import Path

import pytest

from autograder import similarity
from autograder.cli import main
from autograder.contract import ASSIGNMENTS, GRADED_NAMES
from submissions import build
from submissions.variants import CORRECT

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ssl_methods"
TASKS = ASSIGNMENTS[ASSIGNMENT].cell_tasks


def _swap_first_independent_assignments(source: str) -> str:
    """Reorder: in every function, swap the first two one-line assignments that do not use each
    other's targets."""
    lines = source.split("\n")
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        simple = [s for s in node.body if isinstance(s, ast.Assign) and s.lineno == s.end_lineno]
        for first, second in zip(simple, simple[1:]):
            if second.lineno != first.lineno + 1:
                continue
            targets = [
                {n.id for t in s.targets for n in ast.walk(t) if isinstance(n, ast.Name)} for s in (first, second)
            ]
            used = [{n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)} for s in (first, second)]
            if not (targets[0] & used[1] or targets[1] & used[0] or targets[0] & targets[1]):
                i, j = first.lineno - 1, second.lineno - 1
                lines[i], lines[j] = lines[j], lines[i]
                break
    return "\n".join(lines)


def plant(source: str) -> str:
    """A near-copy of a cell as a student hiding it would write it: its own variable names,
    other comments, other spacing, two statements swapped (the names of the contract kept)."""
    tree = ast.parse(source)
    local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    local -= GRADED_NAMES | {"self"}
    tokens = list(tokenize.generate_tokens(io.StringIO(_swap_first_independent_assignments(source)).readline))
    out, depth, in_header = [], 0, False
    for index, token in enumerate(tokens):
        kind, text = token.type, token.string
        previous = out[-1][1] if out else ""
        following = tokens[index + 1].string if index + 1 < len(tokens) else ""
        if text == "def":
            in_header = True
        if kind == tokenize.OP and text in "([{":
            depth += 1
        elif kind == tokenize.OP and text in ")]}":
            depth -= 1
        elif kind == tokenize.OP and text == ":" and depth == 0:
            in_header = False
        keyword_argument = following == "=" and depth > 0 and not in_header
        if kind == tokenize.NAME and text in local and previous != "." and not keyword_argument:
            text = "my_" + text[::-1]
        elif kind == tokenize.COMMENT:
            text = "#   (my own note)"
        out.append((kind, text))
    return tokenize.untokenize(out)  # compat mode: every token spaced out anew


def _write(root: Path, name: str, sources: dict[str, str] | None, notebook: str = "solutions") -> None:
    base = build.load(PROJECT_ROOT / notebook / f"{ASSIGNMENT}.ipynb")
    build.write(build.replace_cells(base, sources) if sources else base, root / name, f"{ASSIGNMENT}.ipynb")


def _cells(notebook: Path) -> dict[str, str]:
    from autograder import extract

    extracted = extract.extract(notebook)
    return {task: extracted.task_cell(task).source for task in TASKS}


def _variant(index: int) -> dict[str, str]:
    return {task: CORRECT[task][index % len(CORRECT[task])].source for task in TASKS}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> similarity.Report:
    root = tmp_path_factory.mktemp("similarity") / "submissions"
    reference = _cells(PROJECT_ROOT / "solutions" / f"{ASSIGNMENT}.ipynb")
    _write(root, "reference", None)
    _write(root, "reference-copy", None)
    _write(root, "reference-planted", {t: plant(s) for t, s in reference.items()})
    for index in range(3):
        _write(root, f"variant-{index}", _variant(index))
    _write(root, "variant-1-planted", {t: plant(s) for t, s in _variant(1).items()})
    _write(root, "untouched", None, notebook="notebooks")
    _write(root, "untouched-copy", None, notebook="notebooks")
    (root / "no-notebook").mkdir()
    return similarity.run(root, None, root.parent / "report")


def _lineage(name: str) -> str:
    return name.replace("-planted", "").replace("-copy", "")


def test_planting_changes_most_raw_lines():
    """The planted copies are not copies a plain text comparison would find: most of their
    lines differ from the original's; normalised, they are the original's lines."""
    for task, source in _cells(PROJECT_ROOT / "solutions" / f"{ASSIGNMENT}.ipynb").items():
        planted = plant(source)
        answer = source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        raw = {line.strip() for line in answer.splitlines() if line.strip()}
        raw_planted = {line.strip() for line in planted.splitlines()}
        assert raw and len(raw & raw_planted) < len(raw) / 2, task
        assert sorted(similarity.normalise(planted)) == sorted(similarity.normalise(source)), task


def test_reference_and_its_copy_rank_first_at_one(report):
    """A submission identical to the solutions against another copy of them: the top pair, 1.0."""
    top = report.pairs[0]
    pair = next(p for p in report.pairs if {p.a.name, p.b.name} == {"reference", "reference-copy"})
    assert pair.similarity == 1.0 == top.similarity and set(pair.tasks) == set(TASKS)


def test_planted_near_copies_rank_above_every_independent_pair(report):
    """Every pair of one lineage (a copy, a planted copy) ranks above every pair of two
    independent answers (the reference and the correct variants of tests/submissions)."""
    same = [p for p in report.pairs if _lineage(p.a.name) == _lineage(p.b.name)]
    independent = [p for p in report.pairs if _lineage(p.a.name) != _lineage(p.b.name)]
    assert {frozenset((p.a.name, p.b.name)) for p in same} == {
        frozenset(pair)
        for pair in [
            ("reference", "reference-copy"),
            ("reference", "reference-planted"),
            ("reference-copy", "reference-planted"),
            ("variant-1", "variant-1-planted"),
        ]
    }
    assert independent, "the variants share something with each other"
    assert min(p.similarity for p in same) >= 0.9
    assert min(p.similarity for p in same) > max(p.similarity for p in independent)
    assert report.pairs.index(same[-1]) == len(same) - 1  # the first ranks are the near-copies


def test_the_untouched_template_is_in_no_pair(report):
    """Nothing beyond the released template: the untouched notebook is compared with nobody,
    not even with another untouched copy."""
    names = {n for p in report.pairs for n in (p.a.name, p.b.name)}
    assert "untouched" not in names and "untouched-copy" not in names
    assert report.skipped.keys() == {"no-notebook"}


def test_report_files_say_review_never_penalty(report):
    page = report.html_path.read_text()
    assert html.escape(similarity.NOTICE) in page and "never a penalty" in page
    assert "<mark>" in page and "reference-planted" in page
    with open(report.csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(report.pairs)
    assert [int(row["rank"]) for row in rows] == list(range(1, len(rows) + 1))
    reference = next(
        row for row in rows if {row["submission_a"], row["submission_b"]} == {"reference", "reference-copy"}
    )
    assert float(reference["similarity"]) == 1.0 and reference["nt_xent"] == "1.0000"
    assert [float(row["similarity"]) for row in rows] == sorted(
        (float(row["similarity"]) for row in rows), reverse=True
    )


def test_normalisation_keeps_what_an_answer_calls():
    """Renaming is canonical but not blind: what a cell calls (torch, F, attributes) and its
    constants still tell answers apart."""
    one = similarity.normalise("def f(z, t):\n    return F.cross_entropy(z / t, y)\n")
    other = similarity.normalise("def f(a, b):\n    return F.nll_loss(a * b, y)\n")
    assert one != other
    assert similarity.normalise("x = 1  # one\ny  =  x+2\n") == similarity.normalise("q = 1\n\n\ny = (q + 2)\n")


def test_a_cell_that_does_not_parse_is_compared_line_by_line():
    assert similarity.normalise("def f(:\n    return  1   # x\n") == ["def f(:", "return 1"]


def test_hostile_cells_are_never_run_and_cost_bounded_time(tmp_path):
    """Code at the top level and in defaults is never executed; cells as large as extraction
    lets through (190,000 characters of sums 3,300 terms deep, 2,900 statements, 180 nested
    parentheses) are read in bounded time, with at most MAX_FINGERPRINTS fingerprints each;
    names and code are escaped in the page."""
    marker = tmp_path / "EXECUTED"
    attack = (
        f"import os\nos.system('touch {marker}')\n"
        f"def nt_xent(z1, z2, tau=os.system('touch {marker}')):\n    return open('{marker}', 'w')\n"
    )
    sums = "def barlow_loss(z1, z2, alpha):\n" + "".join(
        f"    x{i} = " + "+".join(["z1"] * 3300) + "\n" for i in range(19)
    )
    many = "def ema():\n" + "".join(
        f"    v{i} = z1[{i}] * alpha + {i} - (v{i - 1} if {i} else 0)\n" for i in range(2900)
    )
    deep = "def byol_forward():\n    return " + "(" * 180 + "1" + ")" * 180 + "\n"
    cells = {"nt_xent": attack, "barlow_loss": sums, "ema": many, "byol_forward": deep}
    root = tmp_path / "submissions"
    for name in ("<script>alert(1)</script>", "other"):
        _write(root, name, cells)
    from autograder import extract

    extracted = extract.extract(root / "other" / f"{ASSIGNMENT}.ipynb")
    assert not any(extracted.task_cell(task).problem for task in cells)  # within the extraction's caps
    started = time.monotonic()
    report = similarity.run(root, ASSIGNMENT, tmp_path / "report")
    print(f"hostile cells: {time.monotonic() - started:.1f} s")
    assert time.monotonic() - started < 60
    assert not marker.exists()
    top = report.pairs[0]
    assert top.similarity == 1.0
    assert set(cells) <= set(top.a.cells)
    assert all(len(cell.prints) <= similarity.MAX_FINGERPRINTS for cell in top.a.cells.values())
    page = report.html_path.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_similarity_verb(tmp_path):
    """``python -m autograder similarity`` writes the report; a wrong folder is a usage error."""
    root = tmp_path / "subs"
    _write(root, "a", None)
    _write(root, "b", None)
    assert main(["similarity", str(root), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith("1,a,b,ssl_methods,1.0000,")
    assert (tmp_path / "r.html").is_file()
    assert main(["similarity", str(tmp_path / "missing")]) == 64


def test_on_the_sample_corpus_the_two_copies_of_the_solutions_rank_first(tmp_path):
    """tests/submissions: ``broken-renamed`` is the solutions under another file name, so it and
    ``reference-ssl`` are the top pair (1.0); the untouched notebooks are in no pair; the
    folders without a readable notebook are listed as not compared."""
    root = tmp_path / "submissions"
    build.build(root)
    report = similarity.run(root, None, tmp_path / "report")
    top = report.pairs[0]
    assert {top.a.name, top.b.name} == {"reference-ssl", "broken-renamed"} and top.similarity == 1.0
    assert report.pairs[1].similarity < 1.0
    assert not any("untouched" in p.a.name + p.b.name for p in report.pairs)
    assert set(report.skipped) == {"broken-no-notebook", "broken-not-json"}
    assert all(p.a.assignment == p.b.assignment for p in report.pairs)


def test_grade_all_similarity_writes_the_report_beside_the_csv(tmp_path, monkeypatch, capsys):
    """``grade-all --similarity``: the report goes beside the CSV; the exit status is grading's
    (the grading is replaced by a row; tests/test_batch.py tests the scheduling)."""
    from autograder import batch

    _write(tmp_path / "submissions", "alice", None)
    _write(tmp_path / "submissions", "bob", None)
    monkeypatch.setattr(batch, "grade_all", lambda folders, command, **options: [batch.Row("alice", "graded", 1.0)])
    assert main(["grade-all", str(tmp_path / "submissions"), "--csv", str(tmp_path / "g.csv"), "--similarity"]) == 0
    assert (tmp_path / "g-similarity.csv").read_text().splitlines()[1].startswith("1,alice,bob,ssl_methods,1.0000,")
    assert (tmp_path / "g-similarity.html").is_file()
    assert "most similar: alice and bob (1.00)" in capsys.readouterr().out
