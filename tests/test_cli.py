"""One command line: ``python -m autograder <verb>`` reaches every tool, handing the delegated
verbs' options to the tools' own parsers (their ``python -m autograder.<tool>`` entry points
keep working: CI and Gradescope's image call them)."""

from __future__ import annotations

import argparse

from autograder import cli, wheels


def test_every_verb_is_listed():
    parser = cli.build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {
        "grade",
        "grade-all",
        "similarity",
        "regrade-diff",
        "manual-answers",
        "check-sandbox",
        "release",
        "wheels",
        "gradescope",
        "demo",
    } <= set(verbs)


def test_wheels_is_delegated_with_its_options(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(wheels, "reachable", lambda index, timeout=10: True)
    monkeypatch.setattr(wheels, "check", lambda path, pythons, **options: calls.append((path, tuple(pythons))) or [])
    assert cli.main(["wheels", "--student", "--python", "3.12"]) == 0
    assert calls == [(wheels.STUDENT_REQUIREMENTS, ("3.12",))]
    assert "every pin has a wheel" in capsys.readouterr().out


def test_gradescope_build_and_run_are_delegated(capsys):
    """``gradescope build ...`` reaches autograder.gradescope's own parser (an unknown
    assignment is refused there with 64, before anything is built)."""
    assert cli.main(["gradescope", "build", "--assignment", "homework"]) == 64
    assert "homework" in capsys.readouterr().err
