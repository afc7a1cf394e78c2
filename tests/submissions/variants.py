"""The answers the sample submissions hold: the corpus's (tests/answers) sample answers.

task -> its correct and its wrong sample answers, in the order of the corpus; build.py puts
them into the solution notebooks, round by round, so a sample keeps its answers when the
corpus grows (new answers are checked by the public checks, not put in a sample).
"""

from __future__ import annotations

from answers import ANSWERS, Answer

CORRECT: dict[str, list[Answer]] = {
    task: [a for a in found if a.correct and a.sample] for task, found in ANSWERS.items()
}
WRONG: dict[str, list[Answer]] = {
    task: [a for a in found if not a.correct and a.sample] for task, found in ANSWERS.items()
}
