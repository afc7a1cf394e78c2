"""The assignments the grader knows, and how a submission's notebook is found.

Kept free of torch, so the command line can find the notebook and start the sandbox before
the grader itself pays for importing torch.
"""

from __future__ import annotations

from pathlib import Path

from autograder import extract as extraction
from autograder import safe_files
from autograder.contract import ASSIGNMENTS, Assignment  # noqa: F401  (re-exported)

# ======================================================================================
# Finding the notebook
# ======================================================================================
#: Notebooks whose grade_ids are read to recognise a renamed notebook (each read is capped too).
MAX_DETECTED = 20


def _notebooks(
    folder: Path, depth: int = safe_files.DEFAULT_DEPTH
) -> tuple[list[safe_files.Entry], safe_files.Listing]:
    """The ``*.ipynb`` entries of a submission folder (links and pipes included, so that a
    message can name them; none is followed or opened here), and the whole listing."""
    listing = safe_files.list_entries(folder, depth)
    return [e for e in listing.entries if e.name.endswith(".ipynb")], listing


def _assignment_of(notebook: Path) -> str | None:
    """The assignment whose graded tasks a notebook's grade_ids name (renamed notebooks)."""
    try:
        cells = extraction.read_notebook(notebook)["cells"]
    except extraction.NotebookError:
        return None
    ids = {extraction._grade_id(c) for c in cells[: extraction.MAX_CELLS] if isinstance(c, dict)}
    scores = {name: len(ids & set(a.tasks)) for name, a in ASSIGNMENTS.items()}
    best = max(scores.values())
    winners = [name for name, score in scores.items() if score == best]
    return winners[0] if best and len(winners) == 1 else None


def _prefer_regular(found: list[tuple[str, safe_files.Entry]]) -> list[tuple[str, safe_files.Entry]]:
    """Regular files first (a link or pipe is chosen only when nothing else has the name; then
    extraction refuses it with a message naming it)."""
    return sorted(found, key=lambda pair: pair[1].kind != "file")


def find_notebook(folder: Path, assignment: str | None) -> tuple[str | None, Path | None, str]:
    """(assignment, notebook path, note) for a submission folder; path None when not found.

    The folder is listed without following links (`autograder.safe_files.list_entries`,
    bounded depth and number of entries); nothing is opened except, to recognise a renamed
    notebook, up to `MAX_DETECTED` regular ``.ipynb`` files, each read with the caps of
    `extract.read_notebook`. A notebook that is a link, a pipe or a device can be returned:
    `extract.extract` then refuses it with a message that names it. Never raises for what
    the folder holds.
    """
    candidates, listing = _notebooks(folder)
    names = [assignment] if assignment else list(ASSIGNMENTS)
    exact = _prefer_regular([(n, e) for n in names for e in candidates if e.name == ASSIGNMENTS[n].notebook])
    if exact:
        if len({n for n, _ in exact}) > 1:
            return (
                None,
                None,
                (
                    "the submission contains notebooks of several assignments ("
                    + ", ".join(sorted({e.name for _, e in exact}))
                    + "); grade it with --assignment"
                ),
            )
        name, entry = exact[0]
        return name, entry.path, ""
    fuzzy = [(n, e) for n in names for e in candidates if ASSIGNMENTS[n].name in e.path.stem]
    if len(fuzzy) == 1:
        name, entry = fuzzy[0]
        return name, entry.path, f"graded {entry.name} as {ASSIGNMENTS[name].notebook} (please keep the file name)"
    readable = [e for e in candidates if e.kind == "file"][:MAX_DETECTED]
    detected = [(n, e) for e in readable for n in [_assignment_of(e.path)] if n and (not assignment or n == assignment)]
    if len(detected) == 1:
        name, entry = detected[0]
        return name, entry.path, f"graded {entry.name} as {ASSIGNMENTS[name].notebook} (please keep the file name)"
    wanted = " or ".join(ASSIGNMENTS[n].notebook for n in names)
    found = ", ".join(e.name for e in candidates[:5]) or "no notebook at all"
    note = f"no notebook named {wanted} in the submission (found: {found})"
    links = listing.links()
    if links:
        note += (
            "; symbolic links are not followed ("
            + ", ".join(e.relative for e in links[:5])
            + "): upload the files themselves, not links"
        )
    if listing.truncated:
        note += f"; the submission holds more than {safe_files.DEFAULT_MAX_ENTRIES:,} files, not all were looked at"
    return assignment, None, note
