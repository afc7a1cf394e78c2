"""The ``[grading]`` table of ``course.toml``: limits of running one submission's code.

Kept free of torch (the command line reads it before starting the sandbox); the
``[checkpoint]`` table is read by `autograder.checkpoint.rubric`, which checks the whole file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_CONFIG = Path(__file__).resolve().with_name("course.toml")
ENV_CONFIG = "SSL_LAB_COURSE_CONFIG"


class CourseConfigError(ValueError):
    """The course configuration is missing, malformed or impossible (the message names it)."""


#: The ``[grading]`` table: limits of running one submission's code (see course.toml).
GRADING_DEFAULTS = {"budget_seconds": 60.0, "call_seconds": 10.0}


def grading_settings_from_mapping(table: Any, where: str = "[grading]") -> dict[str, float]:
    """The ``[grading]`` settings, validated (CourseConfigError names a bad key or value)."""
    if not isinstance(table, dict):
        raise CourseConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - set(GRADING_DEFAULTS) - {"hidden_seed"})
    if unknown:
        raise CourseConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(GRADING_DEFAULTS)}")
    settings = dict(GRADING_DEFAULTS)
    for key, value in table.items():
        if key == "hidden_seed":  # not a time limit: checked here, used by autograder.hidden_inputs
            from autograder.hidden_inputs import parse_setting

            parse_setting(value, where=f"{where} {key}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 3600:
            raise CourseConfigError(f"{where}: {key} must be a number of seconds between 1 and 3600, not {value!r}")
        settings[key] = float(value)
    if settings["call_seconds"] > settings["budget_seconds"]:
        raise CourseConfigError(f"{where}: call_seconds cannot exceed budget_seconds")
    return settings


def read_course_document(path: str | os.PathLike | None = None) -> tuple[Path, dict[str, Any]]:
    """(path, parsed TOML) of the course configuration: `path`, else ``$SSL_LAB_COURSE_CONFIG``,
    else ``autograder/course.toml`` (CourseConfigError when unreadable or not TOML)."""
    if path is None:
        path = os.environ.get(ENV_CONFIG, "").strip() or DEFAULT_CONFIG
    path = Path(path).expanduser()
    try:
        with open(path, "rb") as handle:
            return path, tomllib.load(handle)
    except OSError as error:
        raise CourseConfigError(f"cannot read the course configuration {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise CourseConfigError(f"the course configuration {path} is not valid TOML: {error}") from None


def load_grading_settings(path: str | os.PathLike | None = None) -> dict[str, float]:
    """The ``[grading]`` table of the course configuration (defaults where it is absent)."""
    path, document = read_course_document(path)
    return grading_settings_from_mapping(document.get("grading", {}), where=f"{path} [grading]")


__all__ = [
    "CourseConfigError",
    "GRADING_DEFAULTS",
    "grading_settings_from_mapping",
    "load_grading_settings",
    "read_course_document",
]
