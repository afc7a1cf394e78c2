"""Gradescope's ``/autograder/submission_metadata.json``, read defensively: the submission's id
and time, its users, and the earlier submissions with their results.

The file is written by Gradescope (the student cannot change it), but a missing, truncated or
oddly shaped file must never stop grading: every field falls back to "unknown". Local grading
has no such file; `SubmissionMetadata.local` stands in for it.

Format: https://gradescope-autograders.readthedocs.io/en/latest/submission_metadata/
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

#: Where Gradescope puts the file, relative to the autograder root (``/autograder``).
FILE_NAME = "submission_metadata.json"
#: A larger file is not read (Gradescope's are a few kB; many resubmissions stay far below this).
MAX_BYTES = 16 * 2**20


@dataclass(frozen=True)
class User:
    id: str
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class PreviousSubmission:
    time: datetime | None
    score: float | None
    results: dict[str, Any] = field(default_factory=dict)  # that submission's results.json


@dataclass(frozen=True)
class SubmissionMetadata:
    submission_id: str | None = None
    created_at: datetime | None = None
    assignment_id: str | None = None
    users: tuple[User, ...] = ()
    previous: tuple[PreviousSubmission, ...] = ()
    problem: str | None = None  # why the file could not be used, when it could not

    @classmethod
    def local(cls) -> SubmissionMetadata:
        """Grading outside Gradescope: nothing is known."""
        return cls()


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def parse(data: Any) -> SubmissionMetadata:
    """The metadata in a decoded ``submission_metadata.json`` (any JSON value)."""
    if not isinstance(data, dict):
        return SubmissionMetadata(problem="submission_metadata.json is not a JSON object")
    assignment = data.get("assignment") if isinstance(data.get("assignment"), dict) else {}
    users = []
    for user in _list(data.get("users")):
        if isinstance(user, dict) and _id(user.get("id")) is not None:
            users.append(User(_id(user.get("id")), str(user.get("name") or ""), str(user.get("email") or "")))
    previous = []
    for entry in _list(data.get("previous_submissions")):
        if isinstance(entry, dict):
            results = entry.get("results") if isinstance(entry.get("results"), dict) else {}
            previous.append(
                PreviousSubmission(_time(entry.get("submission_time")), _number(entry.get("score")), results)
            )
    return SubmissionMetadata(
        submission_id=_id(data.get("id")),
        created_at=_time(data.get("created_at")),
        assignment_id=_id(assignment.get("id", data.get("assignment_id"))),
        users=tuple(users),
        previous=tuple(previous),
    )


def read(path: str | Path) -> SubmissionMetadata:
    """The metadata in the file at `path`; a missing or unreadable file gives empty metadata
    with `problem` saying why (grading goes on)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as error:
        return SubmissionMetadata(problem=f"{path.name} could not be read ({error.strerror or error})")
    if len(raw) > MAX_BYTES:
        return SubmissionMetadata(problem=f"{path.name} is larger than {MAX_BYTES // 2**20} MB")
    try:
        return parse(json.loads(raw))
    except (ValueError, RecursionError) as error:
        return SubmissionMetadata(problem=f"{path.name} is not valid JSON ({type(error).__name__})")
