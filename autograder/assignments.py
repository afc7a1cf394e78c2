"""The assignments the grader knows, and how a submission's notebook is found.

Kept free of torch, so the command line can find the notebook and start the sandbox before
the grader itself pays for importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder import extract as extraction


@dataclass(frozen=True)
class Assignment:
    """An assignment: its notebook's file name and its graded tasks in the contract's order."""

    name: str
    notebook: str
    tasks: tuple[str, ...]
    files: tuple[str, ...] = ()  # other files the submission should contain


ASSIGNMENTS: dict[str, Assignment] = {
    "ssl_methods": Assignment("ssl_methods", "ssl_methods.ipynb", (
        "extract_features", "probes", "simclr_forward", "nt_xent", "simclr_step", "byol_forward", "ema",
        "byol_step", "barlow_loss", "barlow_step")),
    "simclr_homework": Assignment("simclr_homework", "simclr_homework.ipynb", (
        "nt_xent", "barlow_loss", "simclr_forward", "simclr_step", "finetune_step", "evaluate", "checkpoint"),
        files=("simclr_lin_best.pt",)),
}


# ======================================================================================
# Finding the notebook
# ======================================================================================
def _notebooks(folder: Path, depth: int = 3) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if len(relative.parts) <= depth and not any(p.startswith(".") or p == "__MACOSX" for p in relative.parts):
            found.append(path)
    return found


def _assignment_of(notebook: Path) -> str | None:
    """The assignment whose graded tasks a notebook's grade_ids name (renamed notebooks)."""
    try:
        cells = extraction.read_notebook(notebook)["cells"]
    except extraction.NotebookError:
        return None
    ids = {extraction._grade_id(c) for c in cells if isinstance(c, dict)}
    scores = {name: len(ids & set(a.tasks)) for name, a in ASSIGNMENTS.items()}
    best = max(scores.values())
    winners = [name for name, score in scores.items() if score == best]
    return winners[0] if best and len(winners) == 1 else None


def find_notebook(folder: Path, assignment: str | None) -> tuple[str | None, Path | None, str]:
    """(assignment, notebook path, note) for a submission folder; path None when not found."""
    candidates = _notebooks(folder)
    names = [assignment] if assignment else list(ASSIGNMENTS)
    exact = [(n, p) for n in names for p in candidates if p.name == ASSIGNMENTS[n].notebook]
    if exact:
        if len({n for n, _ in exact}) > 1:
            return None, None, ("the submission contains notebooks of several assignments ("
                                + ", ".join(sorted({p.name for _, p in exact})) + "); grade it with --assignment")
        name, path = exact[0]
        return name, path, ""
    fuzzy = [(n, p) for n in names for p in candidates if ASSIGNMENTS[n].name in p.stem]
    if len(fuzzy) == 1:
        name, path = fuzzy[0]
        return name, path, f"graded {path.name} as {ASSIGNMENTS[name].notebook} (please keep the file name)"
    detected = [(n, p) for p in candidates for n in [_assignment_of(p)] if n and (not assignment or n == assignment)]
    if len(detected) == 1:
        name, path = detected[0]
        return name, path, f"graded {path.name} as {ASSIGNMENTS[name].notebook} (please keep the file name)"
    wanted = " or ".join(ASSIGNMENTS[n].notebook for n in names)
    found = ", ".join(p.name for p in candidates[:5]) or "no notebook at all"
    return assignment, None, f"no notebook named {wanted} in the submission (found: {found})"
