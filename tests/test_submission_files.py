"""What a submission folder holds besides regular files (autograder/safe_files.py and its
users): a notebook that is a symbolic link to the reference solution (locally, or relative as
under Gradescope's /autograder/submission), a named pipe, a link to a device, a socket, a
sub-folder that links outside the submission. None is followed, opened as a device or
waited on; each gets a message naming the file and what to upload instead, and grading
still writes a valid results.json."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from autograder import extract, safe_files
from autograder.assignments import find_notebook

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOLUTION = PROJECT_ROOT / "solutions" / "ssl_methods.ipynb"


def make_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
    except OSError as error:  # a path too long for AF_UNIX
        server.close()
        pytest.skip(f"cannot bind a unix socket at {path}: {error}")
    return server


# --------------------------------------------------------------------------------------
# safe_files itself
# --------------------------------------------------------------------------------------
def test_reads_a_regular_file_with_a_cap(tmp_path):
    path = tmp_path / "a.ipynb"
    path.write_bytes(b"x" * 100)
    assert safe_files.read_regular(path, 100) == b"x" * 100
    with pytest.raises(safe_files.SubmittedFileError, match="more than") as info:
        safe_files.read_regular(path, 99)
    assert info.value.kind == "too_large"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "kind", ["link to a file", "link to /dev/zero", "dangling link", "fifo", "socket", "folder", "missing"]
)
def test_refuses_everything_but_a_regular_file(tmp_path, kind):
    """Nothing but a regular file is read; a pipe is never waited on, a device never opened."""
    path = tmp_path / "ssl_methods.ipynb"
    secret = tmp_path / "secret.ipynb"
    secret.write_text("the reference")
    server = None
    expected = {
        "link to a file": "link",
        "link to /dev/zero": "link",
        "dangling link": "link",
        "fifo": "fifo",
        "socket": "socket",
        "folder": "folder",
        "missing": "missing",
    }[kind]
    if kind == "link to a file":
        path.symlink_to(secret)
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = make_socket(path)
    elif kind == "folder":
        path.mkdir()
    try:
        with pytest.raises(safe_files.SubmittedFileError) as info:
            safe_files.read_regular(path, 2**20, what="notebook")
    finally:
        if server is not None:
            server.close()
    assert info.value.kind == expected
    message = str(info.value)
    assert "ssl_methods.ipynb" in message
    if expected == "link":
        assert "symbolic link" in message and "upload the notebook itself, not a link" in message
    if expected == "fifo":
        assert "named pipe" in message


def test_a_character_device_is_never_opened(tmp_path, monkeypatch):
    """/dev/null itself (a device, as a submission could hold after extraction as root) is
    refused from its lstat, before any open."""
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    with pytest.raises(safe_files.SubmittedFileError, match="is a device") as info:
        safe_files.read_regular("/dev/null", 2**20)
    assert info.value.kind == "device" and not opened


def test_listing_never_follows_links_and_is_bounded(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ssl_methods.ipynb").write_text("{}")
    root = tmp_path / "submission"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "top.txt").write_text("x")
    (root / "a" / "b" / "deep.txt").write_text("x")
    (root / "a" / "b" / "c" / "too_deep.txt").write_text("x")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / ".hidden.ipynb").write_text("{}")
    os.mkfifo(root / "a" / "pipe.ipynb")
    listing = safe_files.list_entries(root, depth=3)
    kinds = {entry.relative: entry.kind for entry in listing.entries}
    assert kinds == {"top.txt": "file", "linked": "link", "a/pipe.ipynb": "fifo", "a/b/deep.txt": "file"}
    assert not listing.truncated
    for index in range(30):
        (root / f"many{index:02d}").write_text("x")
    bounded = safe_files.list_entries(root, depth=3, max_entries=10)
    assert bounded.truncated and len(bounded.entries) <= 10


# --------------------------------------------------------------------------------------
# Notebooks: find_notebook and extract
# --------------------------------------------------------------------------------------
def hostile(kind: str, submission: Path) -> object:
    """Put a hostile `ssl_methods.ipynb` into `submission`; returns what must be closed."""
    target = submission / "ssl_methods.ipynb"
    if kind == "link to the solution":
        target.symlink_to(SOLUTION)
    elif kind == "relative link as under Gradescope":  # /autograder/submission -> ../source/solutions
        source = submission.parent / "source" / "solutions"
        source.mkdir(parents=True)
        (source / "ssl_methods.ipynb").write_bytes(SOLUTION.read_bytes())
        target.symlink_to(Path("..") / "source" / "solutions" / "ssl_methods.ipynb")
        assert target.resolve().is_file()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "link to /dev/zero":
        target.symlink_to("/dev/zero")
    elif kind == "socket":
        return make_socket(target)
    else:
        raise ValueError(kind)
    return None


HOSTILE = ["link to the solution", "relative link as under Gradescope", "fifo", "link to /dev/zero", "socket"]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", HOSTILE)
def test_a_notebook_that_is_not_a_regular_file_is_refused_by_name(tmp_path, kind):
    submission = tmp_path / "submission"
    submission.mkdir()
    server = hostile(kind, submission)
    try:
        assignment, path, note = find_notebook(submission, None)
        assert assignment == "ssl_methods" and path == submission / "ssl_methods.ipynb"
        with pytest.raises(extract.NotebookError) as info:
            extract.extract(path)
    finally:
        if server is not None:
            server.close()
    message = str(info.value)
    assert "ssl_methods.ipynb in your submission is" in message and "upload the notebook itself" in message
    if "link" in kind:
        assert "symbolic link" in message


def test_a_regular_notebook_is_preferred_to_a_link_of_the_same_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ssl_methods.ipynb").symlink_to(SOLUTION)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ssl_methods.ipynb").write_text(json.dumps({"nbformat": 4, "cells": []}))
    assert find_notebook(tmp_path, None)[1] == tmp_path / "b" / "ssl_methods.ipynb"


def test_a_linked_sub_folder_is_not_followed_and_the_note_says_so(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "work").symlink_to(SOLUTION.parent, target_is_directory=True)
    assignment, path, note = find_notebook(submission, None)
    assert path is None
    assert "symbolic links are not followed (work)" in note


def test_a_renamed_link_is_not_read_to_recognise_its_assignment(tmp_path):
    """A renamed notebook is recognised by reading its grade_ids: never through a link."""
    (tmp_path / "my_work.ipynb").symlink_to(PROJECT_ROOT / "solutions" / "simclr_homework.ipynb")
    assert find_notebook(tmp_path, None)[1] is None


# --------------------------------------------------------------------------------------
# The whole grading: always a results.json
# --------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", HOSTILE + ["deeply nested", "a million empty lists"])
def test_grading_writes_results_naming_the_refused_notebook(tmp_path, kind):
    """`grade` stops before any sandbox with a results.json that says why (score 0, exit 0)."""
    from autograder import gradescope
    from autograder.grading import GradeOptions, grade

    submission = tmp_path / "submission"
    submission.mkdir()
    server = None
    if kind == "deeply nested":
        (submission / "ssl_methods.ipynb").write_text("[" * 100_000 + "]" * 100_000)
        phrase = "nested more than"
    elif kind == "a million empty lists":
        (submission / "ssl_methods.ipynb").write_text('{"cells": [' + "[]," * 1_000_000 + "[]]}")
        phrase = "too many values"
    else:
        server = hostile(kind, submission)
        phrase = "not a regular file"
    results_path = tmp_path / "results.json"
    try:
        outcome = grade(submission, GradeOptions(results=results_path, assignment="ssl_methods"))
    finally:
        if server is not None:
            server.close()
    results = json.loads(results_path.read_text())
    assert outcome.exit_code == 0 and results["score"] == 0
    assert not gradescope.validate_results(results)
    assert phrase in results["output"] and "ssl_methods.ipynb" in results["output"]
