"""One generic training loop for every method in the bundle; the method supplies only its step.

As in minGPT's ``trainer.py`` ("nothing in this file really has anything to do with GPT"),
`fit` knows nothing about SimCLR, BYOL or Barlow Twins. It owns everything around the step:
shuffling and augmenting the data (on the GPU when there is one), the learning-rate schedule,
mixed precision, the k-NN monitor, progress bars, the training state saved after every
epoch to resume from, and the per-epoch `History`. The step -- the part the students write --
does the forward pass, the loss, ``optimizer.zero_grad()``, ``loss.backward()`` and
``optimizer.step()``.

How the notebooks call it (a recipe of `helpers.recipes` gives the optimiser and the loop's
configuration; the cell adds what is its own)::

    from helpers.probes import KNNMonitor
    from helpers.recipes import BYOL, LINEAR_EVAL, SIMCLR
    from helpers.train import fit

    monitor = KNNMonitor(train_images, train_labels, test_images, test_labels)

    # SimCLR: step(x1, x2) gets two augmented views, Shape: (B, 3, 32, 32) float in [0, 1].
    model = SimCLRModel().to(device)
    optimizer = SIMCLR.optimizer(model.parameters())
    history = fit(lambda x1, x2: simclr_train_step(model, x1, x2, optimizer, tau=SIMCLR.temperature),
                  model, optimizer, train_images,
                  **SIMCLR.fit_kwargs(monitor=monitor, checkpoint="checkpoints/simclr.pt"))

    # BYOL: the target network is not in `model`, so hand it over to be saved along; the
    # recipe's EMA schedule sets the decay per epoch.
    schedule = BYOL.ema_schedule(ema)
    history = fit(lambda x1, x2: byol_train_step(online, target, ema, optimizer, x1, x2),
                  online, optimizer, train_images,
                  **BYOL.fit_kwargs(monitor=monitor, extra_state={"target": target, "ema_beta": schedule},
                                    on_epoch_end=schedule, checkpoint="checkpoints/byol.pt"))

    # Supervised fine-tuning: views=1, step(x, y) returns (loss, number correct); the default
    # augmentation is a random crop (4-pixel padding) and a horizontal flip.
    def keep_best(epoch, history):
        test_loss, test_accuracy = evaluate(classifier, test_loader)
        if test_accuracy > max(history.extra.get("test_accuracy", []) or [0.0]):
            save_classifier(classifier, "simclr_lin_best.pt")
        return {"test_loss": test_loss, "test_accuracy": test_accuracy}

    history = fit(lambda x, y: finetune_train_step(classifier, x, y, optimizer),
                  classifier, optimizer, train_images, train_labels,
                  **LINEAR_EVAL.fit_kwargs(on_epoch_end=keep_best, checkpoint="checkpoints/finetune.pt"))

Running the cell again after it finished loads the saved training state and returns its
history without training (UvA DL tutorial 17's "load if it exists, else train"); running it
after a lost session continues from the last finished epoch.

Data: the uint8 split stays on the device on CUDA, where every batch is gathered and augmented
(`helpers.batches`); losses returned as tensors are summed on the device and read once per
epoch; the progress bar shows a running mean copied to the host without waiting for the GPU.
Nothing in fit's own per-step code synchronises with the device (the step may: the notebooks'
steps return ``loss.item()``, as their task contract says), except fp16 loss scaling, once per
step. On the CPU a `DataLoader` runs a per-image transform.

Reproducibility and resuming: every epoch draws its shuffle, augmentation and global RNG
seeds from (seed, epoch), so an epoch depends only on the state at its start, which the
training state holds exactly: an interrupted and resumed run ends in the same state as an
uninterrupted one -- bit for bit on the CPU (with the same number of threads); on a GPU up to
cuDNN's non-deterministic kernels.

The training state (``checkpoint=path``: model, optimiser, `extra_state`, history, RNG
states ..., written atomically after every epoch or every ``checkpoint_minutes``) and how a
run resumes from it are `helpers.training_state`'s. Mixed precision (bf16 autocast where
supported, else fp16 with loss scaling that works although the step calls
``loss.backward()`` itself) is `helpers.precision`'s; the learning-rate schedule is `helpers.schedule`'s; the per-epoch record, `History`, is
`helpers.history`'s; the augmentations are `helpers.augment`'s.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from helpers.augment import BatchCropFlip, BatchTwoViewAugment
from helpers.batches import Batches, auto_num_workers, seed_global_rngs
from helpers.history import History
from helpers.precision import DynamicLossScaler, autocast, resolve_amp
from helpers.probes import class_balanced_indices
from helpers.runtime import get_device, smoke_mode
from helpers.schedule import lr_multiplier
from helpers.training_state import (
    TrainingStateError,
    restore_training_state,
    save_training_state,
    smoke_path,
)

__all__ = [
    "History",
    "fit",
    "lr_multiplier",
    "DynamicLossScaler",
    "BatchCropFlip",
    "TrainingStateError",
    "TrainingCheckpointError",
    "SMOKE_IMAGES",
    "SMOKE_BATCH_SIZE",
]

#: The earlier name of `TrainingStateError`, kept so that code written against it still runs.
TrainingCheckpointError = TrainingStateError

#: Smoke mode (env SSL_LAB_SMOKE): images trained on, largest batch size, monitor subsets.
SMOKE_IMAGES = 256
SMOKE_BATCH_SIZE = 64
SMOKE_MONITOR_TRAIN = 256
SMOKE_MONITOR_TEST = 128


# ======================================================================================
# fit
# ======================================================================================


def _module_device(module: torch.nn.Module) -> torch.device | None:
    for tensor in module.parameters():
        return tensor.device
    return None


def _as_float(value) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


class _Mean:
    """Sums Python floats on the host and tensors on their device (no sync until `total`)."""

    def __init__(self) -> None:
        self.host = 0.0
        self.count = 0
        self.device_sum: torch.Tensor | None = None
        self._copy: tuple[torch.Tensor, int, Any] | None = None  # (pinned buffer, count, CUDA event)
        self._last: tuple[float, int] | None = None

    def add(self, value) -> None:
        self.count += 1
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(f"the step must return a scalar loss, got a tensor of shape {tuple(value.shape)}")
            value = value.detach().reshape(()).float()
            self.device_sum = value if self.device_sum is None else self.device_sum + value
        else:
            self.host += float(value)

    def total(self) -> float:
        return self.host + (float(self.device_sum.item()) if self.device_sum is not None else 0.0)

    def latest(self) -> tuple[float, int] | None:
        """(sum, count) as of an earlier call, without waiting for the device: for a progress bar.

        On CUDA each call starts a non-blocking copy of the running sum into pinned host memory
        and returns the last copy that has already arrived (None before the first one). Off
        CUDA, or for Python floats, the current values.
        """
        if self.device_sum is None or self.device_sum.device.type != "cuda":
            return self.total(), self.count
        ready = None
        if self._copy is not None and self._copy[2].query():
            ready = (self.host + float(self._copy[0]), self._copy[1])
            self._copy = None
        if self._copy is None:
            buffer = torch.empty((), dtype=torch.float32, pin_memory=True)
            buffer.copy_(self.device_sum, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._copy = (buffer, self.count, event)
        if ready is not None:
            self._last = ready
        return self._last


def fit(
    step: Callable[..., Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    epochs: int,
    batch_size: int = 256,
    views: int = 2,
    augment: Any = "auto",
    warmup_epochs: float = 0,
    schedule: str = "cosine",
    min_lr_ratio: float = 0.0,
    monitor: Callable[[torch.nn.Module], float] | None = None,
    monitor_every: int = 1,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_minutes: float = 0.0,
    resume: bool = True,
    extra_state: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
    amp: bool | str = "auto",
    channels_last: bool | str = "auto",
    compile: bool = False,
    smoke: bool | None = None,
    seed: int = 0,
    num_workers: int | str = "auto",
    drop_last: bool | None = None,
    on_epoch_end: Callable[[int, History], Mapping[str, float] | None] | None = None,
    stop_after_epoch: Callable[[int, History], bool] | None = None,
    progress: bool = True,
    verbose: bool = True,
) -> History:
    """Train `model` for `epochs` epochs by calling `step` on every batch; return the `History`.

    Args:
        step: one optimisation step. ``views=2``: ``step(x1, x2)`` with two augmented views,
            Shape: (B, 3, 32, 32) float32 in [0, 1] each. ``views=1``: ``step(x, y)`` with images
            (B, 3, 32, 32) and labels (B,) int64. Returns the loss (Python float or 0-d tensor),
            or ``(loss, n_correct)`` to have the training accuracy recorded. The step zeroes the
            gradients, calls ``backward()`` and ``optimizer.step()`` itself.
        model: the network the step trains (its state is checkpointed; the monitor gets it).
        optimizer: the step's optimiser; fit sets every group's ``lr`` before each step.
        images: Shape: (N, 32, 32, 3) uint8, e.g. from `helpers.data.load_cifar10`.
        labels: Shape: (N,) int64; required for ``views=1``, optional otherwise (smoke mode uses
            them for a class-balanced subset).
        epochs: total number of epochs (a resumed run continues up to this number).
        batch_size: images per step.
        views: 2 for self-supervised training, 1 for supervised training.
        augment: "auto" -- views=2: `BatchTwoViewAugment()` on CUDA, `TwoViewTransform()` on the
            CPU; views=1: `BatchCropFlip()` (pad 4, random crop, flip). None (views=1 only):
            plain images. Or your own: a *batched* augmentation (a `BatchTwoViewAugment`, or any
            callable with ``batched = True``) is called on the device with a uint8 batch
            (B, 32, 32, 3) and ``generator=``; anything else is a per-image transform of one
            uint8 (3, 32, 32) image, run in a `DataLoader`.
        warmup_epochs: epochs of linear warmup (fractions allowed).
        schedule: "cosine" (to ``min_lr_ratio * base_lr``), "constant", or "none" (fit leaves
            the learning rates alone, e.g. for your own LR scheduler stepped in on_epoch_end).
        min_lr_ratio: final learning rate of the cosine as a fraction of the base learning rate.
        monitor: ``monitor(model) -> float``, e.g. a `helpers.probes.KNNMonitor`; run every
            `monitor_every` epochs and after the last one.
        monitor_every: see `monitor`.
        checkpoint: path of the training state (`helpers.training_state`), written atomically
            after every epoch (see `checkpoint_minutes`).
        checkpoint_minutes: 0 (default): write the checkpoint after every epoch. Greater: after
            an epoch only when at least this many minutes passed since the last write (or the
            start), and always after the last epoch and when `stop_after_epoch` stops the run.
            Writing ResNet-18's state takes a fraction of a second, which matters when epochs
            last a few seconds on a fast GPU; a crash then loses at most this many minutes.
        resume: continue from `checkpoint` when it exists. If it already covers `epochs`, fit
            loads it and returns its history without training. False: start over and overwrite.
        extra_state: name -> object with ``state_dict()``/``load_state_dict()`` to checkpoint
            along (BYOL's target network, an LR scheduler, an EMA with state ...).
        device: where to train; default: the model's device.
        amp: "auto": bf16 autocast on CUDA where supported, else fp16 autocast with dynamic loss
            scaling (`DynamicLossScaler`); off on the CPU. "bf16"/"fp16" force one; False: fp32.
        channels_last: "auto": channels_last model and batches on CUDA.
        compile: ``model.compile()`` (in place, CUDA only) before training.
        smoke: tiny run (SMOKE_IMAGES class-balanced images, 1 epoch, batch <= 64, small monitor
            subsets, checkpoint ``<name>.smoke<ext>``); default: `helpers.runtime.smoke_mode()`.
        seed: base of the per-epoch seeds (shuffle, augmentation, global RNGs).
        num_workers: DataLoader workers of the per-image path; "auto": 0 on <= 2 cores or in
            smoke mode, else min(8, cores).
        drop_last: drop the last incomplete batch; default True for views=2 (contrastive
            losses depend on the batch size), False for views=1.
        on_epoch_end: ``on_epoch_end(epoch, history)`` after each epoch (1-based `epoch`;
            `history` already holds that epoch's loss/monitor); a returned dict of numbers is
            recorded in ``history.extra``, before the checkpoint is written.
        stop_after_epoch: ``stop_after_epoch(epoch, history) -> bool`` after each epoch (after
            `on_epoch_end`); True ends training there: the checkpoint of that epoch is written
            (whatever `checkpoint_minutes` says) and the history returned, shorter than
            `epochs`. A later call with the same checkpoint continues from it. Used to stop
            within a time budget.
        progress: show a tqdm bar per epoch.
        verbose: print one summary line per epoch (and what fit decided).

    Returns:
        The `History` of all finished epochs (including those of a resumed checkpoint); fewer
        than `epochs` only when `stop_after_epoch` stopped the run.

    Raises:
        TrainingStateError: the training state is unreadable or from a different run
            (batch size, seed, views or number of images differ).
    """
    say = print if verbose else (lambda *args, **kwargs: None)
    if views not in (1, 2):
        raise ValueError(f"views must be 2 (self-supervised, step(x1, x2)) or 1 (supervised, step(x, y)), got {views}")
    if schedule not in ("cosine", "constant", "none"):
        raise ValueError(f"schedule must be 'cosine', 'constant' or 'none', got {schedule!r}")
    if epochs < 1 or batch_size < 1 or monitor_every < 1 or warmup_epochs < 0:
        raise ValueError("need epochs >= 1, batch_size >= 1, monitor_every >= 1 and warmup_epochs >= 0")
    if not checkpoint_minutes >= 0:
        raise ValueError(f"checkpoint_minutes must be >= 0 (0: after every epoch), got {checkpoint_minutes}")
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise ValueError(
            "images must be uint8 of shape (N, H, W, 3) as load_cifar10 returns, got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    if labels is not None:
        labels = torch.as_tensor(labels).long()
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    elif views == 1:
        raise ValueError("views=1 (supervised) needs labels: fit(step, model, optimizer, images, labels, views=1, ...)")

    # ---------------------------------------------------------------- smoke mode
    smoke = smoke_mode() if smoke is None else bool(smoke)
    checkpoint_path = Path(checkpoint) if checkpoint is not None else None
    if smoke:
        keep = class_balanced_indices(labels, SMOKE_IMAGES, size=images.shape[0])
        images = images[keep]
        labels = labels[keep] if labels is not None else None
        epochs, batch_size = 1, min(batch_size, SMOKE_BATCH_SIZE, images.shape[0])
        if monitor is not None and hasattr(monitor, "subset"):
            monitor = monitor.subset(max_train=SMOKE_MONITOR_TRAIN, max_test=SMOKE_MONITOR_TEST)
        if checkpoint_path is not None:
            checkpoint_path = smoke_path(checkpoint_path)
        where = f", checkpoint {checkpoint_path}" if checkpoint_path else ""
        say(
            f"Smoke mode is on (SSL_LAB_SMOKE): {images.shape[0]} images, 1 epoch, batch size {batch_size}{where}. "
            "Unset SSL_LAB_SMOKE to train for real."
        )

    # ---------------------------------------------------------------- devices, data, precision
    if device is not None:
        device = torch.device(device)
        model.to(device)
        for obj in (extra_state or {}).values():
            if isinstance(obj, torch.nn.Module):
                obj.to(device)
    else:
        device = _module_device(model) or get_device()
    on_cuda = device.type == "cuda"
    if drop_last is None:
        drop_last = views == 2
    num_images = images.shape[0]
    steps_per_epoch = num_images // batch_size if drop_last else math.ceil(num_images / batch_size)
    if steps_per_epoch == 0:
        raise ValueError(
            f"{num_images} images make no full batch of {batch_size}; lower batch_size or pass drop_last=False"
        )
    if isinstance(augment, str) and augment != "auto":
        raise ValueError(f"augment must be 'auto', None or an augmentation object, got {augment!r}")
    if isinstance(augment, str):  # "auto"
        if views == 1:
            augment = BatchCropFlip()
        elif on_cuda:
            augment = BatchTwoViewAugment()
        else:
            from helpers.data import TwoViewTransform

            augment = TwoViewTransform()
    if views == 2 and augment is None:
        raise ValueError("views=2 needs an augmentation that makes two views (augment='auto' or a TwoViewTransform)")
    if num_workers == "auto":
        num_workers = auto_num_workers(smoke)
    amp_dtype = resolve_amp(amp, device)
    use_channels_last = on_cuda if channels_last == "auto" else bool(channels_last)
    extra_state = dict(extra_state or {})
    for name, obj in extra_state.items():
        if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
            raise TypeError(
                f"extra_state[{name!r}] has no state_dict()/load_state_dict(); pass a module or such an object"
            )
    scaler = DynamicLossScaler() if amp_dtype == torch.float16 else None

    for group in optimizer.param_groups:  # base learning rates: captured once, like torch schedulers
        group.setdefault("initial_lr", group["lr"])
    config = {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "views": int(views),
        "num_images": int(num_images),
        "smoke": smoke,
        "warmup_epochs": float(warmup_epochs),
        "schedule": schedule,
        "min_lr_ratio": float(min_lr_ratio),
        "steps_per_epoch": int(steps_per_epoch),
    }

    # ---------------------------------------------------------------- resume
    history = History()
    start_epoch = 0
    if checkpoint_path is not None and resume and checkpoint_path.exists():
        restored = restore_training_state(
            checkpoint_path, config=config, model=model, optimizer=optimizer, extra_state=extra_state, scaler=scaler
        )
        history, start_epoch = restored.history, restored.finished_epochs
        if start_epoch >= epochs:
            say(
                f"Loaded {checkpoint_path}: training already finished ({start_epoch} epochs"
                + (f", {epochs} asked for" if start_epoch != epochs else "")
                + "); nothing to train. "
                "Pass resume=False to train again."
            )
            return history
        say(f"Resuming from {checkpoint_path}: {start_epoch} of {epochs} epochs done.")
        if restored.notes:
            say(
                "  Note: " + "; ".join(restored.notes) + " -- the learning-rate schedule of the remaining epochs is "
                "recomputed, so the result differs from a single uninterrupted run with either setting."
            )

    # ---------------------------------------------------------------- model set-up
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
        for obj in extra_state.values():
            if isinstance(obj, torch.nn.Module):
                obj.to(memory_format=torch.channels_last)
    if compile:
        if on_cuda:
            if getattr(model, "_compiled_call_impl", None) is None:
                model.compile()
        else:
            say("compile=True needs CUDA; training without torch.compile.")
    batches = Batches(
        images,
        labels,
        views=views,
        batch_size=batch_size,
        drop_last=drop_last,
        augment=augment,
        device=device,
        channels_last=use_channels_last,
        seed=seed,
        num_workers=num_workers,
    )
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    total_steps = epochs * steps_per_epoch
    warmup_steps = min(total_steps, round(warmup_epochs * steps_per_epoch))
    monitor_label = getattr(monitor, "label", "monitor")

    from tqdm.auto import tqdm

    scaling = scaler.attached(model, optimizer) if scaler is not None else contextlib.nullcontext()

    def save_state(finished_epochs: int) -> None:
        save_training_state(
            checkpoint_path,
            config=config,
            finished_epochs=finished_epochs,
            model=model,
            optimizer=optimizer,
            extra_state=extra_state,
            scaler=scaler,
            base_lrs=base_lrs,
            history=history,
        )

    epoch = start_epoch
    saved_epochs = start_epoch  # epochs the training-state file holds
    last_write = time.perf_counter()
    try:
        with scaling:
            for epoch in range(start_epoch, epochs):
                started = time.perf_counter()
                seed_global_rngs(seed, epoch)
                model.train()
                losses, correct = _Mean(), _Mean()
                seen, has_accuracy = 0, False
                postfix_every = max(1, steps_per_epoch // 20)
                bar = tqdm(
                    total=steps_per_epoch,
                    desc=f"epoch {epoch + 1}/{epochs}",
                    leave=False,
                    disable=not progress,
                    dynamic_ncols=True,
                )
                try:
                    for i, (a, b) in enumerate(batches.epoch(epoch)):
                        global_step = epoch * steps_per_epoch + i
                        if schedule != "none":
                            factor = lr_multiplier(global_step, total_steps, warmup_steps, schedule, min_lr_ratio)
                            for group, base_lr in zip(optimizer.param_groups, base_lrs):
                                group["lr"] = base_lr * factor
                        with autocast(amp_dtype, device):
                            result = step(a, b)
                        if isinstance(result, (tuple, list)):
                            if len(result) != 2:
                                raise TypeError(
                                    f"the step returned {len(result)} values; return loss or (loss, n_correct)"
                                )
                            result, n_correct = result
                            correct.add(n_correct)
                            has_accuracy = True
                        if result is None:
                            raise TypeError("the step returned None; it must return the loss (a float or a 0-d tensor)")
                        losses.add(result)
                        seen += a.shape[0]
                        bar.update(1)
                        if progress and ((i + 1) % postfix_every == 0 or i + 1 == steps_per_epoch):
                            running = losses.latest()  # a copy finished earlier: never waits for the GPU
                            if running is not None:
                                bar.set_postfix(loss=f"{running[0] / running[1]:.4f}", refresh=False)
                finally:
                    bar.close()
                mean_loss = losses.total() / steps_per_epoch
                train_accuracy = correct.total() / seen if has_accuracy else None
                if scaler is not None:
                    scaler.active = False
                value = None
                if monitor is not None and ((epoch + 1) % monitor_every == 0 or epoch + 1 == epochs):
                    value = _as_float(monitor(model))
                    model.train()
                history.append(
                    epoch=epoch + 1,
                    loss=mean_loss,
                    monitor=value,
                    lr=optimizer.param_groups[0]["lr"],
                    seconds=0.0,
                    train_accuracy=train_accuracy,
                )
                if on_epoch_end is not None:
                    extra = on_epoch_end(epoch + 1, history)
                    if extra is not None:
                        if not isinstance(extra, Mapping):
                            raise TypeError(
                                f"on_epoch_end must return None or a dict of numbers, got {type(extra).__name__}"
                            )
                        history.add_extra({key: _as_float(v) if v is not None else None for key, v in extra.items()})
                if scaler is not None:
                    scaler.active = True
                history.seconds[-1] = time.perf_counter() - started
                say(_summary(history, epochs, monitor_label, scaler))
                if not math.isfinite(mean_loss):
                    say(
                        f"  Warning: the loss is {mean_loss}; training has diverged. Lower the learning rate "
                        "(or check the loss function) and start again with resume=False."
                    )
                stop = bool(stop_after_epoch(epoch + 1, history)) if stop_after_epoch is not None else False
                if checkpoint_path is not None and (
                    stop or epoch + 1 == epochs or time.perf_counter() - last_write >= 60.0 * checkpoint_minutes
                ):
                    save_state(epoch + 1)
                    saved_epochs, last_write = epoch + 1, time.perf_counter()
                if stop and epoch + 1 < epochs:
                    where = f"; {checkpoint_path} holds it" if checkpoint_path is not None else ""
                    say(f"Stopped after epoch {epoch + 1} of {epochs} (stop_after_epoch){where}.")
                    break
    except KeyboardInterrupt:
        if checkpoint_path is not None:
            where = f"{checkpoint_path} holds {saved_epochs} finished epochs"
        else:
            where = "no checkpoint= was given"
        say(
            f"Interrupted in epoch {epoch + 1}; {where}. Run the cell again to "
            + ("continue from there." if checkpoint_path else "start over.")
        )
        raise
    return history


def _summary(history: History, epochs: int, monitor_label: str, scaler: DynamicLossScaler | None) -> str:
    row = history.last()
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['loss']:.4f}"]
    if row["train_accuracy"] is not None:
        parts.append(f"train acc {100 * row['train_accuracy']:.1f} %")
    if row["monitor"] is not None:
        value = row["monitor"]
        parts.append(f"{monitor_label} {100 * value:.1f} %" if 0.0 <= value <= 1.0 else f"{monitor_label} {value:.4g}")
    for name in history.extra:
        value = row[name]
        if value is None:
            continue
        is_fraction = name.endswith("accuracy") and isinstance(value, (int, float)) and 0.0 <= value <= 1.0
        parts.append(f"{name} {100 * value:.1f} %" if is_fraction else f"{name} {value:.4g}")
    parts.append(f"lr {row['lr']:.3g}")
    if scaler is not None:
        parts.append(f"loss scale {scaler.scale:g}")
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)
