"""One epoch of batches for `helpers.train.fit`, and the per-epoch seeds that make a run
reproducible and resumable.

At the start of epoch e, fit derives fresh seeds from (seed, e) (`derive_seed`) for the
shuffle, the augmentation and the global RNGs (`seed_global_rngs`: torch, CUDA, Python,
NumPy), so an epoch depends only on the state at its start. `Batches` yields the step's
arguments, by one of two paths:

- **batched** (the fast path, used on CUDA): the uint8 split is copied to the device once;
  every epoch is a permutation drawn from a generator seeded with (seed, epoch); each batch is
  gathered there and augmented there by a batched augmentation of `helpers.augment` (its own
  generator, seeded per epoch);
- **per image** (the CPU default, and whenever `augment` is a per-image transform such as
  `helpers.data.TwoViewTransform`): a `DataLoader` over `helpers.data.CIFAR10Tensors`,
  shuffled by a generator seeded per epoch.
"""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from helpers.augment import BatchTwoViewAugment
from helpers.runtime import available_cpus

__all__ = ["Batches", "auto_num_workers", "derive_seed", "seed_global_rngs"]


def derive_seed(seed: int, epoch: int, stream: str) -> int:
    """A 63-bit seed that depends only on (seed, epoch, stream), the same on every machine."""
    digest = hashlib.sha256(f"ssl-lab/{seed}/{epoch}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def seed_global_rngs(seed: int, epoch: int) -> None:
    """Seed torch (every device), Python's and NumPy's global RNGs for `epoch` of a run."""
    value = derive_seed(seed, epoch, "global")
    torch.manual_seed(value)  # also every CUDA device
    random.seed(value)
    np.random.seed(value % 2**32)


def _is_batched(augment: Any) -> bool:
    """Batched augmentations get whole uint8 batches on the device; others get one image."""
    if augment is None or getattr(augment, "batched", False) is True:
        return True
    return isinstance(augment, BatchTwoViewAugment)


def _accepts_generator(augment: Callable) -> bool:
    target = augment.forward if isinstance(augment, torch.nn.Module) else augment
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "generator" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def auto_num_workers(smoke: bool) -> int:
    cores = available_cpus()
    return 0 if smoke or cores <= 2 else min(8, cores)


class Batches:
    """Yields one epoch's step arguments: (x1, x2) for views=2, (x, y) for views=1."""

    def __init__(
        self, images, labels, *, views, batch_size, drop_last, augment, device, channels_last, seed, num_workers
    ):
        self.views, self.batch_size, self.drop_last = views, batch_size, drop_last
        self.augment, self.device, self.seed = augment, device, seed
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.num_images = images.shape[0]
        self.batched = _is_batched(augment)
        if self.batched:
            self.images = images.to(device)  # (N, H, W, 3) uint8, resident for the whole run
            self.labels = labels.to(device) if labels is not None else None
            if isinstance(augment, torch.nn.Module):
                augment.to(device)
            self.pass_generator = augment is not None and _accepts_generator(augment)
        else:
            from helpers.data import CIFAR10Tensors

            self.dataset = CIFAR10Tensors(images.cpu(), None if labels is None else labels.cpu(), transform=augment)
            self.num_workers = num_workers

    def __len__(self) -> int:
        full, rest = divmod(self.num_images, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def _format(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.batched:
            return self._batched_epoch(epoch)
        return self._loader_epoch(epoch)

    def _batched_epoch(self, epoch: int):
        shuffle = torch.Generator().manual_seed(derive_seed(self.seed, epoch, "shuffle"))
        order = torch.randperm(self.num_images, generator=shuffle).to(self.device)  # (N,)
        generator = None
        if self.augment is not None:
            generator = torch.Generator(device=self.device).manual_seed(derive_seed(self.seed, epoch, "augment"))
        kwargs = {"generator": generator} if self.pass_generator else {}
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]  # (B,)
            batch = self.images[index]  # (B, H, W, 3) uint8
            if self.views == 2:
                x1, x2 = self.augment(batch, **kwargs)  # (B, 3, H, W) float each
                yield self._format(x1), self._format(x2)
            else:
                x = batch.permute(0, 3, 1, 2) if self.augment is None else self.augment(batch, **kwargs)
                yield self._format(x), self.labels[index]  # (B, 3, H, W), (B,)

    def _loader_epoch(self, epoch: int):
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, "shuffle"))
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
            num_workers=self.num_workers,
            drop_last=self.drop_last,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )
        for item, labels in loader:
            if self.views == 2:
                if not (isinstance(item, (tuple, list)) and len(item) == 2):
                    raise TypeError("with views=2 the per-image augment must return two views, e.g. TwoViewTransform()")
                yield self._format(item[0]), self._format(item[1])
            else:
                yield self._format(item), labels.to(self.device, non_blocking=True)
