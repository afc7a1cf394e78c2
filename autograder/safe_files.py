"""Reading what a submission folder holds without following it or blocking on it.

The grader reads a submission's notebook and checkpoint in its own (trusted, on Gradescope
root) process, before any sandbox. A submission folder can hold more than regular files: a
symbolic link to ``solutions/ssl_methods.ipynb`` or to ``/dev/zero``, a named pipe that
blocks whoever opens it for reading, a device, a socket, a sub-folder that is a link to
somewhere outside the submission, or a million files. Everything here reads only regular
files, never follows a link, never blocks, and reads at most a stated number of bytes:

- `open_regular` opens one file with ``O_NOFOLLOW | O_NONBLOCK`` (a link is refused by the
  kernel, a pipe does not block the open), after an ``lstat`` that refuses anything but a
  regular file before it is opened (a device is never opened), and checks with ``fstat``
  that what was opened is that same regular file;
- `read_regular` reads such a file with a size cap (it stops one byte past the cap even if
  the file grows while it is read);
- `list_entries` walks a folder with ``os.scandir`` and ``lstat`` only: links are listed
  (so that a message can name them) but never followed, depth and the number of entries
  are bounded.

Every refusal is a `SubmittedFileError` whose message names the file and says what to upload
instead. Standard library only: the command line imports this before torch.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

#: Folders below (and including) the submission root that `list_entries` looks into.
DEFAULT_DEPTH = 3
#: Entries (files, folders, links) `list_entries` looks at before it stops.
DEFAULT_MAX_ENTRIES = 5000

_KINDS = (
    (stat.S_ISLNK, "link", "a symbolic link"),
    (stat.S_ISFIFO, "fifo", "a named pipe (FIFO)"),
    (stat.S_ISCHR, "device", "a device"),
    (stat.S_ISBLK, "device", "a device"),
    (stat.S_ISSOCK, "socket", "a socket"),
    (stat.S_ISDIR, "folder", "a folder"),
)


class SubmittedFileError(ValueError):
    """A submitted file the grader will not read; the message is for the student.

    Attributes:
        kind: "missing", "link", "fifo", "device", "socket", "folder", "other",
            "too_large" or "unreadable".
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def kind_of(mode: int) -> tuple[str, str]:
    """(kind, description) of an ``lstat`` mode: ("file", "a regular file") for a regular file."""
    if stat.S_ISREG(mode):
        return "file", "a regular file"
    for test, kind, description in _KINDS:
        if test(mode):
            return kind, description
    return "other", "not a regular file"


def _refusal(name: str, description: str, kind: str, what: str) -> SubmittedFileError:
    if kind == "link":
        advice = f"upload the {what} itself, not a link (links in a submission are not followed)"
    else:
        advice = f"upload the {what} itself as an ordinary file"
    return SubmittedFileError(
        f"{name} in your submission is {description}, not a regular file, so it was not read; {advice}", kind
    )


def open_regular(
    path: str | os.PathLike,
    what: str = "file",
    name: str | None = None,
    max_bytes: int | None = None,
    too_large: str = "",
) -> int:
    """Open a regular file for reading without following a link or blocking; returns the fd.

    Args:
        path: the file.
        what: what the file should be, for messages ("notebook", "checkpoint").
        name: how messages name the file (default: its file name).
        max_bytes: refuse a larger file before reading any byte of it (None: no cap here).
        too_large: advice appended to the "too large" message.

    Raises:
        SubmittedFileError: missing, a link, a pipe, a device, a socket, a folder, larger
            than `max_bytes`, or unreadable.
    """
    path = os.fspath(path)
    name = name or os.path.basename(path.rstrip(os.sep)) or path
    try:
        before = os.lstat(path)
    except FileNotFoundError:
        raise SubmittedFileError(f"{name} is missing from your submission", "missing") from None
    except OSError as error:
        raise SubmittedFileError(
            f"{name} in your submission cannot be read ({error.strerror or error})", "unreadable"
        ) from None
    kind, description = kind_of(before.st_mode)
    if kind != "file":
        raise _refusal(name, description, kind, what)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:  # replaced by a link since the lstat
            raise _refusal(name, "a symbolic link", "link", what) from None
        raise SubmittedFileError(
            f"{name} in your submission cannot be read ({error.strerror or error})", "unreadable"
        ) from None
    try:
        info = os.fstat(fd)
        kind, description = kind_of(info.st_mode)
        if kind != "file" or (info.st_dev, info.st_ino) != (before.st_dev, before.st_ino):
            raise _refusal(
                name,
                description if kind != "file" else "a file that changed while it was opened",
                kind if kind != "file" else "other",
                what,
            )
        if max_bytes is not None and info.st_size > max_bytes:
            raise SubmittedFileError(
                f"{name} is {info.st_size / 2**20:.1f} MB, more than the "
                f"{max_bytes / 2**20:.0f} MB the grader reads{too_large}",
                "too_large",
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(
    path: str | os.PathLike, max_bytes: int, what: str = "file", name: str | None = None, too_large: str = ""
) -> bytes:
    """The bytes of a regular file of at most `max_bytes` bytes (see `open_regular`)."""
    fd = open_regular(path, what, name, max_bytes, too_large)
    name = name or os.path.basename(os.fspath(path))
    chunks, total = [], 0
    try:
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as error:
        raise SubmittedFileError(
            f"{name} in your submission cannot be read ({error.strerror or error})", "unreadable"
        ) from None
    finally:
        os.close(fd)
    if total > max_bytes:  # it grew after the size check
        raise SubmittedFileError(
            f"{name} is more than the {max_bytes / 2**20:.0f} MB the grader reads{too_large}", "too_large"
        )
    return b"".join(chunks)


@dataclass(frozen=True)
class Entry:
    """Something found in a submission folder (folders themselves are not listed).

    Attributes:
        path: where it is.
        relative: its path relative to the submission root, with "/".
        kind: "file", "link", "fifo", "device", "socket" or "other" (see `kind_of`).
    """

    path: Path
    relative: str
    kind: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Listing:
    """What `list_entries` found, and whether it stopped early."""

    entries: list[Entry]
    truncated: bool = False

    def files(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "file"]

    def links(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "link"]


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def list_entries(
    root: str | os.PathLike, depth: int = DEFAULT_DEPTH, max_entries: int = DEFAULT_MAX_ENTRIES
) -> Listing:
    """Everything but folders under `root`, down to `depth` levels of folders (1: `root` only).

    Never follows a link (a linked folder is listed as a "link", not entered), skips hidden
    entries and ``__MACOSX``, and looks at no more than `max_entries` entries in all (a
    folder is read only that far). Sorted by path within each folder, files of a folder
    before its sub-folders' contents.
    """
    root = Path(root)
    listing = Listing([])
    seen = 0

    def walk(folder: Path, prefix: str, levels: int) -> None:
        nonlocal seen
        found: list[os.DirEntry] = []
        try:
            with os.scandir(folder) as iterator:
                for entry in iterator:
                    seen += 1
                    if seen > max_entries:
                        listing.truncated = True
                        break
                    if not _skipped(entry.name):
                        found.append(entry)
        except OSError:
            return
        folders = []
        for entry in sorted(found, key=lambda e: e.name):
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            kind, _ = kind_of(mode)
            if kind == "folder":
                folders.append(entry)
            else:
                listing.entries.append(Entry(Path(entry.path), prefix + entry.name, kind))
        for entry in folders:
            if levels > 1 and not listing.truncated:
                walk(Path(entry.path), f"{prefix}{entry.name}/", levels - 1)

    walk(root, "", depth)
    return listing


__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_MAX_ENTRIES",
    "Entry",
    "Listing",
    "SubmittedFileError",
    "kind_of",
    "list_entries",
    "open_regular",
    "read_regular",
]
