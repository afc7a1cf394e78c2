"""Similarity report of batch grading: which pairs of submissions have near-identical graded cells.

::

    python -m autograder grade-all submissions/ --csv grades.csv --similarity   # also grades
    python -m autograder similarity submissions/ [--out report] [--top 50]     # only this report

For a person to review, never a penalty: short tasks have few correct forms, and students
may legitimately share the course's examples. Every graded cell of every submission (found
as the grader finds it, `autograder.extract`, with its caps; the tasks of
`autograder.contract`) is normalised, then compared with the same task's cell of every other
submission of the same assignment:

1. parsed with `ast` (never executed); docstrings and comments go, and `ast.unparse` writes
   every statement in one canonical layout (whitespace, quotes, parentheses);
2. every name the cell binds (parameters, variables, functions and classes it defines) is
   renamed canonically, ``v0``, ``v1``, ... in order of first appearance in its statement line,
   so renaming variables changes nothing; names the cell only uses (``torch``, ``F``, builtins)
   and attributes stay, since they say what the answer calls;
3. the lines of the released notebook's cell (``notebooks/<assignment>.ipynb``: the given
   signature, imports and ``raise NotImplementedError()``), normalised the same way, are
   taken out, so what is compared is what the student wrote;
4. each remaining line gives its runs of `GRAM` tokens (a short line gives itself); a cell's
   fingerprints are the hashes of these runs, at most `MAX_FINGERPRINTS` of them (the smallest
   hashes, the same selection in every cell). Lines are compared independently of their order,
   so reordering statements changes nothing either.

A task's similarity is the Jaccard index of the two cells' fingerprints; a pair's is the sum of
the shared fingerprints over the sum of their unions, over every task either answered beyond
the template. Pairs are ranked by it. A cell that does not parse (a syntax error) is compared
line by line without comments and whitespace.

What it gives: a submission identical to the solutions and another copy of them score 1.0 and
rank first; the untouched student notebook has nothing beyond the template, so it appears in no
pair, not even with another untouched copy. Time and memory are bounded: extraction caps a
notebook and its cells, a cell is cut at `MAX_TOKENS` tokens, so the comparison is
O(pairs x tasks x `MAX_FINGERPRINTS`).

Writes ``OUT.html`` (the ranked pairs, then the `top` pairs' cells side by side, every shared
line marked; everything escaped) and ``OUT.csv`` (every pair that shares anything:
``rank, submission_a, submission_b, assignment, similarity, shared, <task>...``).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import heapq
import html
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder import extract
from autograder.assignments import find_notebook
from autograder.batch import PROJECT_ROOT, submission_folders
from autograder.contract import ASSIGNMENTS

#: Tokens per fingerprint (a run within one normalised line).
GRAM = 4
#: Tokens of a cell that are read (the reference cells have under 300).
MAX_TOKENS = 20_000
#: Fingerprints kept per cell (the smallest hashes): bounds the cost of one comparison.
MAX_FINGERPRINTS = 500
#: Characters of a cell shown in the report.
MAX_SHOWN_CHARS = 6_000
#: Pairs shown side by side in the HTML page by default (the CSV has every pair).
DEFAULT_TOP = 50
NOTICE = (
    "For a person to review, never a penalty by itself: short tasks have few correct forms, and students "
    "may share the course's examples. A high similarity is a reason to look at the two cells, nothing more."
)
_BOUND = re.compile("\u2983([^\u2984]*)\u2984")  # a bound name while normalising: ⦃name⦄
_TOKEN = re.compile(r"\w+|[^\w\s]")


# ======================================================================================
# Normalising a cell
# ======================================================================================
def _bound_names(tree: ast.AST) -> set[str]:
    """The names a cell binds other than by importing (those are the modules it uses)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
    return bound


def _canonical_tree(tree: ast.Module) -> ast.Module:
    """Mark every bound name ⦃name⦄ and drop docstrings and bare strings, in place (iteratively:
    no recursion on a deep tree)."""
    bound = _bound_names(tree)

    def mark(name: str) -> str:
        return f"\u2983{name}\u2984" if name in bound else name

    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            node.id = mark(node.id)
        elif isinstance(node, ast.arg):
            node.arg = mark(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.name = mark(node.name)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            node.name = mark(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            node.names = [mark(name) for name in node.names]
        for attribute in ("body", "orelse", "finalbody"):
            body = getattr(node, attribute, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [
                    s
                    for s in body
                    if not (
                        isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)
                    )
                ]
                setattr(node, attribute, kept or ([ast.Pass()] if attribute == "body" else []))
    return tree


def _number_line(line: str) -> str:
    """The line with its bound names numbered v0, v1, ... in order of first appearance."""
    numbers: dict[str, str] = {}
    return _BOUND.sub(lambda m: numbers.setdefault(m.group(1), f"v{len(numbers)}"), line)


def _lexical_lines(source: str) -> list[str]:
    """Lines without comments and with whitespace collapsed (for a cell that does not parse)."""
    lines = (" ".join(line.split("#", 1)[0].split()) for line in source.splitlines())
    return [line for line in lines if line]


def normalise(source: str) -> list[str]:
    """A cell's statements as normalised lines (see the module docstring, steps 1 and 2)."""
    stripped = extract.strip_ipython(source)
    if stripped is None:
        return []
    try:
        tree = ast.parse(stripped)
        text = ast.unparse(_canonical_tree(tree))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return _lexical_lines(stripped)
    lines = (_number_line(line.strip()) for line in text.splitlines())
    return [line for line in lines if line]


def beyond_template(lines: Sequence[str], template: Counter) -> list[str]:
    """`lines` without those of the template (each template line taken out once)."""
    left = Counter(template)
    kept = []
    for line in lines:
        if left[line] > 0:
            left[line] -= 1
        else:
            kept.append(line)
    return kept


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest(), "big")


def fingerprints(lines: Iterable[str]) -> frozenset[int]:
    """Hashes of the runs of `GRAM` tokens within each line (a shorter line: the line), at most
    `MAX_TOKENS` tokens read and `MAX_FINGERPRINTS` kept (the smallest)."""
    hashes: set[int] = set()
    budget = MAX_TOKENS
    for line in lines:
        if budget <= 0:
            break
        tokens = _TOKEN.findall(line)[:budget]
        budget -= len(tokens)
        if len(tokens) <= GRAM:
            hashes.add(_hash(" ".join(tokens)))
            continue
        for start in range(len(tokens) - GRAM + 1):
            hashes.add(_hash(" ".join(tokens[start : start + GRAM])))
    if len(hashes) > MAX_FINGERPRINTS:
        hashes = set(heapq.nsmallest(MAX_FINGERPRINTS, hashes))
    return frozenset(hashes)


# ======================================================================================
# Reading the submissions
# ======================================================================================
@dataclass
class Cell:
    """A submission's graded cell: its source (as shown), normalised lines beyond the template,
    and fingerprints."""

    task: str
    source: str
    lines: list[str]
    prints: frozenset[int]


@dataclass
class Submission:
    name: str
    assignment: str
    cells: dict[str, Cell] = field(default_factory=dict)


def templates(assignment: str, notebooks: Path = PROJECT_ROOT / "notebooks") -> dict[str, Counter]:
    """Task -> the normalised lines of the released notebook's cell ({} without the notebook)."""
    try:
        released = extract.extract(notebooks / ASSIGNMENTS[assignment].notebook)
    except (OSError, extract.NotebookError):
        return {}
    result = {}
    for task in ASSIGNMENTS[assignment].cell_tasks:
        cell = released.task_cell(task)
        if cell is not None:
            result[task] = Counter(normalise(cell.source))
    return result


def read_submission(folder: Path, assignment: str | None, given: dict[str, dict[str, Counter]]) -> Submission | str:
    """The graded cells of the submission in `folder`, or why it cannot be compared.

    `given`: assignment -> task -> template lines (filled on first use)."""
    name, notebook, note = find_notebook(folder, assignment)
    if notebook is None or name is None:
        return note or "no notebook found"
    try:
        extracted = extract.extract(notebook)
    except extract.NotebookError as error:
        return f"not a readable notebook: {error}"
    if name not in given:
        given[name] = templates(name)
    submission = Submission(folder.name, name)
    for task in ASSIGNMENTS[name].cell_tasks:
        cell = extracted.task_cell(task)
        if cell is None or cell.problem:  # over the grader's caps: not read further
            continue
        lines = beyond_template(normalise(cell.source), given[name].get(task, Counter()))
        if lines:
            submission.cells[task] = Cell(task, cell.source[:MAX_SHOWN_CHARS], lines, fingerprints(lines))
    return submission


# ======================================================================================
# Comparing
# ======================================================================================
@dataclass
class Pair:
    """Two submissions of one assignment: their similarity (0 to 1), shared fingerprints, and
    the similarity per task that either answered beyond the template."""

    a: Submission
    b: Submission
    similarity: float
    shared: int
    tasks: dict[str, float]


def compare_pair(a: Submission, b: Submission) -> Pair:
    shared = union = 0
    tasks = {}
    for task in ASSIGNMENTS[a.assignment].cell_tasks:
        first = a.cells[task].prints if task in a.cells else frozenset()
        second = b.cells[task].prints if task in b.cells else frozenset()
        if not first and not second:
            continue
        common, either = len(first & second), len(first | second)
        shared, union = shared + common, union + either
        tasks[task] = common / either
    return Pair(a, b, shared / union if union else 0.0, shared, tasks)


def rank(submissions: Sequence[Submission]) -> list[Pair]:
    """Every pair of the same assignment that shares a fingerprint, most similar first."""
    pairs = []
    for i, a in enumerate(submissions):
        for b in submissions[i + 1 :]:
            if a.assignment == b.assignment and a.cells and b.cells:
                pair = compare_pair(a, b)
                if pair.shared:
                    pairs.append(pair)
    return sorted(pairs, key=lambda p: (-p.similarity, -p.shared, p.a.name, p.b.name))


# ======================================================================================
# The report
# ======================================================================================
@dataclass
class Report:
    pairs: list[Pair]
    compared: int
    skipped: dict[str, str]
    html_path: Path
    csv_path: Path

    def summary(self) -> str:
        top = self.pairs[0] if self.pairs else None
        first = f"; most similar: {top.a.name} and {top.b.name} ({top.similarity:.2f})" if top else ""
        return (
            f"similarity: {self.compared} submissions compared, {len(self.pairs)} pairs share something{first}; "
            f"wrote {self.html_path} and {self.csv_path} (for a person to review, never a penalty)"
        )


def _cell_html(cell: Cell | None, other: Cell | None) -> str:
    if cell is None:
        return "<td><em>nothing beyond the template</em></td>"
    theirs = set(other.lines) if other else set()
    lines = "\n".join(
        f"<mark>{html.escape(line)}</mark>" if line in theirs else html.escape(line) for line in cell.lines[:300]
    )
    return (
        f"<td><pre>{lines}</pre><details><summary>the cell as submitted</summary>"
        f"<pre>{html.escape(cell.source)}</pre></details></td>"
    )


def write_html(report: Report, top: int) -> None:
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Similarity of submissions</title><style>",
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px;vertical-align:top}pre{white-space:pre-wrap;font-size:12px;margin:0}"
        "mark{background:#ffe08a}td{max-width:45em}</style></head><body>",
        "<h1>Similarity of submissions</h1>",
        f"<p><strong>{html.escape(NOTICE)}</strong></p>",
        f"<p>{report.compared} submissions compared; {len(report.pairs)} pairs share something. Names, comments, "
        "whitespace and the released template are normalised away (see <code>autograder/similarity.py</code>); "
        "marked lines are shared.</p>",
    ]
    if report.skipped:
        out.append(
            "<p>Not compared: " + "; ".join(html.escape(f"{n}: {why}") for n, why in report.skipped.items()) + "</p>"
        )
    out.append(
        "<table><tr><th>rank</th><th>submissions</th><th>assignment</th><th>similarity</th><th>per task</th></tr>"
    )
    for number, pair in enumerate(report.pairs[:top], 1):
        tasks = ", ".join(f"{task} {value:.2f}" for task, value in pair.tasks.items())
        out.append(
            f"<tr><td><a href='#pair-{number}'>{number}</a></td><td>{html.escape(pair.a.name)} &amp; "
            f"{html.escape(pair.b.name)}</td><td>{pair.a.assignment}</td><td>{pair.similarity:.3f}</td>"
            f"<td>{html.escape(tasks)}</td></tr>"
        )
    out.append("</table>")
    for number, pair in enumerate(report.pairs[:top], 1):
        out.append(
            f"<h2 id='pair-{number}'>{number}. {html.escape(pair.a.name)} &amp; {html.escape(pair.b.name)}: "
            f"{pair.similarity:.3f}</h2><table><tr><th>task</th><th>{html.escape(pair.a.name)}</th>"
            f"<th>{html.escape(pair.b.name)}</th></tr>"
        )
        for task, value in sorted(pair.tasks.items(), key=lambda item: -item[1]):
            first, second = pair.a.cells.get(task), pair.b.cells.get(task)
            out.append(f"<tr><th>{task}<br>{value:.2f}</th>{_cell_html(first, second)}{_cell_html(second, first)}</tr>")
        out.append("</table>")
    out.append("</body></html>")
    report.html_path.parent.mkdir(parents=True, exist_ok=True)
    report.html_path.write_text("\n".join(out), encoding="utf-8")


def write_csv(report: Report) -> None:
    tasks = [t for a in ASSIGNMENTS.values() for t in a.cell_tasks]
    tasks = list(dict.fromkeys(tasks))
    report.csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(report.csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "submission_a", "submission_b", "assignment", "similarity", "shared", *tasks])
        for number, pair in enumerate(report.pairs, 1):
            writer.writerow(
                [
                    number,
                    pair.a.name,
                    pair.b.name,
                    pair.a.assignment,
                    f"{pair.similarity:.4f}",
                    pair.shared,
                    *[f"{pair.tasks[t]:.4f}" if t in pair.tasks else "" for t in tasks],
                ]
            )


def run(root: str | os.PathLike, assignment: str | None, out: str | os.PathLike, *, top: int | None = None) -> Report:
    """Compare every submission folder under `root` and write ``out.html`` and ``out.csv``.

    Args:
        root: a folder with one sub-folder per submission (as for grade-all).
        assignment: compare only this assignment's notebooks (None: each submission's own).
        out: the path of the report without its suffix.
        top: pairs shown side by side in the HTML page (default `DEFAULT_TOP`).
    """
    given: dict[str, dict[str, Counter]] = {}
    submissions, skipped = [], {}
    for folder in submission_folders(Path(root)):
        read = read_submission(folder, assignment, given)
        if isinstance(read, str):
            skipped[folder.name] = read
        else:
            submissions.append(read)
    out = Path(out)
    report = Report(
        rank(submissions),
        len(submissions),
        skipped,
        out.with_name(out.name + ".html"),
        out.with_name(out.name + ".csv"),
    )
    write_html(report, DEFAULT_TOP if top is None else top)
    write_csv(report)
    return report


__all__ = [
    "Cell",
    "NOTICE",
    "Pair",
    "Report",
    "Submission",
    "beyond_template",
    "compare_pair",
    "fingerprints",
    "normalise",
    "rank",
    "read_submission",
    "run",
    "templates",
]
