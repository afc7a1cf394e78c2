"""The stand-in networks of the grading operations (trusted; never the answer to a task).

Small MLPs shaped like the notebooks' models (a trunk, a projection head, a BYOL predictor,
a classifier with batch norm and dropout) on (B, 3, 8, 8) stand-in images: the graded steps
and forwards run on them, with the weights the grader sent, in the grader's process and in
the sandbox alike (`autograder.in_sandbox.harness`). They have no batch norm in the
two-view models, so forwarding the two views together or separately gives the same result.

Copied into the sandbox with the rest of `autograder.in_sandbox`; imports only torch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Stand-in images are (B, 3, 8, 8): small enough for an MLP, shaped like images.
IMAGE_SHAPE = (3, 8, 8)
_IN = 3 * 8 * 8
ENCODER_DIM, PROJ_DIM, HIDDEN_DIM, NUM_CLASSES = 16, 8, 24, 10


def _mlp(sizes: list[int], flatten: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class TwoHeadNet(nn.Module):
    """Trunk + head (+ predictor): the shape of the SimCLR / BYOL / Barlow Twins models.

    Outputs, by `kind`: "simclr" (h, unit(g(h))); "byol" (h, unit(g(h)), unit(q(g(h))));
    "barlow" (h, g(h)); "features-tensor" h; "features-tuple" (h, g(h)); "features-list" [h, g(h)].
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.trunk = _mlp([_IN, 32, ENCODER_DIM], flatten=True)  # (B, 3, 8, 8) -> (B, 16)
        self.head = _mlp([ENCODER_DIM, HIDDEN_DIM, PROJ_DIM])  # (B, 16) -> (B, 8)
        self.pred = _mlp([PROJ_DIM, HIDDEN_DIM, PROJ_DIM]) if kind == "byol" else None
        self.eval_forwards = 0  # forwards run in eval mode (a training step should not switch to it)

    def forward(self, x: torch.Tensor) -> Any:
        self.eval_forwards += not self.training
        h = self.trunk(x)
        g = self.head(h)
        if self.kind == "simclr":
            return h, F.normalize(g, dim=1)
        if self.kind == "byol":
            return h, F.normalize(g, dim=1), F.normalize(self.pred(g), dim=1)
        if self.kind == "barlow":
            return h, g
        if self.kind == "features-tensor":
            return h
        return (h, g) if self.kind == "features-tuple" else [h, g]


class RecordingClassifier(nn.Module):
    """A classifier with batch norm and dropout (so eval mode matters) that records, for every
    forward, whether gradients were being recorded and whether it was in training mode."""

    def __init__(self, batch_norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(_IN, 32)]
        if batch_norm:
            layers += [nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5)]
        else:
            layers += [nn.ReLU()]
        layers.append(nn.Linear(32, NUM_CLASSES))
        self.net = nn.Sequential(*layers)
        self.calls: list[tuple[bool, bool]] = []

    @property
    def eval_forwards(self) -> int:
        return sum(1 for _, training in self.calls if not training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), self.training))
        return self.net(x)


MODULE_PARTS = {
    "encoder": lambda: _mlp([_IN, 32, ENCODER_DIM], flatten=True),
    "projector": lambda: _mlp([ENCODER_DIM, HIDDEN_DIM, PROJ_DIM]),
    "predictor": lambda: _mlp([PROJ_DIM, HIDDEN_DIM, PROJ_DIM]),
}


def build(kind: str, state: dict | None = None, seed: int | None = None) -> nn.Module:
    """A stand-in network: `kind` in TwoHeadNet kinds, "classifier", "bn-classifier" or a
    MODULE_PARTS name; weights from `state` (exact) or from `seed`."""
    if seed is not None:
        torch.manual_seed(seed)
    if kind in MODULE_PARTS:
        module = MODULE_PARTS[kind]()
    elif kind == "classifier":
        module = RecordingClassifier(batch_norm=False)
    elif kind == "bn-classifier":
        module = RecordingClassifier(batch_norm=True)
    else:
        module = TwoHeadNet(kind)
    if state is not None:
        module.load_state_dict(state, strict=True)
    return module


def state_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a module's state (parameters and buffers)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def params_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: torch.Tensor.detach(v).clone() for k, v in module.named_parameters()}


def grads_of(module: nn.Module) -> dict[str, torch.Tensor | None]:
    return {k: (None if v.grad is None else torch.Tensor.detach(v.grad).clone()) for k, v in module.named_parameters()}


def make_optimizer(params: Any, spec: dict) -> torch.optim.Optimizer:
    """SGD with the grader's settings (no weight decay: scaling the loss is then the same as
    scaling the learning rate, which the BYOL loss-convention check relies on)."""
    return torch.optim.SGD(params, lr=spec["lr"], momentum=spec.get("momentum", 0.0))
