"""The points per task, as README.md's table states them: written from the graded tests, never by hand.

The unit-test points are the ``points`` markers of the graded tests
(`autograder.tests.tasks.unit_points`), the checkpoint's are the course's rubric
(`autograder/course.toml`). `python -m autograder release` rewrites the table between the two
marker lines of README.md, and ``release --check`` fails while it is out of date, so adding a
task or moving a point never means editing a total by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from autograder.contract import ASSIGNMENTS, CHECKPOINT_TASK, TASKS

BEGIN = "<!-- BEGIN POINTS TABLE: written by `python -m autograder release` from the graded tests; do not edit -->"
END = "<!-- END POINTS TABLE -->"


def points_table(course_config: Path, unit_points: Callable[[str], dict[str, float]] | None = None) -> str:
    """The Markdown table of every assignment's tasks, their graded names and points, with totals.

    Args:
        course_config: the course.toml whose checkpoint rubric counts.
        unit_points: assignment -> {task: points} (default: the graded tests' markers).
    """
    from autograder.checkpoint.rubric import load_course_config

    if unit_points is None:
        from autograder.tests.tasks import unit_points
    rubric = load_course_config(course_config)
    rows = ["| assignment | task | graded | points |", "| --- | --- | --- | ---: |"]
    for name, assignment in ASSIGNMENTS.items():
        points = unit_points(name)
        for task in assignment.cell_tasks:
            graded = ", ".join(f"`{defined}`" for defined in TASKS[task])
            rows.append(f"| `{name}` | `{task}` | {graded} | {points[task]:g} |")
        total = sum(points.values())
        if CHECKPOINT_TASK in assignment.tasks:
            files = ", ".join(f"`{file}`" for file in assignment.files)
            rows.append(f"| `{name}` | `{CHECKPOINT_TASK}` | {files}: {rubric.credit_summary()} | {rubric.points:g} |")
            total += rubric.points
        bonus = f" (+{rubric.bonus_points:g} bonus)" if CHECKPOINT_TASK in assignment.tasks and rubric.has_bonus else ""
        rows.append(f"| `{name}` | **total** | | **{total:g}**{bonus} |")
    return "\n".join(rows)


def with_points_table(readme: str, table: str) -> str:
    """`readme` with the text between its marker lines replaced by `table`.

    Raises:
        ValueError: the README lacks the marker lines (or has them out of order).
    """
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no points table between the lines\n{BEGIN}\n{END}\nput them back")
    return f"{readme[: start + len(BEGIN)]}\n{table}\n{readme[end:]}"


__all__ = ["BEGIN", "END", "points_table", "with_points_table"]
