"""Class-balanced subsets: the deterministic, nested subsets that `load_cifar10(limit=...)`, the
k-NN monitor and the smoke mode of `fit` take."""

from __future__ import annotations

import torch


def class_balanced_indices(labels: torch.Tensor | None, n: int, size: int | None = None) -> torch.Tensor:
    """Indices of a deterministic, class-balanced subset of `n` items, in their original order.

    Takes the items round-robin over the classes: every class's first item, then every
    class's second, ... So with C classes each gets ``n // C`` items and the first ``n % C``
    classes one more (when a class runs out, the others fill in), a subset is stable from run
    to run, and a smaller subset is always part of a larger one.

    Args:
        labels: Shape: (N,) integer classes, or None (then the first `n` of `size` items).
        n: subset size; at least the whole set is returned when `n >= N`.
        size: number of items when `labels` is None.

    Returns:
        Shape: (min(n, N),) int64 indices, ascending.
    """
    if labels is None:
        if size is None:
            raise ValueError("pass size= when labels is None")
        return torch.arange(min(n, size))
    labels = torch.as_tensor(labels).cpu().long()
    total = labels.shape[0]
    if n >= total:
        return torch.arange(total)
    order = torch.argsort(labels, stable=True)  # grouped by class, original order inside
    sorted_labels = labels[order]
    class_start = torch.searchsorted(sorted_labels, sorted_labels, right=False)  # first slot of its class
    rank = torch.arange(total) - class_start  # position of each item inside its class
    # Sort key (rank, class): all classes' first items, then all second items, ...
    key = rank * (int(labels.max()) + 1 - int(labels.min())) + (sorted_labels - int(labels.min()))
    chosen = order[torch.argsort(key, stable=True)[:n]]
    return torch.sort(chosen).values
