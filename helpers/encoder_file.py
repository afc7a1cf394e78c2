"""The pre-trained encoder file of the homework (``simclr_best_epoch.pt``): the encoder of the
best k-NN epoch of pre-training, which fine-tuning starts from.

Not the graded classifier file (`helpers.checkpoint`), nor fit's training state for resuming
(`helpers.training_state`): a plain dictionary ``{"epoch", "knn_accuracy", "recipe",
"encoder"}`` of tensors and numbers, written atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from helpers.files import write_atomically


def save_encoder(
    path: str | os.PathLike, encoder: nn.Module, *, epoch: int, knn_accuracy: float | None, recipe: dict[str, Any]
) -> None:
    """Write `encoder`'s weights (on the CPU) with the epoch, its k-NN accuracy and the recipe;
    never a half-written file."""
    payload = {
        "epoch": int(epoch),
        "knn_accuracy": knn_accuracy,
        "recipe": dict(recipe),
        "encoder": {name: tensor.detach().cpu() for name, tensor in encoder.state_dict().items()},
    }
    write_atomically(path, lambda file: torch.save(payload, file))


def load_encoder(path: str | os.PathLike, encoder: nn.Module) -> dict[str, Any]:
    """Load the weights saved by `save_encoder` into `encoder`; returns the file's other fields
    (``epoch``, ``knn_accuracy``, ``recipe``)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    encoder.load_state_dict(saved.pop("encoder"))
    return saved
