"""The corpus of student answers: every graded task's answers, correct and wrong, as cell sources.

One module per task of `autograder.contract.TASKS` (``tests/answers/<task>.py``) holds its
``ANSWERS``: the full source of the graded cell as a student's notebook would hold it under
that ``grade_id``, marked correct or wrong, with what the project promises about it:

- ``hint``: for a wrong answer that the notebook's public check (`helpers.checks`) rejects, a
  fragment of the hint the check must give; ``None`` for the mistakes that only the hidden
  grader, comparing with the reference, can find (tests/test_checks.py);
- ``sample``: the answer is graded in the sample submissions (tests/submissions/build.py puts
  the sample answers, in this order, into the solution notebooks; tests/test_grading.py);
- ``loses``: for a wrong sample answer, the graded tests (results.json names) it must fail.

Answers of a step call the names an earlier cell of the notebook defines (``nt_xent``,
``barlow_loss``), and answers of a forward subclass the notebook's given base class
(``SimCLRModelBase``, ``BYOLModelBase``): they run in the notebook's namespace, as in the
kernel. `autograder.demo` reads its partly wrong submission from here too, so the corpus
lives in the checkout the demo runs from, outside the shipped packages.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path

from autograder.contract import TASKS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Answer:
    """One answer to a graded task: the source of its cell and what it must score."""

    task: str
    name: str
    correct: bool
    why: str  # what the answer does (for a wrong one, what is wrong with it)
    source: str
    hint: str | None = None  # a fragment of the public check's message (wrong answers it rejects)
    sample: bool = False  # graded in the sample submissions
    loses: tuple[str, ...] = ()  # graded tests a wrong sample answer must fail

    @property
    def id(self) -> str:
        return f"{self.task}-{self.name}"


def correct(name: str, why: str, source: str, *, sample: bool = False) -> Answer:
    """A correct answer: every public check passes, every graded test gives full points."""
    return Answer("", name, True, why, source.strip("\n") + "\n", sample=sample)


def wrong(
    name: str, why: str, source: str, *, hint: str | None, sample: bool = False, loses: tuple[str, ...] = ()
) -> Answer:
    """A wrong answer; `hint` None says the public check cannot see the mistake."""
    return Answer("", name, False, why, source.strip("\n") + "\n", hint=hint, sample=sample, loses=loses)


def _load(task: str) -> list[Answer]:
    module = importlib.import_module(f"{__name__}.{task}")
    return [dataclasses.replace(answer, task=task) for answer in module.ANSWERS]


#: task -> its answers, in the order of its module.
ANSWERS: dict[str, list[Answer]] = {task: _load(task) for task in TASKS}


def answers(task: str | None = None, *, correct: bool | None = None, sample: bool | None = None) -> list[Answer]:
    """The answers, optionally of one task, of one kind, in the sample submissions or not."""
    return [
        a
        for t in ([task] if task else ANSWERS)
        for a in ANSWERS[t]
        if (correct is None or a.correct == correct) and (sample is None or a.sample == sample)
    ]


def answer(task: str, name: str) -> Answer:
    """The answer called `name` of `task`."""
    found = [a for a in ANSWERS[task] if a.name == name]
    if len(found) != 1:
        raise KeyError(f"{len(found)} answers called {name!r} for {task!r}")
    return found[0]
