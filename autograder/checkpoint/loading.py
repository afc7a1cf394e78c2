"""Finding the submitted checkpoint in a submission folder and loading it as data, never as code.

1. **Find** it (`locate_checkpoint`): the exact name at the top level, else the exact name
   one or two folders down (a zipped folder), else a clear "wrong name" message that lists
   the files that look like checkpoints. The folder is listed without following links
   (`autograder.safe_files`); symbolic links are refused (they could point at the grader's
   own files).
2. **Load** it (`load_submitted_classifier`): opened as a regular file only (no link
   followed, no named pipe waited on, no device opened: `autograder.safe_files.open_regular`),
   then read from that open file by `helpers.checkpoint.load_classifier`
   (``torch.load(weights_only=True)``, strict keys and shapes, finite values, 10 classes,
   size cap), which first refuses a torch zip file whose members would inflate past the size
   cap (a "zip bomb") before ``torch.load`` sees it. Every problem is a `CheckpointError`
   whose message is shown to the student; nothing in the file ever runs.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import torch

from autograder import safe_files
from autograder.checkpoint.rubric import CheckpointRubric
from helpers.checkpoint import MAX_ZIP_MEMBERS, CheckpointError, load_classifier
from helpers.checkpoint import check_zip_expansion as _check_zip_expansion
from helpers.models import LinearClassifier

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar", ".pkl", ".pickle", ".zip")
_SEARCH_DEPTH = 3  # folders below the submission root searched for the checkpoint
_SHOWN = 5


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def locate_checkpoint(submission_dir: str | os.PathLike, file_name: str = "simclr_lin_best.pt") -> tuple[Path, str]:
    """Find the checkpoint in a submission folder.

    Returns:
        (path, note): the top-level ``file_name`` (note ""), else the only ``file_name`` in a
        sub-folder (note says where). A top-level folder of that name is returned as is
        (loading then explains it is a folder).

    Raises:
        CheckpointError: nothing of that name (listing similarly named files and other
            checkpoint files, with "rename it to ..."), several of that name in
            sub-folders, or a symbolic link.
    """
    root = Path(submission_dir)
    top = root / file_name
    if os.path.lexists(top):
        if top.is_symlink():
            raise CheckpointError(
                f"{file_name} in your submission is a symbolic link; upload the checkpoint "
                f"file itself (links are not followed)."
            )
        return top, ""
    listing = safe_files.list_entries(root, _SEARCH_DEPTH)
    files = [entry.path for entry in listing.entries]
    unfollowed = ""
    if listing.links():
        unfollowed = (
            " Symbolic links in a submission are not followed ("
            + ", ".join(entry.relative for entry in listing.links()[:_SHOWN])
            + "): upload the files themselves."
        )
    exact = [p for p in files if p.name == file_name]
    if len(exact) == 1:
        if exact[0].is_symlink():
            raise CheckpointError(
                f"{_relative(exact[0], root)} in your submission is a symbolic link; upload the checkpoint file itself."
            )
        return exact[
            0
        ], f"Graded {_relative(exact[0], root)} (please put {file_name} at the top level of your submission)."
    if len(exact) > 1:
        listed = ", ".join(_relative(p, root) for p in exact[:_SHOWN])
        raise CheckpointError(
            f"Your submission has several files named {file_name} ({listed}) and none at the "
            f"top level; submit exactly one, at the top level, beside your notebook."
        )
    wanted = file_name.lower()
    similar = [
        p
        for p in files
        if p.name.lower() == wanted
        or Path(p.name).stem.lower() == Path(wanted).stem
        or difflib.SequenceMatcher(None, wanted, p.name.lower()).ratio() >= 0.6
    ]
    similar.sort(key=lambda p: -difflib.SequenceMatcher(None, wanted, p.name.lower()).ratio())
    checkpoints = [p for p in files if p.suffix.lower() in _CHECKPOINT_SUFFIXES and p not in similar]
    save = f"helpers.save_classifier(classifier, '{file_name}')"
    if similar or checkpoints:
        listed = ", ".join(_relative(p, root) for p in (similar + checkpoints)[:_SHOWN])
        first = _relative((similar + checkpoints)[0], root)
        return_hint = (
            f"If {first} is your fine-tuned classifier, rename it to {file_name} (exactly this name, "
            f"lower case) and resubmit"
        )
        raise CheckpointError(
            f"No file named {file_name} in your submission. Files that look like checkpoints: "
            f"{listed}. {return_hint}; otherwise save the classifier with {save}.{unfollowed}"
        )
    present = ", ".join(_relative(p, root) for p in files[:_SHOWN]) or "nothing"
    raise CheckpointError(
        f"No file named {file_name} in your submission (it contains: {present}). Upload the "
        f"fine-tuned classifier that your notebook saves with {save}, together with the notebook."
        f"{unfollowed}"
    )


def check_zip_expansion(path: str | os.PathLike, max_bytes: int) -> None:
    """`helpers.checkpoint.check_zip_expansion` on a submitted file, opened as
    `load_submitted_classifier` opens it (a file that cannot be opened is left to it).

    Raises:
        CheckpointError: the declared total exceeds `max_bytes`, or there are more than
            `MAX_ZIP_MEMBERS` members.
    """
    path = Path(path)
    try:
        fd = safe_files.open_regular(path, what="checkpoint")
    except safe_files.SubmittedFileError:
        return
    with os.fdopen(fd, "rb") as file:
        _check_zip_expansion(file, max_bytes, name=path.name)


def student_message(error: Exception, submission_dir: Path) -> str:
    """A loader message with the grader's absolute submission path shortened."""
    text = str(error)
    for prefix in {str(submission_dir) + os.sep, str(submission_dir.resolve()) + os.sep}:
        text = text.replace(prefix, "")
    return text


def load_submitted_classifier(path: Path, rubric: CheckpointRubric, device: torch.device) -> LinearClassifier:
    """Open the submitted file as a regular file only (`autograder.safe_files.open_regular`:
    no link followed, no pipe waited on, no device opened), then
    `helpers.checkpoint.load_classifier` on that open file (size cap, zip-expansion guard,
    weights-only loading; see the module docstring)."""
    try:
        fd = safe_files.open_regular(path, what="checkpoint")
    except safe_files.SubmittedFileError as error:
        if error.kind in ("missing", "folder"):  # load_classifier's messages say what to do
            return load_classifier(
                path, map_location=device, max_bytes=rubric.max_checkpoint_bytes, expected_classes=10
            )
        raise CheckpointError(str(error)) from None
    with os.fdopen(fd, "rb") as file:
        return load_classifier(
            path, map_location=device, max_bytes=rubric.max_checkpoint_bytes, expected_classes=10, file=file
        )


__all__ = [
    "MAX_ZIP_MEMBERS",
    "check_zip_expansion",
    "load_submitted_classifier",
    "locate_checkpoint",
    "student_message",
]
