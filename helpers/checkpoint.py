"""Saving and loading the graded classifier checkpoint (`simclr_lin_best.pt`).

A checkpoint is one file written by `torch.save`, holding only plain data:

    {"format": "ssl-lab-classifier", "version": 1, "num_classes": C,
     "mean": [m_r, m_g, m_b], "std": [s_r, s_g, s_b],
     "state_dict": {name: CPU float32 tensor}}     # the keys of helpers.models.LinearClassifier

`load_classifier` opens the file once (a regular file of at most `MAX_CHECKPOINT_BYTES`;
a zip whose members would inflate past that is refused unread) and reads it with
`torch.load(..., weights_only=True)`, which only rebuilds tensors and containers of plain values: a file that references any other Python object
(a pickled model class, `os.system`, ...) is refused before anything in it runs. The
state_dict is then checked (keys, shapes, dtypes, finite values, number of classes) and
loaded strictly into a fresh `LinearClassifier`. Every problem is a `CheckpointError` whose
message says what is wrong and what to do about it.

What `load_classifier` accepts besides the format above (each is a pure renaming or
unwrapping, after which the same strict checks run, so nothing it lets through could change
what the model computes):

- a bare state_dict of a `LinearClassifier` (`torch.save(classifier.state_dict(), path)`),
  including the state_dict of a student's own class with exactly the same keys;
- such a state_dict under `"state_dict"`, `"model_state_dict"` or `"model"` in a training
  checkpoint dict (other entries, e.g. an optimiser state, are ignored);
- keys that all start with `module.` (`nn.DataParallel` / `DistributedDataParallel`) or
  `_orig_mod.` (`torch.compile`): the prefix is removed;
- half-precision or float64 weights (converted to float32) and the legacy non-zip
  `torch.save` format.

It never guesses a missing tensor: a state_dict without the `mean` / `std` buffers is refused,
because the input normalisation the weights were trained with is unknown.
"""

from __future__ import annotations

import difflib
import io
import os
import pickle
import pickletools
import re
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from helpers.models import LinearClassifier

#: Value of the "format" entry of a checkpoint written by `save_classifier`.
CHECKPOINT_FORMAT = "ssl-lab-classifier"
#: Newest format version this module reads and the one it writes.
CHECKPOINT_VERSION = 1
#: Largest checkpoint `load_classifier` reads (a ResNet-18 classifier is about 45 MiB).
MAX_CHECKPOINT_BYTES = 200 * 2**20
#: At most this many members in a checkpoint's zip (a ResNet-18 checkpoint has about 130).
MAX_ZIP_MEMBERS = 4096

# Keys of a training-checkpoint dict under which a classifier state_dict is looked for.
_STATE_DICT_ENTRIES = ("state_dict", "model_state_dict", "model")
# Prefixes added by nn.DataParallel / DistributedDataParallel and by torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# File name endings that students use for PyTorch checkpoints (for "did you mean" hints).
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar", ".pkl", ".pickle")
# How many offending keys an error message names.
_SHOWN = 5
# Globals that torch's weights-only unpickler allows by default (used only to word the
# message for a pickle it could not parse; the decision itself is torch's).
_SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode")
_SAVE_CALL = "helpers.save_classifier(classifier, path)"
_SAVE = f"Save the classifier with {_SAVE_CALL}"


class CheckpointError(ValueError):
    """A classifier checkpoint that cannot be saved or loaded; the message says why and what
    to do next."""


# ----------------------------------------------------------------------------- saving


def save_classifier(model: nn.Module | Mapping[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Save a trained classifier as a graded checkpoint, atomically.

    Args:
        model: a `helpers.models.LinearClassifier`, or any module (or state_dict) whose
            state_dict has exactly its keys: `mean`, `std` (1, 3, 1, 1), `encoder.*` (the
            keys of `cifar_resnet18()`), `fc.weight` (C, 512), `fc.bias` (C,). Models wrapped
            in `nn.DataParallel` or compiled with `torch.compile` are unwrapped.
        path: the file to write, e.g. "simclr_lin_best.pt"; missing parent folders are
            created. The file is written to a temporary name in the same folder and then
            renamed, so an interrupted save never leaves a half-written checkpoint.

    Returns:
        The path written.

    Raises:
        CheckpointError: the model is not the classifier architecture (the message names
            the missing / unexpected keys and shapes), has non-finite weights, or the path
            is a folder.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(
            f"Cannot save to {path}: it is a folder; give a file name such as {path / 'simclr_lin_best.pt'}."
        )
    if isinstance(model, nn.Module):
        what = f"The {type(model).__name__} passed to save_classifier"
        raw_state = model.state_dict()
    elif isinstance(model, Mapping):
        what = "The state_dict passed to save_classifier"
        raw_state = dict(model)
    else:
        raise CheckpointError(
            f"save_classifier expects the classifier (an nn.Module such as "
            f"helpers.LinearClassifier), got a {type(model).__name__}."
        )
    fix = (
        "save_classifier saves the graded classifier architecture: build it as "
        "helpers.LinearClassifier(encoder, mean=CIFAR10_MEAN, std=CIFAR10_STD) with "
        "encoder = helpers.cifar_resnet18() (e.g. your SimCLR model's .encoder), train it, "
        "and pass that object"
    )
    state, num_classes = _check_state_dict(raw_state, where=what, fix=fix, expected_classes=None)
    state = {
        name: tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        for name, tensor in state.items()
    }
    payload_bytes = sum(t.numel() * t.element_size() for t in state.values())
    if payload_bytes > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"{what} has weights of {payload_bytes / 2**20:.0f} MiB, more than the "
            f"{MAX_CHECKPOINT_BYTES / 2**20:.0f} MiB that load_classifier accepts; use fewer classes."
        )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "num_classes": num_classes,
        "mean": state["mean"].flatten().tolist(),
        "std": state["std"].flatten().tolist(),
        "state_dict": state,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)  # atomic on POSIX and Windows (same folder)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


# ----------------------------------------------------------------------------- loading


def load_classifier(
    path: str | os.PathLike,
    map_location: Any = "cpu",
    max_bytes: int = MAX_CHECKPOINT_BYTES,
    expected_classes: int | None = 10,
    *,
    file: BinaryIO | None = None,
) -> LinearClassifier:
    """Load a classifier checkpoint safely and check it thoroughly.

    The file is opened once (without blocking, so a named pipe is refused rather than
    waited on), must be a regular file of at most `max_bytes` bytes, and, when it is a zip,
    must not declare members that would inflate past `max_bytes` (a "zip bomb"). It is read
    with `torch.load(file, map_location=map_location, weights_only=True)` (never full
    unpickling, so no code in the file can run), its state_dict is checked, and loaded with
    a strict `load_state_dict` into a new `LinearClassifier`. See the module docstring for
    the layouts accepted besides `save_classifier`'s own.

    Args:
        path: the checkpoint file, e.g. "submission/simclr_lin_best.pt".
        map_location: where the tensors go, as in `torch.load` ("cpu", "cuda", a
            torch.device, ...). The returned model lives there.
        max_bytes: larger files are refused before any byte of them is read.
        expected_classes: the number of classes the classifier must have (10 for
            CIFAR-10); None accepts any.
        file: the checkpoint already opened for binary reading (the autograder opens a
            submitted file itself, without following links); `path` then only names it in
            messages. It is read from its start and not closed.

    Returns:
        The classifier, in eval mode. It maps raw images `(B, 3, 32, 32)` float in [0, 1] to
        logits `(B, C)`.

    Raises:
        CheckpointError: for every problem with the file: missing (with similarly named
            files in the same folder), a folder, not a regular file, empty, too large,
            a zip that would inflate past `max_bytes`, truncated or corrupted, not a PyTorch checkpoint, containing code or objects that weights-only loading
            refuses, a wrong layout, missing / unexpected keys, wrong shapes, dtypes or
            number of classes, NaN or infinite values.
    """
    path = Path(path).expanduser()
    _check_map_location(map_location)
    if file is None:
        _stat_checkpoint(path, max_bytes)  # before any byte is read
        with _open_checkpoint(path) as opened:
            obj = _load_opened(opened, path, map_location, max_bytes)
    else:
        obj = _load_opened(file, path, map_location, max_bytes)
    raw_state, metadata = _find_state_dict(obj, path)
    where = f"Checkpoint {path}"
    fix = f"Re-create the file: {_SAVE_CALL}"
    state, num_classes = _check_state_dict(raw_state, where=where, fix=fix, expected_classes=expected_classes)
    _check_metadata(metadata, state, num_classes, where)

    with torch.device("meta"):  # no random initialisation: every tensor comes from the file
        model = LinearClassifier(num_classes=num_classes)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, ValueError, TypeError) as error:  # all checked above; kept as a guard
        raise CheckpointError(
            f"{where} does not load into helpers.LinearClassifier: {error}. {fix}."
        ) from error
    if isinstance(map_location, (str, torch.device)):
        model = model.to(map_location)
    leftover = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:  # cannot happen with a strict load; never hand back a model without weights
        raise CheckpointError(f"{where}: no weights were loaded for {leftover[:_SHOWN]}. {fix}.")
    return model.eval()


def _check_map_location(map_location: Any) -> None:
    """Refuse a map_location naming a device this machine lacks (a usage error, not a bad file)."""
    if not isinstance(map_location, (str, torch.device)):
        return
    try:
        device = torch.device(map_location)
    except RuntimeError as error:
        raise CheckpointError(
            f"map_location={map_location!r} is not a device: {error}. Use 'cpu' or 'cuda'."
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(
            f"map_location={map_location!r} but this machine has no CUDA GPU; load with map_location='cpu'."
        )


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
        raise CheckpointError(f"{name} is a zip of {len(members):,} files; a classifier checkpoint has about "
                              f"130. Save it with {_SAVE_CALL}.")
    declared = sum(member.file_size for member in members)
    if declared > max_bytes:
        raise CheckpointError(
            f"{name} would expand to {declared:,} bytes when loaded ({declared / 2**20:,.0f} MiB), more than "
            f"the limit of {max_bytes / 2**20:.0f} MiB, so it was not loaded. A ResNet-18 classifier saved with "
            f"helpers.save_classifier is about 45 MB.")


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
        if p.stem.lower() == wanted_stem
        or difflib.SequenceMatcher(None, wanted, p.name.lower()).ratio() >= 0.6
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
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (Keras?)"
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
        f"Checkpoint {path} is not a PyTorch checkpoint: {what}{detail}. Submit the file that "
        f"{_SAVE_CALL} writes."
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


def _find_state_dict(obj: Any, path: Path) -> tuple[Mapping, dict | None]:
    """The state_dict inside what torch.load returned, and the wrapper's metadata if tagged."""
    if not isinstance(obj, Mapping):
        if isinstance(obj, torch.Tensor):
            kind = f"a tensor of shape {tuple(obj.shape)}"
        else:
            kind = f"a {type(obj).__name__}"
        raise CheckpointError(
            f"Checkpoint {path} holds {kind}, not the classifier's weights (a dict). {_SAVE}."
        )
    if "format" in obj:
        if obj["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"Checkpoint {path} has format {obj['format']!r}, expected {CHECKPOINT_FORMAT!r}. {_SAVE}."
            )
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"Checkpoint {path} has an invalid format version {version!r}. {_SAVE}.")
        if version > CHECKPOINT_VERSION:
            raise CheckpointError(
                f"Checkpoint {path} has format version {version}, newer than the {CHECKPOINT_VERSION} "
                f"this copy of helpers reads: update the helpers package (or save it with this copy)."
            )
        state = obj.get("state_dict")
        if not isinstance(state, Mapping):
            raise CheckpointError(
                f"Checkpoint {path} has no 'state_dict' dict (got {type(state).__name__}). {_SAVE}."
            )
        return state, {k: obj[k] for k in ("num_classes", "mean", "std") if k in obj}
    reference = set(_reference_shapes(1))
    if any(_strip_wrapper_prefixes(str(key)) in reference for key in obj):
        return obj, None  # a bare state_dict
    for entry in _STATE_DICT_ENTRIES:  # a training checkpoint {"model_state_dict": ..., ...}
        if isinstance(obj.get(entry), Mapping):
            return obj[entry], None
    if obj and all(isinstance(value, torch.Tensor) for value in obj.values()):
        return obj, None  # a state_dict of some other model: the key check explains
    keys = ", ".join(repr(k) for k in list(obj)[:8])
    raise CheckpointError(
        f"Checkpoint {path} is a dict with keys [{keys}] but holds no classifier weights "
        f"(no state_dict of helpers.LinearClassifier, directly or under "
        f"{' / '.join(repr(e) for e in _STATE_DICT_ENTRIES)}). {_SAVE}."
    )


def _check_metadata(metadata: dict | None, state: dict, num_classes: int, where: str) -> None:
    """The wrapper's num_classes / mean / std must agree with the state_dict (its source of truth)."""
    if not metadata:
        return
    fix = f"The file was edited or assembled by hand. {_SAVE}."
    if "num_classes" in metadata and metadata["num_classes"] != num_classes:
        raise CheckpointError(
            f"{where} says num_classes={metadata['num_classes']!r} but fc.weight has {num_classes} rows. {fix}"
        )
    for name in ("mean", "std"):
        if name not in metadata:
            continue
        try:
            stored = torch.as_tensor(metadata[name], dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise CheckpointError(f"{where} has an invalid {name!r} entry {metadata[name]!r}. {fix}") from None
        actual = state[name].detach().to("cpu", torch.float64).flatten()
        if stored.shape != actual.shape or not torch.allclose(stored, actual, rtol=1e-3, atol=1e-6):
            raise CheckpointError(
                f"{where} has {name}={metadata[name]!r} but its state_dict buffer {name} is "
                f"{actual.tolist()}. {fix}"
            )


# ----------------------------------------------------------------------------- checks


@lru_cache(maxsize=8)
def _reference_shapes(num_classes: int) -> dict[str, tuple[tuple[int, ...], bool]]:
    """name -> (shape, is floating) of a LinearClassifier's state_dict, built on the meta
    device (no memory, no initialisation)."""
    with torch.device("meta"):
        model = LinearClassifier(num_classes=num_classes)
    return {name: (tuple(t.shape), t.is_floating_point()) for name, t in model.state_dict().items()}


def _strip_wrapper_prefixes(key: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _strip_common_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """Remove `module.` / `_orig_mod.` when every key carries it (DataParallel, torch.compile)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix):]: value for key, value in state.items()}
                changed = True
    return state


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > _SHOWN else shown


def _key_hints(missing: list[str], unexpected: list[str], present: int) -> str:
    """Likely causes of a key mismatch, as sentences (empty when none is recognised)."""
    missing_set, unexpected_set = set(missing), set(unexpected)
    encoder_missing = any(k.startswith("encoder.") for k in missing)
    pretraining = any(k.startswith(("projector.", "predictor.")) for k in unexpected)
    mixed_prefix = any(
        _strip_wrapper_prefixes(k) != k and _strip_wrapper_prefixes(k) in missing_set for k in unexpected
    )
    bare_encoder = any(k.startswith("encoder.") and k[len("encoder."):] in unexpected_set for k in missing)
    hints = []
    if pretraining:
        hints.append(
            "It holds an encoder with a projection head (a pre-training model), not the "
            "fine-tuned classifier: that is LinearClassifier(model.encoder, ...) after fine-tuning, "
            "saved as simclr_lin_best.pt."
        )
    if bare_encoder:
        hints.append(
            "Its encoder keys lack the 'encoder.' prefix: it is a bare encoder, or a model whose "
            "encoder is not the attribute `encoder`."
        )
    if mixed_prefix:
        hints.append(
            "Some keys start with 'module.' or '_orig_mod.' and others do not: save the "
            "unwrapped model (model.module for DataParallel, model._orig_mod for torch.compile)."
        )
    if any(k.startswith("encoder.fc.") for k in unexpected):
        hints.append("The encoder still has its own fc layer: set encoder.fc = nn.Identity().")
    # The two below only when the encoder is there and nothing above explains the mismatch.
    specific = encoder_missing or pretraining or mixed_prefix
    if not specific and {"mean", "std"} & missing_set:
        hints.append(
            "The input normalisation is missing: build helpers.LinearClassifier(encoder, "
            "mean=..., std=...) with the mean/std your data pipeline used, so the model holds it."
        )
    if not specific and {"fc.weight", "fc.bias"} & missing_set and unexpected:
        hints.append("The linear layer must be the attribute `fc` (nn.Linear(512, num_classes)).")
    if present == 0 and not hints:
        hints.append("None of its keys belongs to a LinearClassifier: it is the state_dict of another model.")
    return (" " + " ".join(hints)) if hints else ""


def _all_finite(tensor: torch.Tensor) -> bool:
    """True when no element is NaN or infinite.

    A NaN or infinity makes the sum non-finite, so a finite sum proves the check in one cheap
    reduction (10x faster than `isfinite(t).all()` on a ResNet layer); only when the sum
    overflows or is non-finite are the elements checked one by one.
    """
    if bool(torch.isfinite(tensor.sum())):
        return True
    return bool(torch.isfinite(tensor).all())


def _check_state_dict(
    raw_state: Mapping, *, where: str, fix: str, expected_classes: int | None
) -> tuple[dict[str, torch.Tensor], int]:
    """Check a classifier state_dict against LinearClassifier; return it (prefixes stripped,
    floats as float32, integers as int64) and its number of classes."""
    bad_keys = [repr(k) for k in raw_state if not isinstance(k, str)]
    if bad_keys:
        raise CheckpointError(f"{where}: state_dict keys must be strings, got {_names(bad_keys)}. {fix}.")
    state = _strip_common_prefixes(dict(raw_state))

    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{where}: state_dict[{name!r}] is a {type(value).__name__}, not a tensor. {fix}."
            )
        if value.is_meta or value.layout != torch.strided or value.is_quantized:
            raise CheckpointError(
                f"{where}: state_dict[{name!r}] is not a plain dense tensor with values "
                f"(layout {value.layout}, device {value.device}). {fix}."
            )

    expected_keys = _reference_shapes(1)  # the keys do not depend on the number of classes
    missing = [k for k in expected_keys if k not in state]
    unexpected = [k for k in state if k not in expected_keys]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_names(unexpected)}")
        present = len(expected_keys) - len(missing)
        raise CheckpointError(
            f"{where} does not match helpers.LinearClassifier ({'; '.join(parts)})."
            f"{_key_hints(missing, unexpected, present)} {fix}."
        )

    fc_weight = state["fc.weight"]  # (C, 512)
    num_classes = fc_weight.shape[0] if fc_weight.dim() == 2 and fc_weight.shape[0] > 0 else None
    if num_classes is not None and expected_classes is not None and num_classes != expected_classes:
        raise CheckpointError(
            f"{where}: the classifier has {num_classes} classes (fc.weight {tuple(fc_weight.shape)}), "
            f"expected {expected_classes}{' (CIFAR-10)' if expected_classes == 10 else ''}. Build it with "
            f"LinearClassifier(encoder, num_classes={expected_classes}, ...)."
        )
    if num_classes is None:
        num_classes = expected_classes or 10  # fc.weight is malformed: the shape check names it
    reference = _reference_shapes(num_classes)

    wrong_shapes = [
        f"{k}: {tuple(state[k].shape)} instead of {shape}"
        for k, (shape, _) in reference.items()
        if tuple(state[k].shape) != shape
    ]
    if wrong_shapes:
        hint = ""
        if tuple(state["encoder.conv1.weight"].shape) == (64, 3, 7, 7):
            hint = (
                " encoder.conv1 is the 7x7 ImageNet stem: use helpers.cifar_resnet18() "
                "(3x3 stride-1 conv1, no max-pool) as the encoder."
            )
        raise CheckpointError(
            f"{where} has tensors of the wrong shape: {_names(wrong_shapes)}.{hint} {fix}."
        )

    converted: dict[str, torch.Tensor] = {}
    for name, (_, is_float) in reference.items():
        tensor = state[name]
        if is_float:
            if not tensor.is_floating_point():
                raise CheckpointError(
                    f"{where}: {name} has dtype {tensor.dtype}, but weights must be floating "
                    f"point (float32). {fix}."
                )
            if not _all_finite(tensor):
                bad = int((~torch.isfinite(tensor)).sum())
                raise CheckpointError(
                    f"{where}: {name} contains {bad} NaN or infinite value(s): training diverged "
                    f"(lower the learning rate, check the loss) and these weights are unusable. "
                    f"Retrain, or use an earlier checkpoint."
                )
            converted[name] = tensor.float()
        else:
            if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
                raise CheckpointError(
                    f"{where}: {name} has dtype {tensor.dtype}, expected an integer counter. {fix}."
                )
            converted[name] = tensor.long()
    if not bool((converted["std"] > 0).all()):
        raise CheckpointError(
            f"{where}: the std buffer {converted['std'].flatten().tolist()} has a zero or negative "
            f"entry, so the input normalisation divides by zero. {fix}."
        )
    return converted, num_classes
