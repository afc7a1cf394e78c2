"""The grader decides what a test compares: the structure every operation's result must have.

A harness operation runs in the worker, in the same process as the submission, which can
rewrite it. So nothing the worker sends back is trusted for its *form*: before a test looks
at a result, `check_result` holds it against the reference's result for the same operation
and inputs (computed in the grader). Every record the operation must produce is there, with
exactly the keys, lengths, tensor shapes and dtypes of the reference; only the values the
graded code itself returned (``returned``, a forward's ``outputs``) are free, and the tests
examine those with the messages of `autograder.compare`. A missing, extra or mistyped record
fails the test as the submission's fault ("returned something the grader could not read").

Properties that have no effect on any value (the flags an operation reports: a forward run
in eval mode, gradients left on a target network, ...) can only make a test fail: every test
also compares values that only a correct answer produces (see ``autograder/tests``).
"""

from __future__ import annotations

from typing import Any

import torch

from autograder.sandbox.faults import BadAnswer

#: Keys whose values are the graded code's own return values (any form; the tests check them).
FREE = frozenset({"returned"})
#: Keys that hold one free value per input (a list of the same length as the reference's).
FREE_ITEMS = frozenset({"outputs"})
#: Keys that may be None where the reference has a value, and whose items may be None too
#: (gradients that did not arrive: the tests say why).
NULLABLE = frozenset({"grads"})


class Malformed(BadAnswer):
    """A result whose form differs from what the operation must produce."""


def _fail(path: str, problem: str) -> None:
    raise Malformed(
        f"your code returned something the grader could not read: {path or 'the result'} {problem} "
        "(did your code change the grader's objects, or return far too much?)"
    )


def check_result(actual: Any, template: Any, path: str = "") -> None:
    """Raise `Malformed` unless `actual` has exactly `template`'s structure (see the module docstring)."""
    _check(actual, template, path, nullable=False)


def _check(actual: Any, template: Any, path: str, nullable: bool) -> None:
    if nullable and actual is None:
        return
    if isinstance(template, torch.Tensor):
        if type(actual) is not torch.Tensor:
            _fail(path, f"should be a tensor, not {type(actual).__name__}")
        if actual.shape != template.shape or actual.dtype != template.dtype:
            _fail(
                path,
                f"should have shape {tuple(template.shape)} and dtype {template.dtype}, not "
                f"{tuple(actual.shape)} and {actual.dtype}",
            )
        return
    if isinstance(template, dict):
        if type(actual) is not dict:
            _fail(path, f"should be a dict, not {type(actual).__name__}")
        if set(actual) != set(template):
            missing, extra = sorted(set(template) - set(actual))[:3], sorted(map(str, set(actual) - set(template)))[:3]
            _fail(path, f"has the wrong keys (missing {missing}, unexpected {extra})")
        for key, value in template.items():
            where = f"{path}.{key}" if path else str(key)
            if key in FREE:
                continue
            if key in FREE_ITEMS:
                if type(actual[key]) is not list or len(actual[key]) != len(value):
                    _fail(where, f"should be a list of {len(value)} values")
                continue
            if key == "target_grads":  # names of target parameters that received gradients
                names = set(template.get("target", {})) if isinstance(template, dict) else set()
                items = actual[key]
                if (
                    type(items) is not list
                    or len(items) > len(names)
                    or not all(type(n) is str and n in names for n in items)
                ):
                    _fail(where, "should list names of the target's parameters")
                continue
            _check(actual[key], value, where, nullable=nullable or key in NULLABLE)
        return
    if isinstance(template, (list, tuple)):
        if type(actual) is not type(template) or len(actual) != len(template):
            _fail(path, f"should be a {type(template).__name__} of {len(template)} items")
        for index, (got, want) in enumerate(zip(actual, template)):
            _check(got, want, f"{path}[{index}]", nullable)
        return
    if template is None:
        if actual is not None:
            _fail(path, "should be None")
        return
    if type(actual) is not type(template):
        _fail(path, f"should be a {type(template).__name__}, not {type(actual).__name__}")


__all__ = ["Malformed", "check_result"]
