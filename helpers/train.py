"""One generic training loop for every method in the bundle; the method supplies only its step.

As in minGPT's ``trainer.py`` ("nothing in this file really has anything to do with GPT"),
`fit` knows nothing about SimCLR, BYOL or Barlow Twins. It owns everything around the step:
shuffling and augmenting the data (on the GPU when there is one), the learning-rate schedule,
mixed precision, the k-NN monitor, progress bars, a resumable checkpoint after every epoch
and the per-epoch `History`. The step -- the part the students write -- does the forward
pass, the loss, ``optimizer.zero_grad()``, ``loss.backward()`` and ``optimizer.step()``.

How the notebooks call it::

    from helpers.probes import KNNMonitor
    from helpers.train import fit

    monitor = KNNMonitor(train_images, train_labels, test_images, test_labels)

    # SimCLR: step(x1, x2) gets two augmented views, Shape: (B, 3, 32, 32) float in [0, 1].
    model = SimCLRModel().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06 * 512 / 256, momentum=0.9, weight_decay=5e-4)
    history = fit(lambda x1, x2: simclr_train_step(model, x1, x2, optimizer, tau=0.5),
                  model, optimizer, train_images, epochs=100, batch_size=512, warmup_epochs=10,
                  monitor=monitor, monitor_every=5, checkpoint="checkpoints/simclr.pt")

    # BYOL: the target network is not in `model`, so hand it over to be checkpointed.
    history = fit(lambda x1, x2: byol_train_step(online, target, ema, optimizer, x1, x2),
                  online, optimizer, train_images, epochs=100, batch_size=512, warmup_epochs=10,
                  monitor=monitor, extra_state={"target": target}, checkpoint="checkpoints/byol.pt")

    # Barlow Twins: like SimCLR.
    history = fit(lambda x1, x2: barlow_train_step(model, x1, x2, optimizer, alpha=5e-3),
                  model, optimizer, train_images, epochs=100, batch_size=512, warmup_epochs=10,
                  monitor=monitor, checkpoint="checkpoints/barlow.pt")

    # Supervised fine-tuning: views=1, step(x, y) returns (loss, number correct); the default
    # augmentation is a random crop (4-pixel padding) and a horizontal flip.
    def keep_best(epoch, history):
        test_loss, test_accuracy = evaluate(classifier, test_loader)
        if test_accuracy > max(history.extra.get("test_accuracy", []) or [0.0]):
            save_classifier(classifier, "simclr_lin_best.pt")
        return {"test_loss": test_loss, "test_accuracy": test_accuracy}

    history = fit(lambda x, y: finetune_train_step(classifier, x, y, optimizer),
                  classifier, optimizer, train_images, train_labels, views=1, epochs=30,
                  batch_size=512, on_epoch_end=keep_best, checkpoint="checkpoints/finetune.pt")

Running the cell again after it finished loads the checkpoint and returns its history without
training (UvA DL tutorial 17's "load if it exists, else train"); running it after a lost
session continues from the last finished epoch.

Data paths:

- **batched** (the fast path, used on CUDA): the uint8 split is copied to the device once;
  every epoch is a permutation drawn from a generator seeded with (seed, epoch); each batch is
  gathered there and augmented there by `helpers.augment.BatchTwoViewAugment` (its own
  generator, seeded per epoch). Losses returned as tensors are summed on the device and read
  once per epoch; the progress bar shows a running mean copied to the host without waiting
  for the GPU. Nothing in fit's own per-step code synchronises with the device (the step may:
  the notebooks' steps return ``loss.item()``, as their task contract says), except fp16
  loss scaling: `DynamicLossScaler` reads whether the gradients overflowed once per step to
  skip that step, as `torch.amp.GradScaler` does with optimisers that cannot skip on the
  device. (The fused optimisers' on-device skip leaves the momentum buffers uninitialised when
  the very first step overflows -- torch 2.14's ``_fused_sgd`` allocates them with
  ``empty_like`` -- so it is not used.) bf16 needs no scaling.
- **per image** (the CPU default, and whenever `augment` is a per-image transform such as
  `helpers.data.TwoViewTransform`): a `DataLoader` over `helpers.data.CIFAR10Tensors`,
  shuffled by a generator seeded per epoch.

Reproducibility and resuming: at the start of epoch e, fit derives fresh seeds from
(seed, e) for the shuffle, the augmentation and the global RNGs (torch, CUDA, Python,
NumPy: dropout or any other randomness in the step). An epoch therefore depends only on the
state at its start, which the checkpoint holds exactly, so an interrupted and resumed run
ends in the same state as an uninterrupted one -- bit for bit on the CPU (with the same
number of threads); on a GPU up to cuDNN's non-deterministic kernels.

The checkpoint (``checkpoint=path``, written atomically after every epoch -- or, with
``checkpoint_minutes=M``, after the first epoch that ends M minutes after the last write, after
the last epoch and whenever ``stop_after_epoch`` ends a run early -- loadable with
``torch.load(weights_only=True)``) holds the model, the optimiser, `extra_state`, the loss
scaler, the base learning rates, the history, the number of finished epochs, the run's
configuration and the global RNG states (restored on loading, so the cells after `fit`
behave the same whether it trained or loaded). When it exists and ``resume=True``:

- it covers `epochs` (or more): it is loaded and its history returned, nothing trains;
- it covers fewer epochs: training continues after the last finished one. A larger
  `epochs` than the checkpoint's run (or another warmup/schedule) is accepted with a note:
  the learning-rate schedule of the remaining epochs is recomputed for the new length;
- it was written with another batch size, seed, `views` or number of images (or in smoke
  mode for a full run): `TrainingCheckpointError`, saying how to start over
  (``resume=False``) or where else to write. Smoke runs write ``<name>.smoke<ext>`` so
  they never meet a real checkpoint.

Mixed precision: bf16 autocast on GPUs that support it; otherwise fp16 autocast with dynamic
loss scaling that works although the step calls ``loss.backward()`` itself -- see
`DynamicLossScaler`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.probes import class_balanced_indices
from helpers.runtime import get_device, smoke_mode

__all__ = [
    "History",
    "fit",
    "lr_multiplier",
    "DynamicLossScaler",
    "BatchCropFlip",
    "TrainingCheckpointError",
    "SMOKE_IMAGES",
    "SMOKE_BATCH_SIZE",
]

#: Smoke mode (env SSL_LAB_SMOKE): images trained on, largest batch size, monitor subsets.
SMOKE_IMAGES = 256
SMOKE_BATCH_SIZE = 64
SMOKE_MONITOR_TRAIN = 256
SMOKE_MONITOR_TEST = 128

CHECKPOINT_FORMAT = "ssl-lab-training-state"
CHECKPOINT_VERSION = 1
# A resumed run must agree with the checkpoint on these, or the result would be a mix of two
# different trainings (other differences -- epochs, schedule -- are announced and accepted).
_STRICT_CONFIG = ("batch_size", "seed", "views", "num_images")


# ======================================================================================
# History
# ======================================================================================


@dataclass
class History:
    """What `fit` records, one entry per finished epoch (all lists have the same length).

    Attributes:
        epoch: 1-based epoch numbers.
        loss: mean of the step's losses over the epoch.
        monitor: the monitor's value (e.g. k-NN accuracy in [0, 1]) or None in epochs
            without a monitor run.
        lr: learning rate of the first parameter group at the epoch's last step.
        seconds: wall-clock time of the epoch, monitor and callback included.
        train_accuracy: correct / seen when the step returns ``(loss, n_correct)``, else None.
        extra: name -> per-epoch values returned by ``on_epoch_end`` (None where missing).

    Plain lists of floats, so a history survives ``torch.load(weights_only=True)`` and JSON.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    monitor: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    train_accuracy: list[float | None] = field(default_factory=list)
    extra: dict[str, list[float | None]] = field(default_factory=dict)

    _COLUMNS = ("epoch", "loss", "monitor", "lr", "seconds", "train_accuracy")

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, *, epoch: int, loss: float, monitor: float | None = None, lr: float = float("nan"),
               seconds: float = 0.0, train_accuracy: float | None = None) -> None:
        """Add one epoch's entry (the `extra` lists are padded with None)."""
        self.epoch.append(int(epoch))
        self.loss.append(float(loss))
        self.monitor.append(None if monitor is None else float(monitor))
        self.lr.append(float(lr))
        self.seconds.append(float(seconds))
        self.train_accuracy.append(None if train_accuracy is None else float(train_accuracy))
        for values in self.extra.values():
            values.append(None)

    def add_extra(self, values: Mapping[str, Any]) -> None:
        """Record `values` (name -> number) for the last epoch, creating columns as needed."""
        if not self.epoch:
            raise ValueError("add_extra needs an epoch entry first (History.append)")
        for name, value in values.items():
            if name in self._COLUMNS:
                raise ValueError(f"on_epoch_end returned {name!r}, a name History already uses; rename it")
            column = self.extra.setdefault(str(name), [None] * len(self.epoch))
            column[-1] = None if value is None else float(value)

    def row(self, index: int) -> dict[str, float | None]:
        """Everything recorded for one epoch (list index, negative allowed) as a dict."""
        out = {name: getattr(self, name)[index] for name in self._COLUMNS}
        out.update({name: values[index] for name, values in self.extra.items()})
        return out

    def last(self) -> dict[str, float | None]:
        """The last epoch's entry as a dict (``{}`` when nothing was recorded yet)."""
        return self.row(-1) if self.epoch else {}

    def best(self, key: str = "monitor", mode: str = "max") -> dict[str, float | None] | None:
        """The entry of the epoch with the best `key` (a column or an extra name).

        Args:
            key: e.g. "monitor", "loss", "train_accuracy" or a name from on_epoch_end.
            mode: "max" (accuracies) or "min" (losses).

        Returns:
            That epoch's dict (as `last`), or None when no epoch has a value for `key`.
        """
        if key in self._COLUMNS:
            values = getattr(self, key)
        elif key in self.extra:
            values = self.extra[key]
        else:
            raise KeyError(f"History has no {key!r}; known: {list(self._COLUMNS) + list(self.extra)}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        candidates = [(v, i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
        if not candidates:
            return None
        # max/min return the first of equal values: the earliest epoch wins a tie.
        _, index = (max if mode == "max" else min)(candidates, key=lambda value_index: value_index[0])
        return self.row(index)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (copies), e.g. for `helpers.plots.plot_history` or a checkpoint."""
        out: dict[str, Any] = {name: list(getattr(self, name)) for name in self._COLUMNS}
        out["extra"] = {name: list(values) for name, values in self.extra.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of `to_dict` (missing columns, e.g. from older files, become None lists)."""
        n = len(data.get("epoch", []))
        kwargs = {name: list(data.get(name, [None] * n)) for name in cls._COLUMNS}
        kwargs["extra"] = {name: list(values) for name, values in dict(data.get("extra", {})).items()}
        history = cls(**kwargs)
        lengths = {len(getattr(history, name)) for name in cls._COLUMNS}
        lengths |= {len(values) for values in history.extra.values()}
        if len(lengths) > 1:
            raise ValueError(f"inconsistent history: columns have lengths {sorted(lengths)}")
        return history


# ======================================================================================
# Learning-rate schedule
# ======================================================================================


def lr_multiplier(step: int, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine",
                  min_lr_ratio: float = 0.0) -> float:
    """The factor fit applies to every base learning rate at (0-based) optimiser `step`.

    Linear warmup (Goyal et al. 2017, https://arxiv.org/abs/1706.02677) over `warmup_steps`:
    ``(step + 1) / warmup_steps``, reaching 1 at the last warmup step. Then either constant 1,
    or a half cosine (SGDR, Loshchilov & Hutter 2017, https://arxiv.org/abs/1608.03983) from 1
    at ``step == warmup_steps`` down to `min_lr_ratio` at ``step == total_steps``:
    ``r + (1 - r) (1 + cos(pi t)) / 2`` with ``t = (step - warmup_steps) / (total_steps - warmup_steps)``.

    Args:
        step: optimiser steps taken before this one.
        total_steps: steps of the whole run (epochs x steps per epoch).
        warmup_steps: length of the linear warmup.
        schedule: "cosine" or "constant".
        min_lr_ratio: final learning rate as a fraction of the base one (cosine only).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine', 'constant' or 'none', got {schedule!r}")
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ======================================================================================
# fp16 dynamic loss scaling for a step that calls backward() itself
# ======================================================================================


class _ScaleGradient(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by the loss scale S."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scaler: DynamicLossScaler) -> torch.Tensor:
        ctx.scaler = scaler
        return x.clone()  # a new tensor, so the caller may modify it in place

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.scaler._backward_was_scaled = True
        return grad * ctx.scaler.scale, None


class DynamicLossScaler:
    """Dynamic loss scaling for fp16 autocast when the student's step calls ``loss.backward()``.

    fp16 gradients below ~6e-8 flush to zero, so mixed-precision training multiplies the loss
    by a large factor S before the backward pass and divides the gradients by S before the
    optimiser step, lowering S whenever that overflows (Micikevicius et al. 2018, "Mixed
    Precision Training", https://arxiv.org/abs/1710.03740; `torch.amp.GradScaler`'s policy).
    GradScaler needs ``scaler.scale(loss).backward()`` and ``scaler.step(optimizer)`` inside the
    step. Our steps are the students' graded code, written without a scaler, so the scaler is
    attached at the two boundaries fit controls instead:

    1. **model outputs** -- a forward hook on `model` passes every floating-point output that
       requires grad through `_ScaleGradient`, whose backward multiplies the incoming
       gradient by S. Everything below the outputs (the whole network, where fp16 gradients
       live) sees S x the true gradient, exactly as with ``(S * loss).backward()``; the loss
       computed from the outputs is unaffected.
    2. **the optimiser step** -- ``optimizer.step`` is replaced *on that instance* (restored
       on exit) by a wrapper that, if a scaled backward pass happened since the last step,
       divides the gradients of `model`'s parameters by S and checks them. All finite: the
       real step runs, and after `growth_interval` such steps in a row S doubles. Any inf or
       NaN: the gradients are set to None, the real step is skipped (an EMA update that
       follows in the step then only re-averages unchanged weights) and S halves.
       (``Optimizer.register_step_pre_hook`` cannot skip a step, hence the wrapper.)

    Limits: the loss must reach the parameters through `model(...)`'s outputs (a step that
    calls ``model.encoder(x)`` directly bypasses the hook; the scaler then sees no scaled
    backward and leaves the gradients alone, i.e. trains unscaled). Parameters outside `model`
    (e.g. a learnable temperature) are never scaled nor unscaled.

    Args:
        init_scale: first S (GradScaler's default 2**16).
        growth_factor: S multiplier after `growth_interval` finite steps in a row.
        backoff_factor: S multiplier after a step with non-finite gradients.
        growth_interval: see `growth_factor`.

    Example::

        scaler = DynamicLossScaler()
        with scaler.attached(model, optimizer), torch.autocast("cuda", dtype=torch.float16):
            loss = step(x1, x2)          # the step's backward() and optimizer.step() are scaled
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000) -> None:
        if init_scale <= 0 or growth_factor <= 1 or not 0 < backoff_factor < 1 or growth_interval < 1:
            raise ValueError("need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, growth_interval >= 1")
        self.scale = float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.growth_tracker = 0  # finite steps since the last change of S
        self.skipped_steps = 0
        self.active = True  # fit switches this off around the monitor and callbacks
        self._backward_was_scaled = False
        self._params: list[torch.nn.Parameter] = []

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, float | int]:
        return {"scale": self.scale, "growth_tracker": self.growth_tracker, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: Mapping[str, float | int]) -> None:
        self.scale = float(state["scale"])
        self.growth_tracker = int(state["growth_tracker"])
        self.skipped_steps = int(state.get("skipped_steps", 0))

    # ---------------------------------------------------------------- the two boundaries
    def _wrap(self, output):
        if isinstance(output, torch.Tensor):
            if output.requires_grad and output.is_floating_point():
                return _ScaleGradient.apply(output, self)
            return output
        if isinstance(output, tuple) and hasattr(output, "_fields"):  # namedtuple
            return type(output)(*(self._wrap(o) for o in output))
        if isinstance(output, (tuple, list)):
            return type(output)(self._wrap(o) for o in output)
        if isinstance(output, dict):
            return {key: self._wrap(value) for key, value in output.items()}
        return output

    def _forward_hook(self, module, args, output):
        if not (self.active and torch.is_grad_enabled()):
            return None  # keep the output as it is
        return self._wrap(output)

    def unscale_(self, grads: list[torch.Tensor]) -> bool:
        """Divide `grads` by S in place; True when all of them are finite afterwards."""
        groups: dict[tuple, list[torch.Tensor]] = defaultdict(list)
        for grad in grads:
            groups[(grad.device, grad.dtype)].append(grad)
        finite = True
        for (device, _), group in groups.items():
            found_inf = torch.zeros(1, device=device)
            inv_scale = torch.full((1,), 1.0 / self.scale, device=device)
            try:  # the fused kernel GradScaler uses (CUDA and CPU)
                torch._amp_foreach_non_finite_check_and_unscale_(group, found_inf, inv_scale)
            except (RuntimeError, AttributeError, NotImplementedError):
                torch._foreach_mul_(group, 1.0 / self.scale)
                found_inf = torch.stack([(~torch.isfinite(g)).any() for g in group]).any().float()
            finite = finite and not bool(found_inf.item())  # one sync per step, as GradScaler
        return finite

    def update(self, found_inf: bool) -> None:
        """GradScaler's policy: back off on overflow, grow after a run of finite steps."""
        if found_inf:
            self.scale *= self.backoff_factor
            self.growth_tracker = 0
            self.skipped_steps += 1
        else:
            self.growth_tracker += 1
            if self.growth_tracker >= self.growth_interval:
                self.scale *= self.growth_factor
                self.growth_tracker = 0

    def _scaled_step(self, optimizer: torch.optim.Optimizer, real_step: Callable, *args, **kwargs):
        if not self._backward_was_scaled:  # nothing was scaled (e.g. the hook was bypassed)
            return real_step(*args, **kwargs)
        self._backward_was_scaled = False
        grads = [p.grad for p in self._params if p.grad is not None]
        if self.unscale_(grads):
            result = real_step(*args, **kwargs)
            self.update(found_inf=False)
            return result
        for group in optimizer.param_groups:  # an overflow: drop this step's gradients
            for param in group["params"]:
                param.grad = None
        self.update(found_inf=True)
        return None

    @contextlib.contextmanager
    def attached(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[DynamicLossScaler]:
        """Scale `model`'s backward passes and unscale/check/skip in `optimizer.step`.

        Both patches are undone on exit, also after an exception.
        """
        handle = model.register_forward_hook(self._forward_hook)
        own = vars(optimizer)  # the instance's attributes (an LR scheduler may have wrapped step)
        had_own_step, previous_step = "step" in own, own.get("step")
        real_step = optimizer.step

        @functools.wraps(real_step)
        def step(*args, **kwargs):
            return self._scaled_step(optimizer, real_step, *args, **kwargs)

        optimizer.step = step
        self._params = list(model.parameters())
        self._backward_was_scaled = False
        try:
            yield self
        finally:
            handle.remove()
            if had_own_step:
                optimizer.step = previous_step
            else:
                own.pop("step", None)
            self._params = []


# ======================================================================================
# Supervised batch augmentation (views=1)
# ======================================================================================


class BatchCropFlip(torch.nn.Module):
    """The standard CIFAR training augmentation for a uint8 batch on the device: pad by
    `padding` pixels (zeros), take a random crop of the original size, flip horizontally with
    probability `flip_p` (He et al. 2016, https://arxiv.org/abs/1512.03385, section 4.2) --
    every image with its own offsets and flip.

    ``batched = True`` tells `fit` to call it on whole batches:
    ``forward(images uint8 (B, H, W, 3), generator=None) -> float32 (B, 3, H, W) in [0, 1]``.
    """

    batched = True

    def __init__(self, padding: int = 4, flip_p: float = 0.5) -> None:
        super().__init__()
        if padding < 0 or not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"need padding >= 0 and 0 <= flip_p <= 1, got {padding}, {flip_p}")
        self.padding, self.flip_p = int(padding), float(flip_p)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"BatchCropFlip expects uint8 (B, H, W, 3), got {tuple(images.shape)}")
        batch, height, width, _ = images.shape
        pad, device = self.padding, images.device
        padded = torch.nn.functional.pad(images, (0, 0, pad, pad, pad, pad))  # (B, H+2p, W+2p, 3)
        top = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=device)  # (B,)
        left = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=device)  # (B,)
        flip = torch.rand(batch, generator=generator, device=device) < self.flip_p  # (B,)
        rows = top[:, None] + torch.arange(height, device=device)  # (B, H)
        cols = torch.arange(width, device=device).expand(batch, width)  # (B, W)
        cols = torch.where(flip[:, None], cols.flip(1), cols) + left[:, None]  # (B, W), mirrored if flipped
        image_index = torch.arange(batch, device=device)[:, None, None]  # (B, 1, 1)
        crops = padded[image_index, rows[:, :, None], cols[:, None, :]]  # (B, H, W, 3)
        return crops.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W) in [0, 1]

    def extra_repr(self) -> str:
        return f"padding={self.padding}, flip_p={self.flip_p}"


# ======================================================================================
# Checkpoints
# ======================================================================================


class TrainingCheckpointError(ValueError):
    """A training checkpoint that cannot be resumed; the message says what to do."""


def _rng_state() -> dict[str, Any]:
    """Every global RNG's state in types `torch.load(weights_only=True)` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    cuda_states = list(state.get("cuda", []))
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))


def _save_atomically(payload: dict, path: Path) -> None:
    """torch.save to a temporary file beside `path`, fsync, then os.replace: a reader (or a
    resumed run after a crash) sees either the old complete file or the new complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _load_training_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated file, a different format, a pickle with code ...
        raise TrainingCheckpointError(
            f"cannot read the training checkpoint {path}: {str(error).splitlines()[0][:300]}\n"
            "Delete the file (or pass resume=False to overwrite it) to train from scratch."
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingCheckpointError(
            f"{path} is not a training checkpoint written by helpers.train.fit (no "
            f"format={CHECKPOINT_FORMAT!r}). Pass another checkpoint= path, or resume=False to overwrite it."
        )
    if state.get("version") != CHECKPOINT_VERSION:
        raise TrainingCheckpointError(
            f"{path} has training-checkpoint version {state.get('version')}, this helpers.train reads "
            f"version {CHECKPOINT_VERSION}. Pass resume=False to start over."
        )
    return state


def _check_config(saved: Mapping[str, Any], current: Mapping[str, Any], path: Path) -> list[str]:
    """Raise on differences that make resuming meaningless; return notes on acceptable ones."""
    if bool(saved.get("smoke")) != bool(current["smoke"]):
        raise TrainingCheckpointError(
            f"{path} was written by a {'smoke' if saved.get('smoke') else 'full'} run and this is a "
            f"{'smoke' if current['smoke'] else 'full'} run. Use another checkpoint= path or resume=False."
        )
    different = [f"{key}={saved.get(key)!r} there, {current[key]!r} now" for key in _STRICT_CONFIG
                 if saved.get(key) != current[key]]
    if different:
        raise TrainingCheckpointError(
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


def _smoke_checkpoint_path(path: Path) -> Path:
    """checkpoints/simclr.pt -> checkpoints/simclr.smoke.pt: smoke runs never touch real ones."""
    return path.with_name(f"{path.stem}.smoke{path.suffix}")


# ======================================================================================
# Data: one epoch of batches
# ======================================================================================


def _derive_seed(seed: int, epoch: int, stream: str) -> int:
    """A 63-bit seed that depends only on (seed, epoch, stream), the same on every machine."""
    digest = hashlib.sha256(f"ssl-lab/{seed}/{epoch}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _seed_global_rngs(seed: int, epoch: int) -> None:
    value = _derive_seed(seed, epoch, "global")
    torch.manual_seed(value)  # also every CUDA device
    random.seed(value)
    np.random.seed(value % 2**32)


def _is_batched(augment: Any) -> bool:
    """Batched augmentations get whole uint8 batches on the device; others get one image."""
    if augment is None or getattr(augment, "batched", False) is True:
        return True
    try:
        from helpers.augment import BatchTwoViewAugment
    except ImportError:
        return False
    return isinstance(augment, BatchTwoViewAugment)


def _accepts_generator(augment: Callable) -> bool:
    target = augment.forward if isinstance(augment, torch.nn.Module) else augment
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "generator" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _auto_num_workers(smoke: bool) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return 0 if smoke or cores <= 2 else min(8, cores)


class _Batches:
    """Yields one epoch's step arguments: (x1, x2) for views=2, (x, y) for views=1."""

    def __init__(self, images, labels, *, views, batch_size, drop_last, augment, device, channels_last,
                 seed, num_workers):
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
        shuffle = torch.Generator().manual_seed(_derive_seed(self.seed, epoch, "shuffle"))
        order = torch.randperm(self.num_images, generator=shuffle).to(self.device)  # (N,)
        generator = None
        if self.augment is not None:
            generator = torch.Generator(device=self.device).manual_seed(_derive_seed(self.seed, epoch, "augment"))
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
        generator = torch.Generator().manual_seed(_derive_seed(self.seed, epoch, "shuffle"))
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=True, generator=generator,
            num_workers=self.num_workers, drop_last=self.drop_last, persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )
        for item, labels in loader:
            if self.views == 2:
                if not (isinstance(item, (tuple, list)) and len(item) == 2):
                    raise TypeError("with views=2 the per-image augment must return two views, e.g. TwoViewTransform()")
                yield self._format(item[0]), self._format(item[1])
            else:
                yield self._format(item), labels.to(self.device, non_blocking=True)


# ======================================================================================
# fit
# ======================================================================================


def _resolve_amp(amp, device: torch.device) -> torch.dtype | None:
    if amp in (False, None, "off", "fp32", "float32"):
        return None
    if amp in (True, "auto"):
        if device.type != "cuda":
            return None
        # Native bf16 only (Ampere and newer): T4/V100 emulate it slowly, fp16 + scaling is faster.
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if amp in ("bf16", "bfloat16", torch.bfloat16):
        return torch.bfloat16
    if amp in ("fp16", "float16", torch.float16):
        return torch.float16
    raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")


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
        checkpoint: path of the training checkpoint, written atomically after every epoch (see
            `checkpoint_minutes`).
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
        TrainingCheckpointError: the checkpoint is unreadable or from a different run
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
            checkpoint_path = _smoke_checkpoint_path(checkpoint_path)
        where = f", checkpoint {checkpoint_path}" if checkpoint_path else ""
        say(f"Smoke mode is on (SSL_LAB_SMOKE): {images.shape[0]} images, 1 epoch, batch size {batch_size}{where}. "
            "Unset SSL_LAB_SMOKE to train for real.")

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
            from helpers.augment import BatchTwoViewAugment

            augment = BatchTwoViewAugment()
        else:
            from helpers.data import TwoViewTransform

            augment = TwoViewTransform()
    if views == 2 and augment is None:
        raise ValueError("views=2 needs an augmentation that makes two views (augment='auto' or a TwoViewTransform)")
    if num_workers == "auto":
        num_workers = _auto_num_workers(smoke)
    amp_dtype = _resolve_amp(amp, device)
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
        "epochs": int(epochs), "batch_size": int(batch_size), "seed": int(seed), "views": int(views),
        "num_images": int(num_images), "smoke": smoke, "warmup_epochs": float(warmup_epochs),
        "schedule": schedule, "min_lr_ratio": float(min_lr_ratio), "steps_per_epoch": int(steps_per_epoch),
    }

    # ---------------------------------------------------------------- resume
    history = History()
    start_epoch = 0
    if checkpoint_path is not None and resume and checkpoint_path.exists():
        state = _load_training_checkpoint(checkpoint_path)
        notes = _check_config(state["config"], config, checkpoint_path)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            for name, obj in extra_state.items():
                if name not in state["extra_state"]:
                    saved = sorted(state["extra_state"])
                    raise KeyError(f"extra_state {name!r} is not in the checkpoint (it has {saved})")
                obj.load_state_dict(state["extra_state"][name])
        except (RuntimeError, KeyError, ValueError) as error:
            raise TrainingCheckpointError(
                f"the checkpoint {checkpoint_path} does not fit this model/optimizer: {str(error)[:500]}\n"
                "Was it written for another architecture? Pass another checkpoint= path, or resume=False."
            ) from error
        for group, base_lr in zip(optimizer.param_groups, state["base_lrs"]):
            group["initial_lr"] = base_lr
        if scaler is not None and state.get("loss_scaler"):
            scaler.load_state_dict(state["loss_scaler"])
        history = History.from_dict(state["history"])
        start_epoch = int(state["finished_epochs"])
        _set_rng_state(state["rng"])
        if start_epoch >= epochs:
            say(f"Loaded {checkpoint_path}: training already finished ({start_epoch} epochs"
                + (f", {epochs} asked for" if start_epoch != epochs else "") + "); nothing to train. "
                "Pass resume=False to train again.")
            return history
        say(f"Resuming from {checkpoint_path}: {start_epoch} of {epochs} epochs done.")
        if state["config"]["epochs"] != epochs:
            notes.append(f"epochs was {state['config']['epochs']}, is now {epochs}")
        if notes:
            say("  Note: " + "; ".join(notes) + " -- the learning-rate schedule of the remaining epochs is "
                "recomputed, so the result differs from a single uninterrupted run with either setting.")

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
    batches = _Batches(images, labels, views=views, batch_size=batch_size, drop_last=drop_last, augment=augment,
                       device=device, channels_last=use_channels_last, seed=seed, num_workers=num_workers)
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    total_steps = epochs * steps_per_epoch
    warmup_steps = min(total_steps, round(warmup_epochs * steps_per_epoch))
    monitor_label = getattr(monitor, "label", "monitor")

    from tqdm.auto import tqdm

    scaling = scaler.attached(model, optimizer) if scaler is not None else contextlib.nullcontext()

    def autocast():
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    def write_checkpoint(finished_epochs: int) -> None:
        _save_atomically(
            {
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": config,
                "finished_epochs": finished_epochs, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "extra_state": {name: obj.state_dict() for name, obj in extra_state.items()},
                "loss_scaler": scaler.state_dict() if scaler is not None else None,
                "base_lrs": base_lrs, "history": history.to_dict(), "rng": _rng_state(),
            },
            checkpoint_path,
        )

    epoch = start_epoch
    saved_epochs = start_epoch  # epochs the checkpoint file holds
    last_write = time.perf_counter()
    try:
        with scaling:
            for epoch in range(start_epoch, epochs):
                started = time.perf_counter()
                _seed_global_rngs(seed, epoch)
                model.train()
                losses, correct = _Mean(), _Mean()
                seen, has_accuracy = 0, False
                postfix_every = max(1, steps_per_epoch // 20)
                bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                           disable=not progress, dynamic_ncols=True)
                try:
                    for i, (a, b) in enumerate(batches.epoch(epoch)):
                        global_step = epoch * steps_per_epoch + i
                        if schedule != "none":
                            factor = lr_multiplier(global_step, total_steps, warmup_steps, schedule, min_lr_ratio)
                            for group, base_lr in zip(optimizer.param_groups, base_lrs):
                                group["lr"] = base_lr * factor
                        with autocast():
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
                history.append(epoch=epoch + 1, loss=mean_loss, monitor=value, lr=optimizer.param_groups[0]["lr"],
                               seconds=0.0, train_accuracy=train_accuracy)
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
                    say(f"  Warning: the loss is {mean_loss}; training has diverged. Lower the learning rate "
                        "(or check the loss function) and start again with resume=False.")
                stop = bool(stop_after_epoch(epoch + 1, history)) if stop_after_epoch is not None else False
                if checkpoint_path is not None and (
                    stop or epoch + 1 == epochs or time.perf_counter() - last_write >= 60.0 * checkpoint_minutes
                ):
                    write_checkpoint(epoch + 1)
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
        say(f"Interrupted in epoch {epoch + 1}; {where}. Run the cell again to "
            + ("continue from there." if checkpoint_path else "start over."))
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
