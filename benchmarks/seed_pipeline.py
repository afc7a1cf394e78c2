"""The seeds' original training pipeline, rebuilt faithfully to time it against the fast path.

EPFL CS-461 exercise 2 (``../shared/seeds/epfl-cs461-exercise2-ssl.md``) trains each method
with the loop below; `time_to_accuracy.py --seed-pipeline` runs it for a few epochs on the same
device as `helpers.train.fit`, so the speed-up is a ratio of two measurements from one run.

What is kept from the seed, deliberately, including what the bundle fixes elsewhere:

- **data**: a map-style dataset that hands out PIL images, as ``torchvision.datasets.CIFAR10``
  does, with the seed's per-image ``SimCLRTransform`` (torchvision ``transforms.v2`` ops on
  PIL, ``ToTensor`` last) making two views per image in ``num_workers=10`` DataLoader
  workers, batch 256, ``pin_memory=True``, the seed's collate function, and no
  ``shuffle=True`` (seed erratum 3; it does not change the cost of an epoch);
- **training**: float32 (no autocast, no channels_last), the methods' step called once per
  batch with a host-device synchronisation per step (``loss.item()``), ``AdamW`` at the
  seed's learning rates (SimCLR 0.6 with the seed's per-epoch warmup + cosine ``LambdaLR``;
  BYOL and Barlow Twins 0.5, weight decay 1e-6, no schedule; seed erratum 4: these do not
  converge well, which does not matter for timing), BYOL's EMA with beta 0.99, Barlow Twins'
  ``proj_dim=128`` and alpha 0.005;
- **evaluation after every epoch**: all 50,000 + 10,000 un-augmented images encoded through
  a second DataLoader (``ToTensor`` per image, batch 256, 10 workers; 2 for Barlow Twins),
  L2-normalised features, and scikit-learn's k-NN (k = 5) on the CPU.

The models, steps, feature extraction and k-NN probe are not re-implemented here: they are
the solution notebook's own graded code (``SimCLRModel``, ``simclr_train_step``, ...,
``extract_features_and_labels``, ``run_knn_probe``), passed in as `reference` (see
`time_to_accuracy.load_reference_code`). Where the solution differs from the seed's inline
code the difference is immaterial to timing (e.g. BYOL forwards the two views separately
instead of concatenated; ``run_knn_probe`` uses scikit-learn's default ``n_jobs``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2 as T

from helpers.data import two_view_collate

__all__ = ["SEED_SETTINGS", "SeedSettings", "SeedTwoViewTransform", "SeedCIFAR10", "run_seed_pipeline", "steady_mean"]


@dataclass(frozen=True)
class SeedSettings:
    """One method's settings in the seed (EPFL exercise 2), as written there.

    Attributes:
        method: "simclr", "byol" or "barlow".
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_epochs: the LambdaLR warmup of SimCLR; None: no schedule (BYOL, Barlow Twins).
        total_epochs: the epochs the seed trains for (sets SimCLR's cosine length).
        batch_size: images per step (two views each).
        num_workers: DataLoader workers of the training loader.
        eval_num_workers: DataLoader workers of the un-augmented evaluation loaders.
        proj_dim: output dimension of the projection head.
        temperature: NT-Xent tau (SimCLR).
        ema_beta: target EMA decay (BYOL).
        alpha: redundancy-reduction weight (Barlow Twins).
    """

    method: str
    lr: float
    weight_decay: float
    warmup_epochs: int | None = None
    total_epochs: int = 50
    batch_size: int = 256
    num_workers: int = 10
    eval_num_workers: int = 10
    proj_dim: int = 128
    temperature: float = 0.5
    ema_beta: float = 0.99
    alpha: float = 0.005

    def to_dict(self) -> dict:
        return asdict(self)


SEED_SETTINGS: dict[str, SeedSettings] = {
    "simclr": SeedSettings("simclr", lr=0.6, weight_decay=0.0, warmup_epochs=10),
    "byol": SeedSettings("byol", lr=0.5, weight_decay=1e-6),
    "barlow": SeedSettings("barlow", lr=0.5, weight_decay=1e-6, eval_num_workers=2),
}


def _to_tensor():
    """The seed's ``T.ToTensor()`` (deprecated in torchvision, still there; silenced here)."""
    if hasattr(T, "ToTensor"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return T.ToTensor()
    return T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True)])  # its documented equivalent


class SeedTwoViewTransform:
    """The seed's ``SimCLRTransform`` (also its ``BYOLTransform`` / ``BarlowTwinsTransform``),
    unchanged: per-image v2 ops on a PIL image, two independent views.

    Call with a PIL image; returns two float32 tensors, Shape: (3, size, size), in [0, 1].
    """

    def __init__(self, size: int = 32, s: float = 0.5, blur_p: float = 0.5) -> None:
        color_jitter = T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
        k = 3 if size <= 32 else 5
        base = [
            T.RandomResizedCrop(size=size, scale=(0.2, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomApply([color_jitter], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(kernel_size=k, sigma=(0.1, 2.0))], p=blur_p),
            _to_tensor(),
        ]
        self.train_transform = T.Compose(base)

    def __call__(self, x):
        with warnings.catch_warnings():  # ToTensor's deprecation warning, once per call otherwise
            warnings.simplefilter("ignore", UserWarning)
            return self.train_transform(x), self.train_transform(x)


class _DefaultTransform:
    """The seed's ``default_transform = T.Compose([T.ToTensor()])`` (PIL -> float (3, H, W))."""

    def __init__(self) -> None:
        self.transform = T.Compose([_to_tensor()])

    def __call__(self, x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return self.transform(x)


class SeedCIFAR10(Dataset):
    """CIFAR-10 as ``torchvision.datasets.CIFAR10`` serves it: a NumPy uint8 array, one PIL
    image per item (``Image.fromarray``), then the transform.

    Args:
        images: Shape: (N, H, W, 3) uint8 tensor (as `helpers.data.load_cifar10` returns).
        labels: Shape: (N,) int64.
        transform: PIL image -> anything.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        self.data = np.ascontiguousarray(images.cpu().numpy())  # (N, H, W, 3) uint8, like CIFAR10.data
        self.targets = [int(y) for y in labels.tolist()]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], self.targets[index]
        img = Image.fromarray(img)
        return self.transform(img), target


def steady_mean(values: list[float]) -> float | None:
    """Mean of per-epoch times without the first epoch (start-up: workers, cuDNN autotuning,
    allocator warm-up), or the only value when there is one; None for an empty list."""
    if not values:
        return None
    tail = values[1:] if len(values) > 1 else values
    return float(sum(tail) / len(tail))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(reference: Mapping[str, Any], settings: SeedSettings, device: torch.device):
    """The seed's models, optimiser and per-batch step for one method (reference = solution code)."""
    scheduler = None
    if settings.method == "simclr":
        model = reference["SimCLRModel"](proj_dim=settings.proj_dim).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        total, warmup = settings.total_epochs, settings.warmup_epochs

        def lr_lambda(epoch):  # the seed's schedule, stepped once per epoch
            if epoch < warmup:
                return (epoch + 1) / float(warmup)
            t = (epoch - warmup) / float(total - warmup)
            return 0.0 + 0.5 * (1 - 0.0) * (1 + math.cos(math.pi * t))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)

        def step(x1, x2):
            return reference["simclr_train_step"](model, x1, x2, optimizer, tau=settings.temperature)

        return model, optimizer, scheduler, step
    if settings.method == "byol":
        online = reference["BYOLModel"](proj_dim=settings.proj_dim).to(device)
        target = reference["BYOLModel"](proj_dim=settings.proj_dim).to(device)
        target.load_state_dict(online.state_dict())  # the seed copies the online weights
        for param in target.parameters():
            param.requires_grad = False
        ema = reference["EMA"](beta=settings.ema_beta)
        optimizer = torch.optim.AdamW(online.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

        def step(x1, x2):
            return reference["byol_train_step"](online, target, ema, optimizer, x1, x2)

        return online, optimizer, scheduler, step
    if settings.method == "barlow":
        model = reference["BarlowTwinsModel"](proj_dim=settings.proj_dim).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

        def step(x1, x2):
            return reference["barlow_train_step"](model, x1, x2, optimizer, alpha=settings.alpha)

        return model, optimizer, scheduler, step
    raise ValueError(f"unknown method {settings.method!r}; expected one of {sorted(SEED_SETTINGS)}")


def run_seed_pipeline(
    reference: Mapping[str, Any],
    method: str,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    epochs: int = 3,
    device: torch.device | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    budget_seconds: float | None = None,
    seed: int = 0,
    progress: bool = True,
    say: Callable[..., None] = print,
) -> dict[str, Any]:
    """Train `method` the seed's way for `epochs` epochs and time every part.

    Args:
        reference: the solution notebook's definitions (name -> object): ``SimCLRModel``,
            ``simclr_train_step``, ``BYOLModel``, ``EMA``, ``byol_train_step``,
            ``BarlowTwinsModel``, ``barlow_train_step``, ``extract_features_and_labels``,
            ``run_knn_probe``.
        method: "simclr", "byol" or "barlow".
        train_images, test_images: Shape: (N, H, W, 3) uint8.
        train_labels, test_labels: Shape: (N,) int64.
        epochs: epochs to time (a few are enough: every epoch costs the same).
        device: where the model trains (default: CUDA if available, else the CPU).
        overrides: replace `SeedSettings` fields (e.g. ``num_workers=0`` for a smoke run).
        budget_seconds: stop before an epoch that would end after this many seconds (at least
            one epoch always runs).
        seed: seeds torch before the models are built.
        progress: tqdm bars over the batches, as in the seed.
        say: where the per-epoch lines go.

    Returns:
        A dict: ``settings`` (the seed's, as run), ``epochs`` (one dict per epoch: loss,
        k-NN accuracy, train / eval / total seconds), the steady-state means
        ``seconds_per_epoch``, ``train_seconds_per_epoch``, ``eval_seconds_per_epoch``
        (first epoch excluded when there are several), and ``stopped_early``.
    """
    from tqdm.auto import tqdm

    if method not in SEED_SETTINGS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(SEED_SETTINGS)}")
    settings = replace(SEED_SETTINGS[method], **dict(overrides or {}))
    device = (
        torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    size = int(train_images.shape[1])
    pin_memory = device.type == "cuda"  # the seed's pin_memory=True (a no-op warning on the CPU)

    train_ds = SeedCIFAR10(train_images, train_labels, SeedTwoViewTransform(size=size))
    train_loader = DataLoader(
        train_ds,
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        pin_memory=pin_memory,
        collate_fn=two_view_collate,
    )  # no shuffle: as in the seed
    default_transform = _DefaultTransform()

    def loader_noaugment(images, labels):  # the seed's two evaluation loaders, alike but for the split
        return DataLoader(
            SeedCIFAR10(images, labels, default_transform),
            batch_size=settings.batch_size,
            shuffle=False,
            num_workers=settings.eval_num_workers,
            pin_memory=pin_memory,
        )

    train_loader_noaugment = loader_noaugment(train_images, train_labels)
    test_loader_noaugment = loader_noaugment(test_images, test_labels)

    torch.manual_seed(seed)
    model, optimizer, scheduler, step = _build(reference, settings, device)
    extract = reference["extract_features_and_labels"]
    knn_probe = reference["run_knn_probe"]

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    stopped_early = False
    for epoch in range(epochs):
        if rows and budget_seconds is not None:
            elapsed = time.perf_counter() - started
            if elapsed + rows[-1]["seconds"] * 1.1 > budget_seconds:
                say(f"seed pipeline: stopping after {len(rows)} epoch(s); another would exceed the time budget")
                stopped_early = True
                break
        _synchronize(device)
        epoch_start = time.perf_counter()
        model.train()
        avg_loss = 0.0
        for x1, x2, _ in tqdm(train_loader, disable=not progress, leave=False, desc=f"seed epoch {epoch + 1}"):
            x1, x2 = x1.to(device), x2.to(device)
            avg_loss += float(step(x1, x2))
        if scheduler is not None:
            scheduler.step()
        _synchronize(device)
        train_end = time.perf_counter()
        model.eval()
        train_features, train_targets = extract(model, train_loader_noaugment, normalize=True)
        test_features, test_targets = extract(model, test_loader_noaugment, normalize=True)
        accuracy = float(knn_probe(train_features, train_targets, test_features, test_targets))
        _synchronize(device)
        end = time.perf_counter()
        row = {
            "epoch": epoch + 1,
            "loss": avg_loss / max(1, len(train_loader)),
            "knn_accuracy": accuracy,
            "train_seconds": train_end - epoch_start,
            "eval_seconds": end - train_end,
            "seconds": end - epoch_start,
        }
        rows.append(row)
        say(
            f"seed pipeline {method} epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f}, k-NN (k=5) "
            f"{100 * accuracy:.1f} %, train {row['train_seconds']:.1f} s + k-NN eval {row['eval_seconds']:.1f} s"
        )
    return {
        "settings": settings.to_dict(),
        "source": "../shared/seeds/epfl-cs461-exercise2-ssl.md",
        "device": str(device),
        "image_size": size,
        "train_images": int(train_images.shape[0]),
        "test_images": int(test_images.shape[0]),
        "epochs": rows,
        "seconds_per_epoch": steady_mean([r["seconds"] for r in rows]),
        "train_seconds_per_epoch": steady_mean([r["train_seconds"] for r in rows]),
        "eval_seconds_per_epoch": steady_mean([r["eval_seconds"] for r in rows]),
        "stopped_early": stopped_early,
    }
