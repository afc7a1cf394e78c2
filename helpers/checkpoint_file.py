"""Reading a classifier checkpoint file safely, for `helpers.checkpoint.load_classifier`.

Part of `helpers.checkpoint`: `read_checkpoint` opens the file once (without blocking, so a
named pipe is refused rather than waited on), insists on a regular file of at most
``max_bytes``, refuses a zip whose members would inflate past that (`check_zip_expansion`),
and reads it with ``torch.load(..., weights_only=True)``. Every failure becomes a
`CheckpointError` that says what the file is (a JPEG, a notebook, a whole pickled model, a
truncated save ...) and what to do.
"""

from __future__ import annotations

import difflib
import io
import os
import pickle
import pickletools
import re
import stat
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from helpers.checkpoint_format import (
    _SAVE,
    _SAVE_CALL,
    _SHOWN,
    MAX_ZIP_MEMBERS,
    CheckpointError,
)

__all__ = ["check_zip_expansion", "read_checkpoint"]

# File name endings that students use for PyTorch checkpoints (for "did you mean" hints).
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar", ".pkl", ".pickle")
# Globals that torch's weights-only unpickler allows by default (used only to word the
# message for a pickle it could not parse; the decision itself is torch's).
_SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode")
# First bytes of files students upload by mistake, and what to call them in a message.
_MAGIC_BYTES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF", "an HDF5 file (Keras?)"),
)


def read_checkpoint(path: Path, map_location: Any, max_bytes: int, file: BinaryIO | None = None) -> Any:
    """What ``torch.load(weights_only=True)`` returns for the checkpoint at `path`, after the
    checks the module docstring lists.

    Args:
        file: the checkpoint already opened for binary reading; `path` then only names it in
            messages. It is read from its start and not closed.
    """
    if file is not None:
        return _load_opened(file, path, map_location, max_bytes)
    _stat_checkpoint(path, max_bytes)  # before any byte is read
    with _open_checkpoint(path) as opened:
        return _load_opened(opened, path, map_location, max_bytes)


def _stat_checkpoint(path: Path, max_bytes: int) -> None:
    """Check that `path` is a non-empty file of at most `max_bytes` bytes, using only stat."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CheckpointError(_missing_file_message(path)) from None
    except OSError as error:
        raise CheckpointError(
            f"Cannot read checkpoint {path}: {error.strerror or error}. Check the path and its permissions."
        ) from None
    if path.is_dir():
        inside = sorted(p.name for p in _list_files(path) if p.suffix.lower() in _CHECKPOINT_SUFFIXES)
        found = f" It contains: {', '.join(inside[:_SHOWN])}." if inside else " It contains no .pt/.pth file."
        raise CheckpointError(
            f"Checkpoint path {path} is a folder, not a file. Pass the path of the checkpoint "
            f"file inside it, e.g. {path / 'simclr_lin_best.pt'}.{found}"
        )
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} is not a regular file; pass the path of the .pt file.")
    _check_size(path, info.st_size, max_bytes)


def _check_size(path: Path, size: int, max_bytes: int) -> None:
    if size == 0:
        raise CheckpointError(
            f"Checkpoint {path} is empty (0 bytes): the save was interrupted or the upload failed. "
            f"Save it again with {_SAVE_CALL} and check that its size is about 45 MB."
        )
    if size > max_bytes:
        raise CheckpointError(
            f"Checkpoint {path} is {_size(size)}, larger than the limit of "
            f"{_size(max_bytes)}, so it was not read. A ResNet-18 classifier saved with "
            f"helpers.save_classifier is about 45 MB: save only the classifier, not the optimiser "
            f"state or a whole training run."
        )


def _open_checkpoint(path: Path) -> BinaryIO:
    """Open `path` for reading without blocking on a named pipe (`_load_opened` checks the rest)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise CheckpointError(f"Cannot read checkpoint {path}: {error.strerror or error}.") from None
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _load_opened(file: BinaryIO, path: Path, map_location: Any, max_bytes: int) -> Any:
    """Check an opened checkpoint (a regular file, its size, its zip members), then load it."""
    try:
        info = os.fstat(file.fileno())
    except (OSError, AttributeError, ValueError) as error:
        raise CheckpointError(f"Cannot read checkpoint {path}: {error}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"Checkpoint {path} is not a regular file; pass the path of the .pt file.")
    _check_size(path, info.st_size, max_bytes)
    check_zip_expansion(file, max_bytes, name=path.name)
    return _torch_load(file, path, map_location)


def check_zip_expansion(file: BinaryIO, max_bytes: int, name: str = "the checkpoint") -> None:
    """Refuse a torch zip checkpoint whose members would inflate past `max_bytes`.

    ``torch.save`` stores members uncompressed, but ``torch.load`` also reads DEFLATE
    members: a 40 KB file can hold 40 MB of zeros, so the file-size cap alone would let a
    small file exhaust the memory of whoever loads it. The central directory declares every
    member's uncompressed size; nothing is decompressed here. `file` is read from its start
    and left at its start.

    Raises:
        CheckpointError: the declared total exceeds `max_bytes`, or there are more than
            `MAX_ZIP_MEMBERS` members.
    """
    try:
        file.seek(0)
        if file.read(4) != b"PK\x03\x04":
            return  # not a zip: the legacy format reads at most the file itself
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return  # torch.load's failure is reported with its own message
    finally:
        file.seek(0)
    if len(members) > MAX_ZIP_MEMBERS:
        raise CheckpointError(
            f"{name} is a zip of {len(members):,} files; a classifier checkpoint has about "
            f"130. Save it with {_SAVE_CALL}."
        )
    declared = sum(member.file_size for member in members)
    if declared > max_bytes:
        raise CheckpointError(
            f"{name} would expand to {declared:,} bytes when loaded ({declared / 2**20:,.0f} MiB), more than "
            f"the limit of {max_bytes / 2**20:.0f} MiB, so it was not loaded. A ResNet-18 classifier saved with "
            f"helpers.save_classifier is about 45 MB."
        )


def _size(num_bytes: int) -> str:
    return f"{num_bytes:,} bytes ({num_bytes / 2**20:.1f} MiB)"


def _list_files(folder: Path, limit: int = 2000) -> list[Path]:
    """Up to `limit` regular files directly inside `folder` (empty if it cannot be listed)."""
    files: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(files) >= limit:
                    break
                try:
                    if entry.is_file():
                        files.append(Path(entry.path))
                except OSError:
                    continue
    except OSError:
        return []
    return files


def _missing_file_message(path: Path) -> str:
    """'not found' plus files in the same folder with similar names (or any checkpoints)."""
    folder = path.parent
    message = f"Checkpoint not found: {path}."
    if not folder.is_dir():
        return (
            f"{message} The folder {folder} does not exist either; check the path "
            f"(relative paths start at {Path.cwd()})."
        )
    wanted = path.name.lower()
    wanted_stem = path.stem.lower()
    files = _list_files(folder)
    similar = [
        p.name
        for p in files
        if p.stem.lower() == wanted_stem or difflib.SequenceMatcher(None, wanted, p.name.lower()).ratio() >= 0.6
    ]
    similar.sort(key=lambda name: -difflib.SequenceMatcher(None, wanted, name.lower()).ratio())
    if similar:
        names = ", ".join(similar[:_SHOWN])
        return (
            f"{message} Files with a similar name in {folder}: {names}. If one of them is your "
            f"fine-tuned classifier, rename it to {path.name}, or save it under that name with {_SAVE_CALL}."
        )
    checkpoints = sorted(p.name for p in files if p.suffix.lower() in _CHECKPOINT_SUFFIXES)
    if checkpoints:
        listed = ", ".join(checkpoints[:_SHOWN])
        return f"{message} Checkpoint files in {folder}: {listed}; rename yours to {path.name}."
    return f"{message} {_SAVE}."


def _describe_content(head: bytes) -> str | None:
    """What a file that is not a PyTorch checkpoint looks like, from its first bytes."""
    for magic, kind in _MAGIC_BYTES:
        if head.startswith(magic):
            return kind
    if len(head) >= 10 and head[8:10] == b'{"':
        return "a safetensors file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.lstrip().startswith("{") and ('"cells"' in text or "nbformat" in text):
        return "a Jupyter notebook"
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return f"a text file (it starts with {text[:40]!r})"
    return None


def _not_a_checkpoint(path: Path, head: bytes, detail: str = "") -> CheckpointError:
    looks_like = _describe_content(head)
    what = f"it looks like {looks_like}" if looks_like else f"its first bytes are {head[:8]!r}"
    detail = f" ({detail})" if detail else ""
    return CheckpointError(
        f"Checkpoint {path} is not a PyTorch checkpoint: {what}{detail}. Submit the file that {_SAVE_CALL} writes."
    )


def _corrupt(path: Path, error: BaseException) -> CheckpointError:
    return CheckpointError(
        f"Checkpoint {path} is truncated or corrupted ({type(error).__name__}: "
        f"{_first_line(error)}). The save was interrupted or the file was damaged in transfer: "
        f"save it again with {_SAVE_CALL} and re-upload it."
    )


def _forbidden(path: Path, names: list[str]) -> CheckpointError:
    listed = f" ({', '.join(sorted(set(names))[:_SHOWN])})" if names else ""
    whole_model = any(n.startswith(("torch.nn.modules", "torchvision.", "__main__", "helpers.")) for n in names)
    hint = (
        " This happens when a whole model is saved with torch.save(model, path):"
        if whole_model
        else " A checkpoint may hold only tensors, numbers, strings, lists and dicts:"
    )
    return CheckpointError(
        f"Checkpoint {path} contains code or Python objects that are not allowed in a "
        f"checkpoint{listed}; for safety it was not loaded and nothing in it was run.{hint} "
        f"save the classifier with {_SAVE_CALL} instead."
    )


def _first_line(error: BaseException) -> str:
    """The first sentence of an exception's message, for quoting in ours."""
    lines = str(error).strip().splitlines()
    if not lines:
        return "no details"
    sentence = lines[0].split(". ")[0].rstrip(".")
    return sentence[:160]


def _pickle_globals(head: bytes) -> tuple[int, list[str]]:
    """Statically list the globals a raw pickle references (nothing is executed).

    Returns:
        (pickle protocol or -1, names such as "posix.system" not allowed by weights_only).
    """
    protocol, names, strings = -1, [], []
    try:
        for opcode, argument, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name == "PROTO":
                protocol = int(argument)
            elif opcode.name in ("GLOBAL", "INST"):
                names.append(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(argument, str):
                strings.append(argument)
    except Exception:  # truncated or not a pickle past this point: keep what was found
        pass
    return protocol, [n for n in names if not n.startswith(_SAFE_GLOBAL_PREFIXES)]


def _zip_pickle_protocol(file: BinaryIO) -> int | None:
    """The pickle protocol of the data.pkl record of a torch zip file (None if unreadable)."""
    try:
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            record = next(name for name in archive.namelist() if name.endswith("data.pkl"))
            with archive.open(record) as member:
                head = member.read(2)
    except Exception:
        return None
    return head[1] if len(head) == 2 and head[0] == 0x80 else None


def _zip_names(file: BinaryIO) -> list[str] | None:
    """The member names of a zip file (None if it is not a readable zip)."""
    try:
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            return archive.namelist()
    except Exception:
        return None


def _torch_load(file: BinaryIO, path: Path, map_location: Any) -> Any:
    """`torch.load(file, weights_only=True)` with every failure turned into a CheckpointError
    (`path` names the file in messages)."""
    try:
        file.seek(0)
        head = file.read(1 << 20)  # for diagnostics only
        file.seek(0)
    except OSError as error:
        raise CheckpointError(f"Cannot read checkpoint {path}: {error.strerror or error}.") from None
    is_zip = head.startswith(b"PK\x03\x04")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4"
            return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Weights only load failed" in message and "Unsupported operand" not in message:
            raise _forbidden(path, re.findall(r"GLOBAL ([\w.]+)", message)) from None
        if is_zip:  # a torch zip whose pickle weights_only cannot parse
            try:
                file.seek(0)
                names = torch.serialization.get_unsafe_globals_in_checkpoint(file)
            except Exception:
                names = []
            if names:
                raise _forbidden(path, names) from None
            if _zip_pickle_protocol(file) in (None, 0, 1, 2, 3):
                raise _corrupt(path, error) from None
            raise CheckpointError(
                f"Checkpoint {path} was written with a pickle protocol that safe loading cannot "
                f"read (torch.save(..., pickle_protocol=4 or 5)?). {_SAVE}, which uses the default protocol."
            ) from None
        if head.startswith(b"\x80"):  # a raw pickle, not the torch format
            protocol, names = _pickle_globals(head)
            if names:
                raise _forbidden(path, names) from None
            raise CheckpointError(
                f"Checkpoint {path} is a plain Python pickle (protocol {protocol}), not a file "
                f"written by torch.save; nothing in it was run. {_SAVE}."
            ) from None
        raise _not_a_checkpoint(path, head) from None
    except MemoryError:
        raise CheckpointError(f"Checkpoint {path} needs more memory to load than is available.") from None
    except Exception as error:  # RuntimeError, EOFError, KeyError, ... from a damaged file
        if is_zip:
            names = _zip_names(file)
            if names is None:
                raise _corrupt(path, error) from None
            if not any(name.endswith("data.pkl") for name in names):
                raise CheckpointError(
                    f"Checkpoint {path} is a zip archive but not a PyTorch checkpoint (it holds "
                    f"{', '.join(names[:_SHOWN])}). Submit the .pt file itself, not a zip of it."
                ) from None
            raise _corrupt(path, error) from None
        if head.startswith(b"\x80"):
            if "magic number" in str(error).lower():
                raise CheckpointError(
                    f"Checkpoint {path} is a plain Python pickle, not a file written by "
                    f"torch.save; nothing in it was run. {_SAVE}."
                ) from None
            raise _corrupt(path, error) from None
        raise _not_a_checkpoint(path, head) from None
