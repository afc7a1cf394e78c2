"""`load_cifar10`: one split from the first source available, optionally a class-balanced subset.

The torchvision release is read (or downloaded) with torchvision; a local copy goes through
`helpers.data.local_files`; ``synthetic=True`` gives the small generated stand-in, always
with a warning that it is not CIFAR-10.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from helpers.data.local_files import _load_local_split
from helpers.data.sources import (
    _HOW_TO_GET_DATA,
    _TORCHVISION_FOLDER,
    CIFAR10_CLASSES,
    ENV_SOURCE,
    IMAGE_SIZE,
    SPLITS,
    SYNTHETIC_SIZES,
    DataSourceError,
    _check_split,
    _locate_split,
    _resolve_source,
)
from helpers.data.subsets import class_balanced_indices


def _load_torchvision(root: Path, split: str, download: bool, origin: str) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision.datasets

    try:
        dataset = torchvision.datasets.CIFAR10(root, train=split == "train", download=download)
    except Exception as error:  # no network, no files, corrupt download: say what to do
        if origin == "default":
            tried = (
                f"No local source was given (source=None and ${ENV_SOURCE} unset), and "
                f"torchvision could not {'download' if download else 'find'} CIFAR-10 in {root} "
                f"(download={download}): {type(error).__name__}: {error}"
            )
        else:
            tried = (
                f"torchvision could not read CIFAR-10 from {root / _TORCHVISION_FOLDER} "
                f"(given by {origin}): {type(error).__name__}: {error}"
            )
        raise DataSourceError(f"{tried}\n{_HOW_TO_GET_DATA}") from error
    images = torch.as_tensor(np.ascontiguousarray(dataset.data), dtype=torch.uint8)  # (N, 32, 32, 3)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)  # (N,)
    if tuple(getattr(dataset, "classes", CIFAR10_CLASSES)) != CIFAR10_CLASSES:
        raise DataSourceError(f"torchvision's classes {dataset.classes} are not CIFAR-10's {CIFAR10_CLASSES}.")
    return images, labels


@functools.lru_cache(maxsize=2)
def _synthetic_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic, learnable stand-in: one shape and colour family per class.

    Shape: images (N, 32, 32, 3) uint8, labels (N,) int64, N = SYNTHETIC_SIZES[split],
    classes interleaved (label = index % 10). Shapes are drawn at random positions and
    scales in a colour partly set by the class on a random dark background, plus pixel noise.
    A k-NN on raw pixels reaches roughly 80 % on the test split (chance: 10 %).
    """
    n = SYNTHETIC_SIZES[split]
    gen = torch.Generator().manual_seed(20_24 + SPLITS.index(split))
    labels = torch.arange(n) % 10  # (N,)
    coords = torch.linspace(-1.0, 1.0, IMAGE_SIZE)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (32, 32) each
    centre = (torch.rand(n, 2, 1, 1, generator=gen) - 0.5) * 0.6  # (N, 2, 1, 1)
    scale = 0.75 + 0.5 * torch.rand(n, 1, 1, generator=gen)  # (N, 1, 1)
    phase = torch.rand(n, 1, 1, generator=gen) * 2 * torch.pi  # (N, 1, 1)
    u = (xx - centre[:, 0]) / scale  # (N, 32, 32)
    v = (yy - centre[:, 1]) / scale  # (N, 32, 32)
    shapes = (  # one per class: (u, v, squared radius, phase) -> foreground mask
        lambda u, v, r2, ph: r2 < 0.36,  # disk
        lambda u, v, r2, ph: torch.maximum(u.abs(), v.abs()) < 0.5,  # square
        lambda u, v, r2, ph: torch.sin(v * 3 * torch.pi + ph) > 0,  # horizontal stripes
        lambda u, v, r2, ph: torch.sin(u * 3 * torch.pi + ph) > 0,  # vertical stripes
        lambda u, v, r2, ph: torch.sin((u + v) * 2 * torch.pi + ph) > 0,  # diagonal stripes
        lambda u, v, r2, ph: torch.sin(u * 2.5 * torch.pi) * torch.sin(v * 2.5 * torch.pi) > 0,  # checkerboard
        lambda u, v, r2, ph: (r2 > 0.2) & (r2 < 0.55),  # ring
        lambda u, v, r2, ph: ((u.abs() < 0.18) & (v.abs() < 0.7)) | ((v.abs() < 0.18) & (u.abs() < 0.7)),  # cross
        lambda u, v, r2, ph: (v.abs() < 0.5) & (u.abs() < (v + 0.5) * 0.6),  # triangle
        lambda u, v, r2, ph: u.abs() + v.abs() < 0.6,  # diamond
    )
    mask = torch.empty(n, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)  # (N, 32, 32)
    for label, shape in enumerate(shapes):
        rows = labels == label
        mask[rows] = shape(u[rows], v[rows], u[rows] ** 2 + v[rows] ** 2, phase[rows])
    mask = mask.unsqueeze(-1).float()  # (N, 32, 32, 1)
    palette = torch.tensor(
        [
            [0.9, 0.2, 0.2],
            [0.2, 0.8, 0.3],
            [0.2, 0.4, 0.9],
            [0.9, 0.8, 0.2],
            [0.8, 0.3, 0.8],
            [0.2, 0.8, 0.8],
            [0.95, 0.55, 0.1],
            [0.6, 0.9, 0.6],
            [0.9, 0.9, 0.9],
            [0.5, 0.3, 0.15],
        ]
    )  # (10, 3)
    # Colour is only a partial cue (as in CIFAR-10): 40 % class colour, 60 % random colour.
    foreground = 0.4 * palette[labels] + 0.6 * torch.rand(n, 3, generator=gen)  # (N, 3)
    foreground = foreground + 0.1 * torch.randn(n, 3, generator=gen)
    background = 0.35 * torch.rand(n, 3, generator=gen)  # (N, 3)
    images = background[:, None, None] * (1 - mask) + foreground[:, None, None] * mask  # (N, 32, 32, 3)
    images = images + 0.06 * torch.randn(images.shape, generator=gen)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels.to(torch.int64)


def load_cifar10(
    split: str = "train",
    source: str | os.PathLike | None = None,
    root: str | os.PathLike = "data",
    download: bool = True,
    synthetic: bool = False,
    limit: int | None = None,
    verbose: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one CIFAR-10 split (Krizhevsky, 2009) as uint8 tensors.

    Sources, in order (see the module docstring for the accepted layouts): `synthetic` /
    ``$SSL_LAB_SYNTHETIC``, `source`, ``$SSL_LAB_CIFAR10``, torchvision's download into
    `root`; otherwise a `DataSourceError` saying how to get the data.

    Args:
        split: "train" (50,000 images) or "test" (10,000).
        source: a local copy: a folder (``train/<class>/*``, ``test/<class>/*``, possibly one
            folder down), a folder holding ``train.tar.gz``/``test.tar.gz``, a ``.tar.gz``
            itself, or a folder holding torchvision's ``cifar-10-batches-py``.
        root: where torchvision downloads to and where decoded splits are cached
            (``<root>/cache/``).
        download: let torchvision download CIFAR-10 when it is not in `root` yet.
        synthetic: use the small synthetic stand-in (NOT CIFAR-10; warns).
        limit: keep a class-balanced subset of `limit` images: the first ``limit // 10`` of
            each class in the split's order, one more for the first ``limit % 10`` classes
            (round-robin over the classes, `class_balanced_indices`),
            returned in the split's order. None keeps everything.
        verbose: print one line saying where the split came from and how many images.

    Returns:
        images: Shape: (N, 32, 32, 3) uint8, HWC, RGB.
        labels: Shape: (N,) int64 in 0..9, indices into `CIFAR10_CLASSES`.

    Raises:
        DataSourceError: no usable source (the message says how to get the data), a source
            with the wrong layout or class names, or an undecodable image.
        ValueError: a bad `split` or `limit`.
    """
    _check_split(split)
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    src = _resolve_source(source, root, synthetic)
    note = ""
    if src.kind == "synthetic":
        warnings.warn(
            f"SSL Lab is using a SYNTHETIC stand-in dataset, not CIFAR-10 ({SYNTHETIC_SIZES[split]:,} "
            f"{split} images of coloured shapes, requested by {src.origin}). Accuracies on it say "
            "nothing about CIFAR-10; use it only for offline demos and tests.",
            UserWarning,
            stacklevel=2,
        )
        images, labels = (t.clone() for t in _synthetic_split(split))  # callers may edit theirs
        description = src.describe()
    else:
        location = _locate_split(src, split)
        if location.kind == "torchvision":
            images, labels = _load_torchvision(location.path, split, download and src.origin == "default", src.origin)
            description = src.describe()
        else:
            description = location.describe() + ("" if src.origin == "source=" else f" (from {src.origin})")
            images, labels, note = _load_local_split(location, split, root, description)
    total = len(labels)
    if limit is not None and limit < total:
        keep = class_balanced_indices(labels, int(limit))
        images, labels = images[keep].contiguous(), labels[keep].contiguous()
        count = f"{len(labels):,} of {total:,} images (limit={limit}, class-balanced)"
    else:
        count = f"{total:,} images"
    if verbose:
        print(f"CIFAR-10 {split}: {count} from {description}{note}")
    return images, labels
