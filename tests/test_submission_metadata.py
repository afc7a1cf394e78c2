"""Reading Gradescope's submission_metadata.json: the documented example, and files that are
missing, truncated or oddly shaped (which must never stop grading)."""

import json

import pytest

from autograder import submission_metadata as metadata

EXAMPLE = {  # Gradescope's documented example, trimmed
    "id": 123456,
    "created_at": "2018-07-01T14:22:32.365935-07:00",
    "assignment": {"due_date": "2018-07-31T23:00:00.000000-07:00", "id": 25828, "title": "Programming Assignment 1"},
    "submission_method": "upload",
    "users": [{"email": "student@example.com", "id": 1234, "name": "Student User"}],
    "previous_submissions": [
        {"submission_time": "2017-04-06T14:24:48.087023-07:00", "score": 0.0, "results": {"score": 0.0, "tests": []}},
    ],
}


def test_documented_example(tmp_path):
    path = tmp_path / metadata.FILE_NAME
    path.write_text(json.dumps(EXAMPLE))
    read = metadata.read(path)
    assert read.problem is None
    assert read.submission_id == "123456" and read.assignment_id == "25828"
    assert read.created_at.isoformat() == "2018-07-01T14:22:32.365935-07:00"
    assert read.users == (metadata.User("1234", "Student User", "student@example.com"),)
    assert len(read.previous) == 1 and read.previous[0].score == 0.0
    assert read.previous[0].results == {"score": 0.0, "tests": []}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'"x"',
        b"[" * 100_000,
        b'{"id": true, "users": 3, "previous_submissions": {"a": 1}}',
        b'{"id": 1, "users": [{"id": null}, 5], "created_at": "yesterday"}',
        b'{"previous_submissions": [{"score": "NaN"}, {"score": 1e999}, 7]}',
    ],
)
def test_bad_files_give_empty_fields(tmp_path, content):
    path = tmp_path / metadata.FILE_NAME
    path.write_bytes(content)
    read = metadata.read(path)
    assert read.users == () and read.created_at is None
    assert all(p.score is None for p in read.previous)
    assert read.submission_id in (None, "1")


def test_missing_and_huge_files(tmp_path):
    assert "could not be read" in metadata.read(tmp_path / "absent.json").problem
    huge = tmp_path / metadata.FILE_NAME
    huge.write_bytes(b" " * (metadata.MAX_BYTES + 1))
    assert "larger than" in metadata.read(huge).problem
    assert metadata.SubmissionMetadata.local().submission_id is None
