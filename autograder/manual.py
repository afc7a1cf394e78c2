"""The answers graded by hand: which they are, and one page per question for the graders.

``python -m autograder manual-answers SUBMISSIONS_DIR --out DIR [--anonymise]`` reads every
submission folder of SUBMISSIONS_DIR (one sub-folder per student, as for ``grade-all``) and
writes, per question graded by hand, one HTML page with every student's answer side by side,
plus ``index.html`` listing the questions. That is how free text is graded in practice: one
question at a time across all students, not one student at a time across all questions.

Which answers are graded by hand comes from the solution notebooks (one source; the rules are
`helpers.report.graded_by_hand`, which the students' report export uses too):

- nbgrader's "manually graded answer" cells (markdown, ``grade`` and ``solution`` set), with
  their ``points``: the answer is the student's text;
- cells marked ``"ssl_lab": {"graded_by_hand": "<title>"}`` in their metadata (the
  homework's report and its fine-tuning plots): the answer is what the cell printed and drew
  in the student's executed notebook.

A student's answer is found by the cell's ``grade_id`` (nbgrader metadata), else by the
cell id. Submissions are untrusted: every notebook is read with the grader's size limit,
every text is HTML-escaped (an answer is shown, never rendered), only PNG/JPEG images whose
data is plain base64 are embedded, and each answer is capped in length.

`--anonymise` replaces folder names by ``student-01``, ``student-02``, ... in an order that
does not follow the folder names (sorted by a hash of the name); the key is written to
``<DIR>-key.csv`` beside the output folder, so sharing the pages does not share the key.

`manual_questions(assignment)` also gives the grader the list it prints as an informational,
zero-point line of results.json (see `autograder.results`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder import extract as extraction
from autograder.assignments import ASSIGNMENTS, find_notebook

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Characters of one answer's text shown on a page (the rest is cut, and says so).
MAX_ANSWER_CHARS = 20_000
#: Bytes of one embedded image (a plot is ~50 KB).
MAX_IMAGE_BYTES = 2_000_000
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")


@dataclass(frozen=True)
class Question:
    """One answer graded by hand."""

    id: str  # the grade_id (or cell id) that finds the answer in a submission
    title: str  # what the page is called
    prompt: str  # the question as the notebook asks it (the markdown cell before the answer)
    points: float | None  # nbgrader points; None: the course decides (the homework report)
    kind: str  # "text": the student's markdown; "output": what the cell printed and drew


@dataclass
class Answer:
    student: str
    text: str = ""
    images: list[tuple[str, str]] = field(default_factory=list)  # (mime type, base64)
    note: str = ""  # why there is no answer, or that it was cut

    @property
    def answered(self) -> bool:
        return bool(self.text.strip() or self.images) and self.note != "not answered"


# ======================================================================================
# Questions (from the solution notebooks)
# ======================================================================================
def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def questions_of(notebook: dict) -> list[Question]:
    """The answers graded by hand in a (solution) notebook, in notebook order (`helpers.report`'s rules)."""
    from helpers.report import graded_by_hand  # here: `import helpers` loads torch, the CLI must not

    cells = notebook.get("cells", [])
    found = []
    for item in graded_by_hand(notebook):
        before = (
            _source(cells[item.index - 1])
            if item.index and cells[item.index - 1].get("cell_type") == "markdown"
            else ""
        )
        found.append(Question(item.id, item.title, before, item.points, item.kind))
    return found


def manual_questions(assignment: str, project_root: Path = PROJECT_ROOT) -> list[Question]:
    """The answers of `assignment` graded by hand, read from ``solutions/<assignment>.ipynb``."""
    return questions_of(extraction.read_notebook(project_root / "solutions" / ASSIGNMENTS[assignment].notebook))


def results_line(assignment: str, project_root: Path = PROJECT_ROOT) -> str | None:
    """The informational line of results.json: what is graded by hand, outside this score."""
    try:
        questions = manual_questions(assignment, project_root)
    except (KeyError, OSError, extraction.NotebookError):
        return None
    if not questions:
        return None
    items = [f"{q.title} ({q.points:g} points)" if q.points is not None else q.title for q in questions]
    return (
        "Graded by hand, not part of this score (0 points here; your course adds them later): " + "; ".join(items) + "."
    )


# ======================================================================================
# Answers (from the submissions; untrusted)
# ======================================================================================
def _find_cell(cells: list, question: Question) -> dict | None:
    by_grade_id = [
        c
        for c in cells
        if isinstance(c, dict)
        and isinstance(c.get("metadata"), dict)
        and isinstance(c["metadata"].get("nbgrader"), dict)
        and c["metadata"]["nbgrader"].get("grade_id") == question.id
    ]
    by_id = [c for c in cells if isinstance(c, dict) and c.get("id") == question.id]
    matches = by_grade_id or by_id
    return matches[-1] if matches else None


def _text_of(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value) if value is not None else ""


def _output_answer(cell: dict, answer: Answer) -> None:
    texts = []
    for output in cell.get("outputs", []) if isinstance(cell.get("outputs"), list) else []:
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            texts.append(_text_of(output.get("text")))
        elif kind in ("display_data", "execute_result"):
            data = output.get("data", {}) if isinstance(output.get("data"), dict) else {}
            image = next(((mime, data[mime]) for mime in ("image/png", "image/jpeg") if mime in data), None)
            if image is not None:
                encoded = _text_of(image[1])
                if len(encoded) * 3 // 4 <= MAX_IMAGE_BYTES and _BASE64.match(encoded):
                    try:
                        base64.b64decode(encoded, validate=False)
                        answer.images.append((image[0], "".join(encoded.split())))
                    except (binascii.Error, ValueError):
                        answer.note = "an image could not be decoded and is left out"
                else:
                    answer.note = "an image was too large or not plain base64 and is left out"
            elif "text/plain" in data:
                texts.append(_text_of(data["text/plain"]))
        elif kind == "error":
            texts.append(f"[the cell raised {_text_of(output.get('ename'))}: {_text_of(output.get('evalue'))}]")
    answer.text = "".join(texts)
    if not answer.text and not answer.images:
        answer.note = answer.note or "no output: the cell was not run before submitting"


def read_answers(folder: Path, questions: Sequence[Question], assignment: str, student: str) -> dict[str, Answer]:
    """question id -> the student's answer in the submission `folder`."""
    answers = {q.id: Answer(student) for q in questions}
    _, notebook_path, note = find_notebook(folder, assignment)
    if notebook_path is None:
        for answer in answers.values():
            answer.note = note
        return answers
    try:
        cells = extraction.read_notebook(notebook_path)["cells"]
    except extraction.NotebookError as error:
        for answer in answers.values():
            answer.note = str(error)
        return answers
    for question in questions:
        answer, cell = answers[question.id], _find_cell(cells, question)
        if cell is None:
            answer.note = f"no cell with id {question.id!r} in {notebook_path.name}"
        elif question.kind == "text":
            answer.text = _source(cell)
            if not answer.text.strip() or answer.text.strip() == "YOUR ANSWER HERE":
                answer.note = "not answered"
        else:
            _output_answer(cell, answer)
        if len(answer.text) > MAX_ANSWER_CHARS:
            answer.text = answer.text[:MAX_ANSWER_CHARS]
            answer.note = f"cut after {MAX_ANSWER_CHARS:,} characters"
    return answers


# ======================================================================================
# Pages
# ======================================================================================
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
.prompt { background: #f4f4f4; padding: 0.8em 1em; border-left: 4px solid #888; white-space: pre-wrap; }
.answers { display: grid; grid-template-columns: repeat(auto-fill, minmax(24em, 1fr)); gap: 1em; margin-top: 1em; }
.answer { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 0.8em; break-inside: avoid; }
.answer h2 { font-size: 1em; margin: 0 0 0.4em 0; display: flex; justify-content: space-between; }
.answer pre { white-space: pre-wrap; word-wrap: break-word; font-family: inherit; margin: 0; }
.answer img { max-width: 100%; }
.note { color: #a33; font-style: italic; }
.score { color: #555; font-weight: normal; }
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def question_page(question: Question, answers: Sequence[Answer], assignment: str) -> str:
    """One question, then every student's answer side by side (all text escaped)."""
    points = f"{question.points:g} points" if question.points is not None else "points set by the course"
    cards = []
    for answer in answers:
        parts = [
            f'<h2><span>{html.escape(answer.student)}</span><span class="score">score: ____ / '
            f"{html.escape(points.split()[0]) if question.points is not None else '____'}</span></h2>"
        ]
        if answer.note:
            parts.append(f'<p class="note">{html.escape(answer.note)}</p>')
        if answer.text:
            parts.append(f"<pre>{html.escape(answer.text)}</pre>")
        for mime, data in answer.images:
            parts.append(f'<img alt="plot" src="data:{mime};base64,{data}">')
        cards.append('<div class="answer">' + "".join(parts) + "</div>")
    body = (
        f"<h1>{html.escape(question.title)}</h1><p>{html.escape(assignment)} · {html.escape(points)} · "
        f'{len(answers)} submissions · <a href="index.html">all questions</a></p>'
        f'<div class="prompt">{html.escape(question.prompt.strip())}</div>'
        f'<div class="answers">{"".join(cards)}</div>'
    )
    return _page(question.title, body)


def _page_name(question: Question) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", question.id) + ".html"


def anonymous_ids(names: Sequence[str]) -> dict[str, str]:
    """folder name -> student-NN, numbered in the order of a hash of the names (not alphabetical)."""
    ordered = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    width = max(2, len(str(len(ordered))))
    return {name: f"student-{i + 1:0{width}d}" for i, name in enumerate(ordered)}


def collect(
    submissions: Path,
    out: Path,
    assignment: str | None = None,
    anonymise: bool = False,
    project_root: Path = PROJECT_ROOT,
) -> list[Path]:
    """Write one page per question graded by hand (and index.html) under `out`; return the pages.

    Raises:
        ValueError: no submission folders, or their assignment cannot be told (pass `assignment`).
    """
    folders = sorted(p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(f"{submissions} has no sub-folders (one per submission)")
    if assignment is None:
        found = {find_notebook(f, None)[0] for f in folders} - {None}
        if len(found) != 1:
            raise ValueError(f"the submissions hold the assignments {sorted(found) or 'none'}; pass --assignment")
        assignment = found.pop()
    questions = manual_questions(assignment, project_root)
    names = {f.name: f.name for f in folders}
    if anonymise:
        names = anonymous_ids([f.name for f in folders])
        key = out.parent / f"{out.name}-key.csv"
        key.parent.mkdir(parents=True, exist_ok=True)
        with open(key, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["anonymous id", "submission folder"])
            writer.writerows(sorted((anon, name) for name, anon in names.items()))
    per_student = {f.name: read_answers(f, questions, assignment, names[f.name]) for f in folders}
    order = sorted(per_student, key=lambda name: names[name])
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for question in questions:
        page = out / _page_name(question)
        page.write_text(
            question_page(question, [per_student[n][question.id] for n in order], assignment), encoding="utf-8"
        )
        pages.append(page)
    items = "".join(
        f'<li><a href="{_page_name(q)}">{html.escape(q.title)}</a> '
        f"({f'{q.points:g} points' if q.points is not None else 'points set by the course'}; "
        f"{sum(1 for n in order if per_student[n][q.id].answered)} of {len(order)} answered)</li>"
        for q in questions
    )
    index = out / "index.html"
    index.write_text(
        _page(
            f"{assignment}: answers graded by hand",
            f"<h1>{html.escape(assignment)}: answers graded by hand</h1><ul>{items}</ul>",
        ),
        encoding="utf-8",
    )
    return [index, *pages]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", type=Path, help="a folder with one sub-folder per submission")
    parser.add_argument("--out", type=Path, required=True, help="where to write the pages (index.html first)")
    parser.add_argument(
        "--assignment",
        choices=sorted(ASSIGNMENTS),
        help="the assignment (default: told from the notebooks)",
    )
    parser.add_argument(
        "--anonymise",
        action="store_true",
        help="student-NN instead of folder names; the key goes to <OUT>-key.csv beside OUT",
    )


def cmd_manual_answers(args: argparse.Namespace) -> int:
    try:
        pages = collect(args.submissions, args.out, args.assignment, args.anonymise)
    except (ValueError, OSError) as error:
        print(f"error: {error}")
        return 64  # autograder.cli.USAGE_ERROR
    print(f"wrote {len(pages) - 1} question pages and {pages[0]}")
    return 0
