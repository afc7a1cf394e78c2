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

In `helpers`, a "checkpoint" is this file only (DESIGN.md's name); what `helpers.train.fit`
saves to resume a run is the "training state" (`helpers.training_state`). The format and the
state_dict checks are in `helpers.checkpoint_format`, reading the file safely in
`helpers.checkpoint_file`; everything public is imported from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from helpers.checkpoint_file import check_zip_expansion, read_checkpoint
from helpers.checkpoint_format import (
    _SAVE_CALL,
    _SHOWN,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    MAX_CHECKPOINT_BYTES,
    MAX_ZIP_MEMBERS,
    CheckpointError,
    check_metadata,
    check_state_dict,
    find_state_dict,
)
from helpers.files import write_atomically
from helpers.models import LinearClassifier

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "MAX_CHECKPOINT_BYTES",
    "MAX_ZIP_MEMBERS",
    "CheckpointError",
    "check_zip_expansion",
    "load_classifier",
    "save_classifier",
]


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
    state, num_classes = check_state_dict(raw_state, where=what, fix=fix, expected_classes=None)
    state = {
        name: tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format) for name, tensor in state.items()
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
    write_atomically(path, lambda file: torch.save(payload, file))
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
    obj = read_checkpoint(path, map_location, max_bytes, file=file)
    raw_state, metadata = find_state_dict(obj, path)
    where = f"Checkpoint {path}"
    fix = f"Re-create the file: {_SAVE_CALL}"
    state, num_classes = check_state_dict(raw_state, where=where, fix=fix, expected_classes=expected_classes)
    check_metadata(metadata, state, num_classes, where)

    with torch.device("meta"):  # no random initialisation: every tensor comes from the file
        model = LinearClassifier(num_classes=num_classes)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, ValueError, TypeError) as error:  # all checked above; kept as a guard
        raise CheckpointError(f"{where} does not load into helpers.LinearClassifier: {error}. {fix}.") from error
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
