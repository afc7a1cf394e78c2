"""SSL Lab helpers: everything the notebooks are given.

One module per concern: ``data`` (CIFAR-10, its datasets and loaders), ``augment`` (every
augmentation: the seeds' per image, the same batched on the device, built from
``image_ops``), ``models`` (CIFAR ResNet-18, heads, the linear classifier), ``checkpoint``
(saving and safely loading the graded classifier file, with ``checkpoint_format`` and
``checkpoint_file``), ``encoder_file`` (the homework's pre-trained encoder), ``probes`` (the
k-NN monitor), ``train`` (``fit``, the one training loop, with ``schedule``, ``history``,
``precision``, ``training_state`` for resuming, and ``batches``), ``recipes``
(hyperparameters, fit's configuration and the optimiser), ``plots`` (with ``figures``),
``report``, ``submission`` and ``comparison`` (what given cells print), ``checks`` (public
self-checks), ``runtime`` (seeds, device, CPUs) and ``files`` (atomic writes, tagged files).
``data`` and ``checks`` are packages of a few modules each; import their names from the
package. Nothing in here is the answer to a graded task.

The names below can be imported from ``helpers`` directly; each module but ``data`` and
``runtime`` is imported on first use, so ``import helpers`` stays cheap.
"""

from __future__ import annotations

import importlib

from helpers import data
from helpers.runtime import get_device, set_seed, smoke_mode

_EXPORTS = {
    "data": tuple(data.__all__),  # the package lists its own names (importing it costs ~0.03 s more)
    "augment": ("BatchCropFlip", "BatchTwoViewAugment", "TwoViewTransform"),
    "models": ("LinearClassifier", "cifar_resnet18", "projection_mlp"),
    "checkpoint": ("CheckpointError", "MAX_CHECKPOINT_BYTES", "load_classifier", "save_classifier"),
    "encoder_file": ("load_encoder", "save_encoder"),
    "probes": ("KNNMonitor", "encode_images", "knn_accuracy"),
    "train": ("History", "TrainingCheckpointError", "TrainingStateError", "fit"),
    "recipes": (
        "BARLOW_TWINS",
        "BYOL",
        "LINEAR_EVAL",
        "RECIPES",
        "SIMCLR",
        "BYOLRecipe",
        "BarlowTwinsRecipe",
        "FinetuneRecipe",
        "SimCLRRecipe",
    ),
    "plots": ("plot_comparison", "plot_curves", "plot_embedding", "plot_history", "show_images"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["get_device", "set_seed", "smoke_mode", *sorted(_MODULE_OF)]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"helpers.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
