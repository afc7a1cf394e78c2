"""Writing a file all at once, so that a reader (or a run resumed after a crash) finds either the
old complete file or the new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
