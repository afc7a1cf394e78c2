"""The checkpoint's rubric: the ``[checkpoint]`` table of ``course.toml``, read and checked.

`load_course_config` reads the course configuration (``autograder/course.toml``, or the file
named by ``$SSL_LAB_COURSE_CONFIG``) and returns a `CheckpointRubric`: the file students
upload, the thresholds and points, the visibility, the evaluation settings and where to look
for the test split. An unknown key, a wrong type or an impossible value is a
`CourseConfigError` (a grader error) naming it, so a typo never silently changes the rubric.

Two ways to turn the test accuracy into points (``credit``):

- ``"threshold"`` (the default, the seed's rule): `points` from ``full_credit_threshold`` up,
  nothing below; `bonus_points` on top from ``bonus_threshold`` up;
- ``"linear"``: 0 points at ``zero_credit_threshold`` or below, `points` at
  ``full_credit_threshold`` or above, linear in between; the bonus grows linearly from 0 at
  ``full_credit_threshold`` to `bonus_points` at ``bonus_threshold``.

Two opt-in tables below it: ``[checkpoint.leaderboard]`` (`LeaderboardSettings`: the test
accuracy on Gradescope's leaderboard) and ``[checkpoint.rate_limit]`` (`RateLimitSettings`: at
most so many graded evaluations per student per window, `autograder.checkpoint.rate_limit`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import course_settings
from autograder.results import VISIBILITIES, GraderError

#: The course configuration shipped with the autograder.
DEFAULT_CONFIG = course_settings.DEFAULT_CONFIG
#: Environment variable naming another course configuration.
ENV_CONFIG = course_settings.ENV_CONFIG


class CourseConfigError(GraderError):
    """The course configuration is unreadable or impossible (a grader error)."""


#: The ways to turn a test accuracy into points (`CheckpointRubric.credit`).
CREDIT_SCALES = ("threshold", "linear")


@dataclass(frozen=True)
class LeaderboardSettings:
    """``[checkpoint.leaderboard]``: the checkpoint's test accuracy on Gradescope's leaderboard.

    Attributes:
        enabled: write results.json's ``leaderboard`` field (Gradescope shows it only when the
            assignment's leaderboard setting is on; students appear under a pseudonym they choose).
        name: the column's title.
    """

    enabled: bool = False
    name: str = "Test accuracy (%)"

    def problems(self) -> list[str]:
        return (
            []
            if 0 < len(self.name.strip()) <= 100
            else [f"leaderboard name must be 1 to 100 characters, got {self.name!r}"]
        )


@dataclass(frozen=True)
class RateLimitSettings:
    """``[checkpoint.rate_limit]``: at most `evaluations` graded checkpoint evaluations per
    student in any `window_hours` (0 evaluations: no limit, the default).
    """

    evaluations: int = 0
    window_hours: float = 24.0

    @property
    def enabled(self) -> bool:
        return self.evaluations > 0

    def problems(self) -> list[str]:
        problems = (
            []
            if self.evaluations >= 0
            else [f"rate_limit evaluations must be >= 0 (0: no limit), got {self.evaluations}"]
        )
        if not 0 < self.window_hours <= 24 * 366:
            problems.append(f"rate_limit window_hours must be in (0, {24 * 366}], got {self.window_hours:g}")
        return problems


#: The keys of the tables under [checkpoint] and their TOML types.
_SUBTABLES: dict[str, tuple[type, dict[str, tuple[type, ...]]]] = {
    "leaderboard": (LeaderboardSettings, {"enabled": (bool,), "name": (str,)}),
    "rate_limit": (RateLimitSettings, {"evaluations": (int,), "window_hours": (int, float)}),
}


@dataclass(frozen=True)
class CheckpointRubric:
    """How the checkpoint is graded (the ``[checkpoint]`` table of ``course.toml``).

    Attributes:
        file: the file name students upload.
        credit: ``"threshold"`` (all or nothing at each threshold) or ``"linear"`` (credit
            scaled between the thresholds; see the module docstring).
        full_credit_threshold: test accuracy in percent that earns `points` (inclusive).
        bonus_threshold: test accuracy in percent that earns `bonus_points` on top (linear:
            the whole bonus).
        zero_credit_threshold: linear only: the accuracy in percent at which the scale starts
            (0 points there and below).
        points: points for reaching the full-credit threshold; below it, none (linear: a
            share of them).
        bonus_points: extra points for reaching the bonus threshold (0: no bonus test).
        visibility: Gradescope visibility of the checkpoint tests.
        test_images: the number of images the test split must have (10,000).
        batch_size: images per evaluation batch.
        threads: CPU threads for the evaluation; 0 uses every CPU this process may use.
        max_checkpoint_mb: larger checkpoints are refused unread.
        leaderboard: ``[checkpoint.leaderboard]`` (off by default).
        rate_limit: ``[checkpoint.rate_limit]`` (off by default).
        test_split_sources: local CIFAR-10 copies to try (relative to the project root); none by
            default (a development set-up names its copy in its own course.toml, or sets
            ``$SSL_LAB_CIFAR10`` / ``$SSL_LAB_TEST_SPLIT``).
    """

    file: str = "simclr_lin_best.pt"
    credit: str = "threshold"
    full_credit_threshold: float = 75.0
    bonus_threshold: float = 85.0
    zero_credit_threshold: float | None = None
    points: float = 10.0
    bonus_points: float = 5.0
    visibility: str = "visible"
    test_images: int = 10_000
    batch_size: int = 100
    threads: int = 0
    max_checkpoint_mb: float = 200.0
    test_split_sources: tuple[str, ...] = ()
    leaderboard: LeaderboardSettings = LeaderboardSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()

    def __post_init__(self) -> None:
        problems = []
        if not self.file or Path(self.file).name != self.file or self.file in (".", ".."):
            problems.append(f"file must be a plain file name, got {self.file!r}")
        for name in ("full_credit_threshold", "bonus_threshold"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                problems.append(f"{name} must be a percentage in [0, 100], got {value}")
        if self.bonus_threshold < self.full_credit_threshold:
            problems.append(
                f"bonus_threshold ({self.bonus_threshold}) is below full_credit_threshold "
                f"({self.full_credit_threshold})"
            )
        problems += self._credit_problems() + self.leaderboard.problems() + self.rate_limit.problems()
        for name in ("points", "bonus_points"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.visibility not in VISIBILITIES:
            problems.append(f"visibility must be one of {', '.join(VISIBILITIES)}, got {self.visibility!r}")
        for name, low in (("test_images", 1), ("batch_size", 1), ("threads", 0)):
            if getattr(self, name) < low:
                problems.append(f"{name} must be an integer >= {low}, got {getattr(self, name)}")
        if self.max_checkpoint_mb <= 0:
            problems.append(f"max_checkpoint_mb must be > 0, got {self.max_checkpoint_mb}")
        if problems:
            raise CourseConfigError("course configuration [checkpoint]: " + "; ".join(problems))

    def _credit_problems(self) -> list[str]:
        """What is wrong with `credit` and the thresholds it needs."""
        if self.credit not in CREDIT_SCALES:
            return [f"credit must be one of {', '.join(CREDIT_SCALES)}, got {self.credit!r}"]
        zero = self.zero_credit_threshold
        if self.credit == "threshold":
            return (
                []
                if zero is None
                else [
                    f'zero_credit_threshold ({zero:g}) is used only with credit = "linear"; remove it, or set '
                    f'credit = "linear" to scale the points between it and full_credit_threshold'
                ]
            )
        if zero is None:
            return [
                'credit = "linear" needs zero_credit_threshold: the test accuracy in percent at which the '
                "scale starts (0 points there and below), e.g. zero_credit_threshold = 70"
            ]
        problems = []
        if not 0 <= zero < self.full_credit_threshold:
            problems.append(
                f"zero_credit_threshold ({zero:g}) must be a percentage in [0, 100] below "
                f"full_credit_threshold ({self.full_credit_threshold:g}), so the scale has a length"
            )
        if self.has_bonus and self.bonus_threshold <= self.full_credit_threshold:
            problems.append(
                f'with credit = "linear" the bonus grows from full_credit_threshold '
                f"({self.full_credit_threshold:g}) to bonus_threshold ({self.bonus_threshold:g}): "
                f"bonus_threshold must be above it (or bonus_points = 0)"
            )
        return problems

    def credit_summary(self) -> str:
        """The credit rule in a few words, e.g. "threshold credit (10 points at 75 %, +5 bonus at 85 %)"."""
        if self.credit == "linear":
            bonus = f", +{self.bonus_points:g} bonus growing up to {self.bonus_threshold:g} %" if self.has_bonus else ""
            return (
                f"linear credit (0 points at {self.zero_credit_threshold:g} % up to {self.points:g} at "
                f"{self.full_credit_threshold:g} %{bonus})"
            )
        bonus = f", +{self.bonus_points:g} bonus at {self.bonus_threshold:g} %" if self.has_bonus else ""
        return f"threshold credit ({self.points:g} points at {self.full_credit_threshold:g} %{bonus})"

    def summary(self) -> str:
        """One line for instructors: the credit rule, the leaderboard and the rate limit."""
        board = (
            f'on ("{self.leaderboard.name}"; turn on the assignment\'s leaderboard setting too)'
            if self.leaderboard.enabled
            else "off"
        )
        limit = (
            f"{self.rate_limit.evaluations} evaluation(s) per {self.rate_limit.window_hours:g} h"
            if self.rate_limit.enabled
            else "off"
        )
        return (
            f"checkpoint: {self.credit_summary()}; leaderboard {board}; rate limit {limit} (course.toml [checkpoint], "
            f'[checkpoint.leaderboard], [checkpoint.rate_limit]; README.md, "Checkpoint options")'
        )

    @property
    def max_checkpoint_bytes(self) -> int:
        return int(self.max_checkpoint_mb * 2**20)

    @property
    def has_bonus(self) -> bool:
        return self.bonus_points > 0


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "file": (str,),
    "credit": (str,),
    "full_credit_threshold": (int, float),
    "bonus_threshold": (int, float),
    "zero_credit_threshold": (int, float),
    "points": (int, float),
    "bonus_points": (int, float),
    "visibility": (str,),
    "test_images": (int,),
    "batch_size": (int,),
    "threads": (int,),
    "max_checkpoint_mb": (int, float),
    "test_split_sources": (list,),
    "leaderboard": (dict,),
    "rate_limit": (dict,),
}


def _subtable(key: str, table: Mapping[str, Any], where: str) -> Any:
    """The settings of ``[checkpoint.<key>]``; unknown keys and wrong types are errors."""
    cls, types = _SUBTABLES[key]
    unknown = sorted(set(table) - set(types))
    if unknown:
        raise CourseConfigError(
            f"{where}: unknown key(s) {unknown} in [checkpoint.{key}]; known keys: {', '.join(types)}"
        )
    values = {}
    for name, value in table.items():
        expected = types[name]
        if isinstance(value, bool) != (bool in expected) or not isinstance(value, expected):
            raise CourseConfigError(
                f"{where}: [checkpoint.{key}] {name} must be {' or '.join(t.__name__ for t in expected)}, got {value!r}"
            )
        values[name] = float(value) if float in expected else value
    return cls(**values)


def rubric_from_mapping(table: Mapping[str, Any], where: str = "[checkpoint]") -> CheckpointRubric:
    """A `CheckpointRubric` from a ``[checkpoint]`` table; unknown keys and wrong types are errors."""
    unknown = sorted(set(table) - set(_FIELD_TYPES))
    if unknown:
        close = {k: difflib.get_close_matches(k, _FIELD_TYPES, n=1) for k in unknown}
        hints = ", ".join(f"{k!r}" + (f" (did you mean {close[k][0]!r}?)" if close[k] else "") for k in unknown)
        raise CourseConfigError(f"{where}: unknown key(s) {hints}; known keys: {', '.join(_FIELD_TYPES)}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        types = _FIELD_TYPES[key]
        if key in _SUBTABLES and not isinstance(value, dict):
            raise CourseConfigError(f"{where}: {key} must be a table, [checkpoint.{key}], got {value!r}")
        if isinstance(value, bool) or not isinstance(value, types):
            raise CourseConfigError(f"{where}: {key} must be {' or '.join(t.__name__ for t in types)}, got {value!r}")
        if key in _SUBTABLES:
            value = _subtable(key, value, where)
        elif key == "test_split_sources":
            if not all(isinstance(v, str) for v in value):
                raise CourseConfigError(f"{where}: test_split_sources must be a list of paths (strings)")
            value = tuple(value)
        elif float in types:
            value = float(value)
        values[key] = value
    try:
        return CheckpointRubric(**values)
    except CourseConfigError as error:
        raise CourseConfigError(f"{where}: {error}") from None


def load_course_config(path: str | os.PathLike | None = None) -> CheckpointRubric:
    """The checkpoint rubric of this course.

    Args:
        path: a TOML file; None reads ``$SSL_LAB_COURSE_CONFIG`` if set, else
            ``autograder/course.toml``.

    Returns:
        The rubric: `CheckpointRubric` defaults updated with the file's ``[checkpoint]`` table.

    Raises:
        CourseConfigError: the file is missing, not TOML, has other tables or unknown keys,
            wrong types or impossible values.
    """
    try:
        path, document = course_settings.read_course_document(path)
    except course_settings.CourseConfigError as error:
        raise CourseConfigError(str(error)) from None
    other = sorted(set(document) - {"checkpoint", "grading"})
    if other:
        raise CourseConfigError(f"{path}: unknown table(s) or key(s) {other}; only [checkpoint] and [grading] are read")
    table = document.get("checkpoint", {})
    if not isinstance(table, dict):
        raise CourseConfigError(f"{path}: [checkpoint] must be a table")
    try:
        course_settings.grading_settings_from_mapping(document.get("grading", {}), where=f"{path} [grading]")
    except course_settings.CourseConfigError as error:
        raise CourseConfigError(str(error)) from None
    return rubric_from_mapping(table, where=f"{path} [checkpoint]")


__all__ = [
    "CREDIT_SCALES",
    "CheckpointRubric",
    "CourseConfigError",
    "DEFAULT_CONFIG",
    "ENV_CONFIG",
    "LeaderboardSettings",
    "RateLimitSettings",
    "load_course_config",
    "rubric_from_mapping",
]
