"""`python -m autograder demo`, the README's main job: both assignments, the homework's checkpoint included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder import demo

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_demo_grades_both_assignments_and_a_generated_checkpoint(tmp_path: Path, capsys):
    """Does the demo grade ssl_methods and simclr_homework end to end, with the scores it promises?"""
    assert demo.main(keep=tmp_path) == 0
    out = capsys.readouterr().out
    assert "UNEXPECTED" not in out
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and (p / "results.json").is_file())
    assert folders == ["simclr_homework-1", "simclr_homework-2", "ssl_methods-1", "ssl_methods-2", "ssl_methods-3"]
    homework = json.loads((tmp_path / "simclr_homework-1" / "results.json").read_text())
    checkpoint = [t for t in homework["tests"] if t["tags"] == ["checkpoint"]]
    assert checkpoint and "test accuracy" in checkpoint[0]["output"], checkpoint
    assert (tmp_path / "simclr_homework-1" / "simclr_lin_best.pt").is_file()
    assert "Graded by hand, not part of this score" in homework["output"]
    # What an instructor looks for next: the hidden inputs in force, the similarity report of the
    # three ssl_methods submissions (the partly wrong one is the reference with three cells
    # changed; the untouched notebook shares nothing beyond the template), the batch options.
    assert "hidden inputs: the fixed seeds" in out
    assert "most similar: ssl_methods-1 and ssl_methods-3" in out and "never a penalty" in out
    assert (tmp_path / "similarity.html").is_file() and (tmp_path / "similarity.csv").is_file()
    assert "--similarity] [--compare earlier.csv]" in out
