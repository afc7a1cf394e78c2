"""The training state: what `helpers.train.fit` saves after an epoch so that a run can resume.

In `helpers`, "training state" is this file and nothing else; a "checkpoint" is the graded
classifier file (`simclr_lin_best.pt`, `helpers.checkpoint`, DESIGN.md's name). fit's keyword
keeps its name: ``fit(..., checkpoint="checkpoints/simclr.pt")`` says where the training state
goes.

The file (written atomically after every epoch -- or, with ``checkpoint_minutes=M``, after the
first epoch that ends M minutes after the last write, after the last epoch and whenever
``stop_after_epoch`` ends a run early -- loadable with ``torch.load(weights_only=True)``)
holds the model, the optimiser, `extra_state`, the loss scaler, the base learning rates, the
history, the number of finished epochs, the run's configuration and the global RNG states
(restored on loading, so the cells after `fit` behave the same whether it trained or
loaded). When it exists and ``resume=True``:

- it covers `epochs` (or more): it is loaded and its history returned, nothing trains;
- it covers fewer epochs: training continues after the last finished one. A larger
  `epochs` than the saved run's (or another warmup/schedule) is accepted with a note:
  the learning-rate schedule of the remaining epochs is recomputed for the new length;
- it was written with another batch size, seed, `views` or number of images (or in smoke
  mode for a full run): `TrainingStateError`, saying how to start over (``resume=False``)
  or where else to write. Smoke runs write ``<name>.smoke<ext>`` (`smoke_path`) so they never
  meet a real run's file.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.files import UnexpectedFile, read_tagged, write_atomically
from helpers.history import History

__all__ = [
    "TRAINING_STATE_FORMAT",
    "TRAINING_STATE_VERSION",
    "TrainingStateError",
    "Restored",
    "restore_training_state",
    "save_training_state",
    "smoke_path",
]

#: Value of the "format" entry of a training-state file.
TRAINING_STATE_FORMAT = "ssl-lab-training-state"
#: The version this module writes and reads.
TRAINING_STATE_VERSION = 1
# A resumed run must agree with the saved one on these, or the result would be a mix of two
# different trainings (other differences -- epochs, schedule -- are announced and accepted).
_STRICT_CONFIG = ("batch_size", "seed", "views", "num_images")


class TrainingStateError(ValueError):
    """A training-state file that cannot be resumed; the message says what to do."""


def _rng_state() -> dict[str, Any]:
    """Every global RNG's state in types `torch.load(weights_only=True)` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    cuda_states = list(state.get("cuda", []))
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )


def _save_atomically(payload: dict, path: Path) -> None:
    """torch.save through `helpers.files.write_atomically`: a reader (or a run resumed after a
    crash) sees either the old complete file or the new complete file."""
    write_atomically(path, lambda file: torch.save(payload, file))


def save_training_state(
    path: Path,
    *,
    config: Mapping[str, Any],
    finished_epochs: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra_state: Mapping[str, Any],
    scaler: Any,
    base_lrs: list[float],
    history: History,
) -> None:
    """Write the training state of a run after `finished_epochs` epochs to `path`, atomically.

    Args:
        config: fit's configuration of the run (checked by `restore_training_state`).
        extra_state: name -> object with ``state_dict()`` (BYOL's target network, ...).
        scaler: the `helpers.precision.DynamicLossScaler`, or None.
        base_lrs: every parameter group's base learning rate (before the schedule).
    """
    _save_atomically(
        {
            "format": TRAINING_STATE_FORMAT,
            "version": TRAINING_STATE_VERSION,
            "config": dict(config),
            "finished_epochs": int(finished_epochs),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "extra_state": {name: obj.state_dict() for name, obj in extra_state.items()},
            "loss_scaler": scaler.state_dict() if scaler is not None else None,
            "base_lrs": list(base_lrs),
            "history": history.to_dict(),
            "rng": _rng_state(),
        },
        path,
    )


#: What a training checkpoint that `_read` cannot use asks of the student, by `UnexpectedFile.reason`.
_WAY_OUT = {
    "unreadable": "Delete the file (or pass resume=False to overwrite it) to train from scratch.",
    "format": "Pass another checkpoint= path, or resume=False to overwrite it.",
    "version": "Pass resume=False to start over.",
}


def _read(path: Path) -> dict:
    try:
        state = read_tagged(
            path, TRAINING_STATE_FORMAT, TRAINING_STATE_VERSION, "training checkpoint of helpers.train.fit"
        )
    except UnexpectedFile as error:
        raise TrainingStateError(f"{error}.\n{_WAY_OUT[error.reason]}") from None
    return state


def _check_config(saved: Mapping[str, Any], current: Mapping[str, Any], path: Path) -> list[str]:
    """Raise on differences that make resuming meaningless; return notes on acceptable ones."""
    if bool(saved.get("smoke")) != bool(current["smoke"]):
        raise TrainingStateError(
            f"{path} was written by a {'smoke' if saved.get('smoke') else 'full'} run and this is a "
            f"{'smoke' if current['smoke'] else 'full'} run. Use another checkpoint= path or resume=False."
        )
    different = [
        f"{key}={saved.get(key)!r} there, {current[key]!r} now"
        for key in _STRICT_CONFIG
        if saved.get(key) != current[key]
    ]
    if different:
        raise TrainingStateError(
            f"the checkpoint {path} was written by a different training run ({'; '.join(different)}); "
            "resuming it would mix two runs. Either call fit with the checkpoint's settings, pass "
            "resume=False to start over (the file is overwritten after the first epoch), or pass "
            "another checkpoint= path."
        )
    notes = []
    for key in ("warmup_epochs", "schedule", "min_lr_ratio"):
        if saved.get(key) != current[key]:
            notes.append(f"{key} was {saved.get(key)!r}, is now {current[key]!r}")
    return notes


@dataclass
class Restored:
    """What `restore_training_state` brought back besides the objects it loaded in place.

    Attributes:
        history: the saved run's `History`.
        finished_epochs: epochs the saved run finished.
        notes: accepted differences between the saved run's configuration and this one's
            (another number of epochs, warmup, schedule), as phrases for a message.
    """

    history: History
    finished_epochs: int
    notes: list[str]


def restore_training_state(
    path: Path,
    *,
    config: Mapping[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra_state: Mapping[str, Any],
    scaler: Any,
) -> Restored:
    """Load the training state at `path` into `model`, `optimizer`, `extra_state` and `scaler`.

    Also sets every parameter group's ``initial_lr`` to the saved base learning rate and every
    global RNG to its saved state.

    Raises:
        TrainingStateError: the file is unreadable, not a training state, from a different run
            (`config` disagrees on batch size, seed, views, number of images or smoke mode), or
            does not fit the model, optimiser or `extra_state`.
    """
    state = _read(path)
    notes = _check_config(state["config"], config, path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for name, obj in extra_state.items():
            if name not in state["extra_state"]:
                saved = sorted(state["extra_state"])
                raise KeyError(f"extra_state {name!r} is not in the checkpoint (it has {saved})")
            obj.load_state_dict(state["extra_state"][name])
    except (RuntimeError, KeyError, ValueError) as error:
        raise TrainingStateError(
            f"the checkpoint {path} does not fit this model/optimizer: {str(error)[:500]}\n"
            "Was it written for another architecture? Pass another checkpoint= path, or resume=False."
        ) from error
    for group, base_lr in zip(optimizer.param_groups, state["base_lrs"]):
        group["initial_lr"] = base_lr
    if scaler is not None and state.get("loss_scaler"):
        scaler.load_state_dict(state["loss_scaler"])
    _set_rng_state(state["rng"])
    if state["config"]["epochs"] != config["epochs"]:
        notes.append(f"epochs was {state['config']['epochs']}, is now {config['epochs']}")
    return Restored(History.from_dict(state["history"]), int(state["finished_epochs"]), notes)


def smoke_path(path: Path) -> Path:
    """checkpoints/simclr.pt -> checkpoints/simclr.smoke.pt: smoke runs never touch real ones."""
    return path.with_name(f"{path.stem}.smoke{path.suffix}")
