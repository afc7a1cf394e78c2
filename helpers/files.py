"""Files the bundle writes and reads back: written all at once, so that a reader (or a run
resumed after a crash) finds either the old complete file or the new one, never half of it
(`write_atomically`); read with no code run and their format checked (`read_tagged`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def write_atomically(
    path: str | os.PathLike, write: Callable[[BinaryIO], object], *, fsync: bool = True, mode: int = 0o644
) -> Path:
    """Write `path` through a temporary file beside it, renamed over `path` when complete.

    Args:
        path: the file to write; its folder is created if needed.
        write: fills the temporary file, opened in binary mode (e.g. ``lambda f: torch.save(obj, f)``).
        fsync: flush the data to the disk before the rename (a file that must survive a power
            cut); False is enough for a cache.
        mode: permissions of the new file (the temporary file is private until then).

    Returns:
        The path written. If `write` raises, `path` is untouched and the temporary file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)  # atomic on POSIX and Windows (same folder)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


class UnexpectedFile(ValueError):
    """`read_tagged` found no usable file. ``reason`` is "unreadable", "format" or "version";
    the message names the file and what was found, for the caller to add what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def read_tagged(path: str | os.PathLike, file_format: str, version: int, what: str) -> dict[str, Any]:
    """The dict that ``torch.save`` wrote at `path` with its ``"format"`` and ``"version"`` tags.

    Read with ``torch.load(weights_only=True)``, so only tensors and plain containers are
    rebuilt and no code in the file runs.

    Args:
        path: the file.
        file_format: the ``"format"`` the dict must carry.
        version: the ``"version"`` it must carry.
        what: what such a file is, for the messages ("prepared test split").

    Raises:
        UnexpectedFile: the file cannot be read, is not a dict of that format, or has another version.
    """
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, another format, a pickle with code ...
        detail = (str(error).strip().splitlines() or [""])[0][:300]
        raise UnexpectedFile(
            "unreadable", f"the {what} {path} cannot be read ({type(error).__name__}: {detail})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise UnexpectedFile("format", f"{path} is not a {what} (no format={file_format!r})")
    if payload.get("version") != version:
        raise UnexpectedFile("version", f"{path} has {what} version {payload.get('version')!r}, expected {version}")
    return payload
