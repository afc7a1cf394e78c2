"""Before and after a regrade: every submission whose score changed between two grade-all CSVs.

::

    python -m autograder regrade-diff old.csv new.csv [--out changes.csv]
    python -m autograder grade-all submissions/ --csv new.csv --compare old.csv

Both read the CSVs that ``grade-all`` writes (``submission, <task>..., total, max, status``)
and list, per submission, every task whose score changed, the total and the status when they
changed, and the submissions present in only one of the two (added, removed). A task column
present in only one CSV counts as a change for every submission that has a score in it. The
result is a table for the terminal and a CSV with one line per change:
``submission, what, old, new, change`` (``what``: a task, ``total``, ``status``, or
``submission`` for one added or removed).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Columns of a grade-all CSV that are not tasks.
FIXED_COLUMNS = ("submission", "total", "max", "status")
#: Largest CSV read (a course of 10,000 submissions writes well under 5 MB).
MAX_CSV_BYTES = 64 * 2**20


class GradesError(ValueError):
    """A file that is not a grade-all CSV (the message says why)."""


@dataclass(frozen=True)
class Grades:
    """A grade-all CSV: its task columns, in order, and one row per submission."""

    path: Path
    tasks: tuple[str, ...]
    rows: dict[str, dict[str, str]]


@dataclass(frozen=True)
class Change:
    """One difference: `what` (a task, "total", "status", or "submission") went from `old` to `new`."""

    submission: str
    what: str
    old: str
    new: str

    @property
    def change(self) -> str:
        """The score's difference ("+2", "-0.5"), "added", "removed", or "" when not numbers."""
        if self.what == "submission":
            return "added" if self.new else "removed"
        try:
            difference = float(self.new) - float(self.old)
        except ValueError:
            return ""
        return f"{difference:+g}"


def read_grades(path: str | os.PathLike) -> Grades:
    """Read a grade-all CSV.

    Raises:
        GradesError: the file is missing, too large, or lacks the submission column.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise GradesError(f"{path} is over {MAX_CSV_BYTES // 2**20} MB; not a grade-all CSV")
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            if "submission" not in header:
                raise GradesError(f"{path} has no 'submission' column; pass a CSV written by grade-all")
            rows = {row["submission"]: {k: (v or "") for k, v in row.items() if k is not None} for row in reader}
    except OSError as error:
        raise GradesError(f"cannot read {path}: {error.strerror or error}") from None
    except csv.Error as error:
        raise GradesError(f"{path} is not a readable CSV: {error}") from None
    return Grades(path, tuple(c for c in header if c not in FIXED_COLUMNS), rows)


def _same(old: str, new: str) -> bool:
    """Equal as numbers when both are ("4" and "4.0"), else as text."""
    try:
        return float(old) == float(new)
    except ValueError:
        return old == new


def compare(old: Grades, new: Grades) -> list[Change]:
    """Every change from `old` to `new`: per submission (sorted), its tasks in the new order
    (then those only the old CSV has), the total and the status; added and removed submissions."""
    tasks = list(new.tasks) + [t for t in old.tasks if t not in new.tasks]
    changes: list[Change] = []
    for submission in sorted(set(old.rows) | set(new.rows)):
        before, after = old.rows.get(submission), new.rows.get(submission)
        if before is None or after is None:
            total = (after or before or {}).get("total", "")
            changes.append(
                Change(submission, "submission", "" if before is None else total, "" if after is None else total)
            )
            continue
        for what in [*tasks, "total", "status"]:
            old_value, new_value = before.get(what, ""), after.get(what, "")
            if not _same(old_value, new_value):
                changes.append(Change(submission, what, old_value, new_value))
    return changes


def table(changes: Sequence[Change], old_name: object, new_name: object) -> str:
    """The changes as a table for the terminal, with a line saying how many submissions changed."""
    submissions = sorted({c.submission for c in changes})
    if not changes:
        return f"no score changed between {old_name} and {new_name}"
    rows = [("submission", "what", "old", "new", "change")]
    rows += [(c.submission, c.what, c.old or "-", c.new or "-", c.change) for c in changes]
    widths = [min(40, max(len(row[i]) for row in rows)) for i in range(5)]
    lines = ["  ".join(cell[:40].ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return f"{len(submissions)} submission(s) changed between {old_name} and {new_name}:\n" + "\n".join(lines)


def write_csv(changes: Sequence[Change], path: str | os.PathLike) -> None:
    """The changes, one line each: ``submission, what, old, new, change``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", "what", "old", "new", "change"])
        for c in changes:
            writer.writerow([c.submission, c.what, c.old, c.new, c.change])


__all__ = ["Change", "Grades", "GradesError", "compare", "read_grades", "table", "write_csv"]
