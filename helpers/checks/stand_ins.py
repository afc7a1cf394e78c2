"""Stand-ins the public checks run the student's code on: tiny models, inputs, parameter snapshots.

No real data and no ResNet-18: `_instantiate` builds the student's model class with
`_TinyEncoder` in place of the encoder, `_image_pair` makes two "views" of smooth random
images, and `_ControlledClassifier` is a classifier whose predictions and cross-entropy are
known in closed form. The snapshot functions tell which parameters a step changed.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks.checker import _Checker, _describe

#: Output width of the stand-in encoder: that of ResNet-18, the projectors' input.
_FEATURE_DIM = 512
#: Projection width used in the model checks (small, and different from 512 and 128 so
#: swapped outputs show up as a shape error).
_PROJ_DIM = 24
#: Hidden width of the projection/prediction MLPs in the checks (2048 in the notebooks).
_HIDDEN_DIM = 64


def _snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: nn.Module, before: Sequence[torch.Tensor]) -> bool:
    return any(not torch.equal(p.detach(), b) for p, b in zip(module.parameters(), before))


def _part_changed(model: nn.Module, part: str, before: Sequence[torch.Tensor]) -> bool:
    """Whether any parameter of `model.<part>` differs from its entry in `before` (a `_snapshot(model)`)."""
    members = {id(p) for p in getattr(model, part).parameters()}
    return any(id(p) in members and not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))


def _grads(module: nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in module.parameters()]


class _TinyEncoder(nn.Module):
    """A fast stand-in for the ResNet-18 encoder f(.): images (B, 3, H, W) -> features (B, 512)."""

    def __init__(self, out_dim: int = _FEATURE_DIM) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(8 * 2 * 2, out_dim)
        self.training_modes: list[bool] = []  # train/eval mode of every forward pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.training_modes.append(self.training)
        h = self.pool(torch.tanh(self.conv(x)))  # (B, 8, 2, 2); tanh keeps features of different images apart
        return self.fc(torch.flatten(h, 1))  # (B, 512)


def _image_pair(batch_size: int = 8, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Two "views" of a batch of smooth random images, different enough between images that
    the tiny encoder's features (and a loss) depend on the inputs and on the temperature.

    Shape: (B, 3, 16, 16) float each, values around [-2, 2] (the checks need no real images).
    """
    fields = F.interpolate(torch.randn(batch_size, 3, 2, 2), size=16, mode="bilinear", align_corners=False)
    x1 = 2.0 * fields  # (B, 3, 16, 16)
    x2 = x1 + 0.2 * torch.randn(x1.shape)
    return x1.to(device), x2.to(device)


def _strip_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer by the identity (in place).

    With batch statistics gone, a network gives the same outputs whether the two views are
    forwarded separately or concatenated, so the step checks can accept both styles.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _strip_batch_norm(child)
    return module


def _materialize_on_cpu(model: nn.Module) -> bool:
    """Give every meta-device layer real, freshly initialised weights; False if one cannot be."""
    for module in model.modules():
        tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        if any(t.is_meta for t in tensors):
            if not hasattr(module, "reset_parameters"):
                return False
            module.to_empty(device="cpu", recurse=False)
            module.reset_parameters()
    return not any(t.is_meta for t in [*model.parameters(), *model.buffers()])


def _instantiate(chk: _Checker, cls: type, class_name: str, proj_dim: int = _PROJ_DIM) -> nn.Module:
    """The student's model class (its given __init__) with the tiny encoder in place of ResNet-18.

    The class is built on PyTorch's "meta" device (shapes only, no memory, no initialisation
    of the 11M ResNet-18 weights), the encoder is replaced by `_TinyEncoder`, and the heads get
    real weights by their own `reset_parameters`. If the class cannot be built that way, it
    is built normally. Heads are narrow (`_HIDDEN_DIM`): the checks test forward and step
    logic, not capacity.
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        chk.fail(
            "the argument",
            f"the class {class_name} (an nn.Module subclass)",
            _describe(cls),
            f"pass the class itself, e.g. check(..., {class_name}), not an instance.",
        )
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        parameters = {}
    kwargs = {
        name: value
        for name, value in (("proj_dim", proj_dim), ("hidden_dim", _HIDDEN_DIM), ("hidden", _HIDDEN_DIM))
        if name in parameters
    }
    model = None
    try:
        with torch.device("meta"):
            candidate = cls(**kwargs)
        if isinstance(getattr(candidate, "encoder", None), nn.Module):
            candidate.encoder = _TinyEncoder()
            model = candidate if _materialize_on_cpu(candidate) else None
    except Exception:  # the given __init__ does something the meta device cannot: build it for real
        model = None
    if model is None:
        model = chk.call(cls, name=class_name, **kwargs)
        if isinstance(getattr(model, "encoder", None), nn.Module):
            model.encoder = _TinyEncoder()
    for part in ("encoder", "projector"):
        if not isinstance(getattr(model, part, None), nn.Module):
            chk.fail(
                f"{class_name} structure",
                f"a `self.{part}` sub-module (from the given __init__)",
                f"no module attribute `{part}`",
                "keep the given __init__ unchanged.",
            )
    return model


class _ControlledClassifier(nn.Module):
    """logits = scale · x for one-hot inputs x: the input e_k is classified as class k.

    A Linear layer initialised to `scale · I`, so the predictions and the cross-entropy are
    known in closed form. Records the train/eval mode and grad mode of every forward and
    works on whichever device its input is on.
    """

    def __init__(self, num_classes: int = 4, scale: float = 3.0) -> None:
        super().__init__()
        self.fc = nn.Linear(num_classes, num_classes)
        with torch.no_grad():
            self.fc.weight.copy_(scale * torch.eye(num_classes))
            self.fc.bias.zero_()
        self.training_modes: list[bool] = []
        self.grad_modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.training_modes.append(self.training)
        self.grad_modes.append(torch.is_grad_enabled())
        return self.fc(x.to(self.fc.weight.device))  # (B, C)


def _cross_entropies(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int, scale: float) -> torch.Tensor:
    """Per-sample cross-entropy of logits scale·onehot(predicted): log(e^s + C - 1) - s·[y == p]."""
    return math.log(math.exp(scale) + num_classes - 1) - scale * (predicted == labels).double()
